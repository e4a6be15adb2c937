"""The proxy gateway: golive's upstream file, the configtest and the graceful reload (the only place
that runs them), and HTTP probes through httpx.

Two switch modes (``[proxy].switch``): ``reload`` — the file is an Apache include
(``Define VAR <url>``) and a switch is write, configtest, graceful reload; ``map`` — the file is a
mod_rewrite ``txt:`` map (``upstream <url>``) that mod_rewrite re-reads when its mtime changes, and
a switch is configtest, then an atomic rename with a new mtime: no restart, no closed connection.
Either way the live colour is what the file points at; :meth:`ProxyGateway.upstream` reads both."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from golive.errors import ConfigError, GoliveError

if TYPE_CHECKING:
    import httpx

    from golive.config.models import GoliveConfig, Proxy

__all__ = ["MAP_KEY", "ProxyGateway", "ReloadFailed", "from_config", "probe", "probe_served", "tls_error"]

MAP_KEY = "upstream"  # the key of the RewriteMap line: `upstream http://127.0.0.1:<port>`


def from_config(config: GoliveConfig) -> ProxyGateway:
    return ProxyGateway(config.require("proxy"), config.resolve(config.require("proxy").upstream_file))


_client: httpx.Client | None = None
_client_lock = threading.Lock()  # `golive status` probes from threads


def _probe_client() -> httpx.Client:
    """One client for the process: each ``httpx.get`` builds a transport with its own TLS context (the
    CA bundle parsed again, ~35 ms of CPU), and a swap probes several times while the live site is
    sharing the CPUs. No connection is kept between probes: each probe is a new connection, as before
    (a kept-alive one could be a connection the proxy's reload has since closed)."""
    global _client
    import httpx

    with _client_lock:
        if _client is None:
            _client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
        return _client


# Asked for with the probe header, the vhost golive prints (reload mode) answers which upstream served the
# request: `Header always set X-Golive-Upstream "${GOLIVE_UPSTREAM}" "expr=req('X-Golive-Probe') == '1'"`.
# Each config generation has its own value, so after a graceful reload it says whether the new one answers.
PROBE_HEADER, UPSTREAM_HEADER = "X-Golive-Probe", "X-Golive-Upstream"


def probe(url: str, timeout: float = 2.0, host: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET, or (0, error name) when nothing answered. ``host``: the Host header to send
    instead of the URL's own (the site's name, which a Django app must find in ALLOWED_HOSTS)."""
    status, body, _ = probe_served(url, timeout, host)
    return status, body


def probe_served(url: str, timeout: float = 2.0, host: str | None = None) -> tuple[int, str, str | None]:
    """``probe``, and the upstream the proxy says served it (None: the vhost does not say). ``timeout`` bounds
    the whole probe: a proxy that trickles its answer a byte at a time resets httpx's read timeout with every
    byte, and a swap's confirm loop, or its undo, would wait on it for ever; so the request runs in a thread
    the probe stops waiting for (it ends with the process, or when the proxy gives up)."""
    answer: list[tuple[int, str, str | None]] = []
    worker = threading.Thread(target=lambda: answer.append(_get(url, timeout, host)), name="golive-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.25)
    return answer[0] if answer else (0, "ReadTimeout", None)


def _get(url: str, timeout: float, host: str | None) -> tuple[int, str, str | None]:
    import httpx

    headers = {PROBE_HEADER: "1", **({"Host": host} if host else {})}
    # https with public_host (public_url is the new server's address, before DNS): the certificate is the site's,
    # so it is checked for that name, and that name is the SNI — not the address in the URL ("IP address mismatch")
    tls_name = _tls_name(host) if host and url.lower().startswith("https://") else None
    try:
        response = _probe_client().get(url, timeout=timeout, headers=headers,
                                       extensions={"sni_hostname": tls_name} if tls_name else None)
    except httpx.HTTPError as exc:
        return 0, tls_error(exc) or type(exc).__name__, None
    return response.status_code, response.text, response.headers.get(UPSTREAM_HEADER)


def _tls_name(host: str) -> str:
    """The name in a Host header, without its port ("example.org:8443", "[::1]:443")."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def tls_error(exc: BaseException) -> str | None:
    """"TLS: <what failed>" when the probe failed in the TLS handshake (a certificate not valid for the name, not
    trusted, expired…); None for any other failure. It used to show as a bare ConnectError, read as "Apache down"."""
    import ssl

    seen: BaseException | None = exc
    for _ in range(8):  # (the cause chain: httpx's ConnectError from httpcore's from ssl's)
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: certificate verify failed: {seen.verify_message or seen.reason}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {seen.reason or type(seen).__name__}"
        seen = seen.__cause__ or seen.__context__
    return None


def _like(tmp: Path, old: os.stat_result) -> None:
    """In map mode Apache's children (www-data) read the file at request time: keep the old file's
    mode and group. And mod_rewrite keeps a map's entries until its mtime changes (compared in
    microseconds): two writes within one tick would leave the old colour cached, so move it on."""
    os.chmod(tmp, old.st_mode & 0o7777)
    with contextlib.suppress(OSError):
        os.chown(tmp, -1, old.st_gid)
    if tmp.stat().st_mtime_ns // 1_000_000_000 <= old.st_mtime_ns // 1_000_000_000:
        later = old.st_mtime_ns + 1_000_000_000  # a whole second: a change even with 1 s timestamps
        os.utime(tmp, ns=(later, later))


class ReloadFailed(GoliveError):
    """The proxy's reload command failed: what Apache runs now is not known from here (the public URL
    tells)."""


class ProxyGateway:
    def __init__(self, proxy: Proxy, upstream_file: Path) -> None:
        self.proxy = proxy
        self.file = upstream_file

    @property
    def map_mode(self) -> bool:
        return self.proxy.switch == "map"

    def line(self, url: str) -> str:
        return f"{MAP_KEY} {url}\n" if self.map_mode else f"Define {self.proxy.upstream_variable} {url}\n"

    def read(self) -> str | None:
        """The file's text, None if there is none; one that cannot be read as text is a one-line error naming
        the file and the fix (it was `internal error: IsADirectoryError` / `UnicodeDecodeError`)."""
        if not self.file.exists():
            return None
        fix = f"one line, {self.line('http://127.0.0.1:<live host_port>').strip()}"
        try:
            return self.file.read_text(encoding="utf-8")
        except IsADirectoryError:
            raise ConfigError(f"the upstream file {self.file} is a directory, not a file ([proxy].upstream_file)",
                              hint=f"remove the directory and write the file, {fix}; or fix [proxy].upstream_file")\
                from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"the upstream file {self.file} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at"
                              f" offset {exc.start})", hint=f"write it again as {fix}") from None
        except OSError as exc:
            raise ConfigError(f"the upstream file {self.file} cannot be read: {exc.strerror or exc}",
                              hint="golive must be able to read and replace it: check its owner and mode") from None

    def upstream(self) -> str:
        """The URL the upstream file points at (the live colour)."""
        text = self.read()
        if text is None:
            raise ConfigError(f"the upstream file {self.file} does not exist ([proxy].upstream_file)",
                              hint=f"write it once by hand: {self.line('http://127.0.0.1:<blue host_port>').strip()} —"
                                   " and include it in the Apache site (`golive init` prints the vhost snippet)")
        # As Apache reads it: a Define of the same variable again replaces its value (the last one counts), and
        # mod_rewrite's txt map takes the first line with the key at its very start (one that starts with a space
        # or "#" is skipped). A second line added by hand (a quick switch back, the old line left above it) is
        # what Apache serves: read the first Define instead, and a swap replaced the colour serving.
        defines = [m[1] or m[2] for m in re.finditer(
            rf"^[ \t]*(?i:define)[ \t]+{re.escape(self.proxy.upstream_variable)}[ \t]+(?:\"([^\"\n]*)\"|(\S+))", text, re.M)]
        mapped = [m[1] for m in re.finditer(rf"^{MAP_KEY}[ \t]+(\S+)", text, re.M)]
        found = (mapped[:1] or defines[-1:]) if self.map_mode else (defines[-1:] or mapped[:1])
        if not found:
            wanted = f"has no `{MAP_KEY} <url>` line" if self.map_mode else f"does not define {self.proxy.upstream_variable}"
            raise ConfigError(f"the upstream file {self.file} {wanted}",
                              hint=f"write it once by hand: {self.line('http://127.0.0.1:<blue host_port>').strip()}")
        return found[0]

    def write(self, text: str) -> None:
        """Atomically (tmp + rename), keeping the old file's mode and group, with an mtime other than its."""
        tmp = self.file.with_name(f".{self.file.name}.golive-tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            try:
                old = self.file.stat()
            except FileNotFoundError:
                old = None
            if old is not None:
                _like(tmp, old)
            os.replace(tmp, self.file)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"the upstream file {self.file} cannot be written: {exc.strerror or exc}",
                              hint="golive must be able to write its folder and replace the file: check their owner"
                                   " and mode, or fix [proxy].upstream_file") from None

    def _command(self, what: str, command: list[str]) -> None:
        try:
            # (its own session: a hung-up terminal's SIGHUP, sent to golive's whole process group, killed the
            # reload golive was letting finish)
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            said = f"proxy {what} `{' '.join(command)}` could not run: {exc}"
            if what == "reload":  # (as a reload that failed: what Apache runs is for the public URL to tell)
                raise ReloadFailed(said, hint="fix [proxy].reload_command") from None
            raise GoliveError(said, hint=f"fix [proxy].{what}_command") from None
        if done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip()).splitlines()
            said = f"proxy {what} `{' '.join(command)}` failed: {output[-1] if output else done.returncode}"
            if what == "reload":
                raise ReloadFailed(said, hint="Apache may still run its previous configuration: is it running, and"
                                              " may golive signal it? fix [proxy].reload_command")
            unchanged = "the upstream file was not changed" if self.map_mode else \
                "the proxy configuration was put back and not reloaded"
            raise GoliveError(said, hint=unchanged)

    def test(self) -> None:
        self._command("test", self.proxy.test_command)

    def reload(self) -> None:
        self._command("reload", self.proxy.reload_command)

    def switch(self, text: str) -> None:
        """reload: write the upstream file, configtest, graceful reload — never reload a config that fails
        its test. map: configtest (Apache's config parses and its map file exists), then write: Apache
        picks the new map up on the next request, with no restart."""
        if self.map_mode:
            self.test()
            self.write(text)
            return
        previous = self.read()
        self.write(text)
        try:
            self.test()
        except GoliveError:
            if previous is not None:
                self.write(previous)
            raise
        self.reload()

    def served(self, path: str) -> str | None:
        """The upstream that served ``path`` through the public URL, when the vhost tells golive's probes."""
        return probe_served(self.proxy.public_url.rstrip("/") + path, host=self.proxy.public_host)[2]

    def not_switched(self, path: str, served: str, wanted: str) -> GoliveError:
        """The public URL is still served by ``served`` once the confirmation's time is up."""
        return GoliveError(
            f"through the proxy, {path} is still served by {served}, not {wanted}, after"
            f" {self.proxy.confirm_timeout:g}s ([proxy].confirm_timeout): "
            + ("the site does not follow the map" if self.map_mode else "the reload did not take effect"),
            hint=f"does the site use the RewriteMap of {self.file}, readable by Apache's user? (`golive init` prints"
                 " the vhost)" if self.map_mode else "[proxy].reload_command must gracefully restart the Apache"
                 " behind [proxy].public_url")

    def public(self, path: str, expect: str | None, deadline: float, upstream: str | None = None) -> tuple[int, str]:
        """Poll the public URL until it answers 2xx (and ``expect`` when given; and from ``upstream`` when the
        vhost says which upstream served it) or the deadline passes."""
        url = self.proxy.public_url.rstrip("/") + path
        while True:
            status, body, served = probe_served(url, host=self.proxy.public_host)
            if 200 <= status < 300 and (expect is None or body.strip() == expect.strip()) and \
                    (upstream is None or served is None or served.rstrip("/") == upstream.rstrip("/")):
                return status, body
            if time.monotonic() >= deadline:
                if upstream is not None and served is not None and served.rstrip("/") != upstream.rstrip("/"):
                    raise self.not_switched(path, served, upstream)
                return status, body
            time.sleep(0.1)
