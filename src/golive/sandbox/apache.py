"""An Apache reverse proxy of its own: ServerRoot and config in a directory, a loopback port,
mod_proxy/mod_proxy_http, and golive's upstream include. start / graceful / stop, for tests and
the sandbox; and the vhost snippet golive expects in a real Apache (:func:`vhost_snippet`)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

__all__ = ["ApacheRunner", "upstream_line", "vhost_snippet"]

MODULES = Path("/usr/lib/apache2/modules")


def upstream_line(variable: str, url: str) -> str:
    return f"Define {variable} {url}\n"


def vhost_snippet(upstream_file: str, variable: str = "GOLIVE_UPSTREAM") -> str:
    """What the Apache site needs so that golive can move it between colours."""
    return (f"# golive owns {upstream_file}: one line, `Define {variable} http://127.0.0.1:<port>`\n"
            f"Include {upstream_file}\n"
            "<VirtualHost *:80>\n"
            "    ProxyPreserveHost On\n"
            "    # disablereuse: a graceful reload must not leave pooled connections to the old colour\n"
            f"    ProxyPass / ${{{variable}}}/ disablereuse=On retry=0\n"
            f"    ProxyPassReverse / ${{{variable}}}/\n"
            "</VirtualHost>\n")


class ApacheRunner:
    def __init__(self, root: Path, port: int, upstream_file: Path, variable: str = "GOLIVE_UPSTREAM") -> None:
        self.root, self.port, self.upstream_file, self.variable = root, port, upstream_file, variable
        self.conf = root / "httpd.conf"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def test_command(self) -> list[str]:
        return ["apache2", "-f", str(self.conf), "-t"]

    @property
    def reload_command(self) -> list[str]:
        return ["apache2", "-f", str(self.conf), "-k", "graceful"]

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        mods = ["mpm_event", "authz_core", "proxy", "proxy_http"]
        loads = "".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so\n" for m in mods)
        self.conf.write_text(
            f'ServerRoot "{self.root}"\nServerName 127.0.0.1\nListen 127.0.0.1:{self.port}\n'
            f"PidFile {self.root}/httpd.pid\nErrorLog {self.root}/error.log\nLogLevel warn\n"
            f"Mutex file:{self.root} default\nUser nobody\nGroup nogroup\n{loads}"
            "StartServers 2\nServerLimit 16\nThreadsPerChild 25\nMaxRequestWorkers 400\n"
            "KeepAlive On\nMaxKeepAliveRequests 0\nKeepAliveTimeout 5\nGracefulShutdownTimeout 30\n"
            f"Include {self.upstream_file}\n"
            "ProxyPreserveHost On\nProxyTimeout 10\n"
            f"ProxyPass / ${{{self.variable}}}/ disablereuse=On retry=0\n"
            f"ProxyPassReverse / ${{{self.variable}}}/\n")

    def point_at(self, url: str) -> None:
        self.upstream_file.write_text(upstream_line(self.variable, url))

    def _run(self, *args: str) -> None:
        done = subprocess.run(["apache2", "-f", str(self.conf), *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"apache2 {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self, upstream: str) -> ApacheRunner:
        self.write_config()
        self.point_at(upstream)
        self._run("-k", "start")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"apache did not answer on {self.url}; see {self.root}/error.log")

    def graceful(self) -> None:
        self._run("-k", "graceful")

    def stop(self) -> None:
        pid_file = self.root / "httpd.pid"
        if not pid_file.exists():
            return
        subprocess.run(["apache2", "-f", str(self.conf), "-k", "stop"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 15
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
