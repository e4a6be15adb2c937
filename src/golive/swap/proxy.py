"""The proxy gateway: golive's upstream include file, the configtest and the graceful reload (the
only place that runs them), and HTTP probes through httpx."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from golive.errors import ConfigError, GoliveError

if TYPE_CHECKING:
    from golive.config.models import GoliveConfig, Proxy

__all__ = ["ProxyGateway", "from_config", "probe"]


def from_config(config: GoliveConfig) -> ProxyGateway:
    return ProxyGateway(config.require("proxy"), config.resolve(config.require("proxy").upstream_file))


def probe(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body) of a GET, or (0, error name) when nothing answered."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return 0, type(exc).__name__
    return response.status_code, response.text


class ProxyGateway:
    def __init__(self, proxy: Proxy, upstream_file: Path) -> None:
        self.proxy = proxy
        self.file = upstream_file

    def line(self, url: str) -> str:
        return f"Define {self.proxy.upstream_variable} {url}\n"

    def read(self) -> str | None:
        return self.file.read_text() if self.file.exists() else None

    def upstream(self) -> str:
        """The URL the upstream file points at (the live colour)."""
        text = self.read()
        match = re.search(rf"^\s*Define\s+{re.escape(self.proxy.upstream_variable)}\s+(\S+)", text or "", re.M)
        if match is None:
            raise ConfigError(f"the upstream file {self.file} does not define {self.proxy.upstream_variable}",
                              hint=f"write it once by hand: {self.line('http://127.0.0.1:<blue host_port>').strip()}")
        return match[1]

    def write(self, text: str) -> None:
        tmp = self.file.with_name(f".{self.file.name}.golive-tmp")
        tmp.write_text(text)
        os.replace(tmp, self.file)

    def _command(self, what: str, command: list[str]) -> None:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GoliveError(f"proxy {what} `{' '.join(command)}` could not run: {exc}",
                              hint=f"fix [proxy].{what}_command") from None
        if done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise GoliveError(f"proxy {what} `{' '.join(command)}` failed: {output[-1] if output else done.returncode}",
                              hint="the proxy configuration was put back and not reloaded")

    def test(self) -> None:
        self._command("test", self.proxy.test_command)

    def reload(self) -> None:
        self._command("reload", self.proxy.reload_command)

    def switch(self, text: str) -> None:
        """Write the upstream file, configtest, graceful reload — never reload a config that fails its test."""
        previous = self.read()
        self.write(text)
        try:
            self.test()
        except GoliveError:
            if previous is not None:
                self.write(previous)
            raise
        self.reload()

    def public(self, path: str, expect: str | None, deadline: float) -> tuple[int, str]:
        """Poll the public URL until it answers 2xx (and ``expect`` when given) or the deadline passes."""
        url = self.proxy.public_url.rstrip("/") + path
        while True:
            status, body = probe(url)
            if 200 <= status < 300 and (expect is None or body.strip() == expect.strip()):
                return status, body
            if time.monotonic() >= deadline:
                return status, body
            time.sleep(0.1)
