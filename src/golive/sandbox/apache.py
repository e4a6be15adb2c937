"""An Apache reverse proxy of its own: ServerRoot and config in a directory, a loopback port,
mod_proxy/mod_proxy_http (and mod_rewrite in map mode), and golive's upstream file. start /
graceful / stop, for tests and the sandbox; and the vhost snippet golive expects in a real Apache
(:func:`vhost_snippet`), for either switch mode:

- ``reload``: the upstream file is an include, ``Define VAR http://127.0.0.1:<port>``, used by
  ``ProxyPass``; a switch is a configtest and a graceful restart.
- ``map``: the upstream file is a mod_rewrite ``txt:`` map, ``upstream http://127.0.0.1:<port>``,
  used by a ``RewriteRule … [P]``; mod_rewrite re-reads the map when its mtime changes, so a switch
  is an atomic rename of the file, with no restart.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from golive.sandbox.owner import Watcher
from golive.swap.proxy import MAP_KEY

__all__ = ["MAP_NAME", "ApacheRunner", "upstream_line", "vhost_snippet"]

MODULES = Path("/usr/lib/apache2/modules")
MAP_NAME = "golive"


def upstream_line(variable: str, url: str, switch: str = "reload") -> str:
    return f"{MAP_KEY} {url}\n" if switch == "map" else f"Define {variable} {url}\n"


def _map_directives(upstream_file: str | Path, ports: tuple[int, ...], indent: str = "") -> str:
    workers = "".join(f'{indent}<Proxy "http://127.0.0.1:{p}">\n{indent}    ProxySet retry=0\n{indent}</Proxy>\n'
                      for p in ports)
    reverse = "".join(f"{indent}ProxyPassReverse / http://127.0.0.1:{p}/\n" for p in ports)
    return (f"{indent}RewriteEngine On\n"
            f'{indent}RewriteMap {MAP_NAME} "txt:{upstream_file}"\n'
            f"{indent}# the path as the client sent it, still encoded (a %3F stays %3F); the query string follows\n"
            f'{indent}RewriteCond %{{THE_REQUEST}} "^\\S+\\s+(/[^?\\s]*)"\n'
            f'{indent}RewriteRule "^" "${{{MAP_NAME}:{MAP_KEY}}}%1" [P,L,NE]\n'
            f'{indent}RewriteRule "^/(.*)$" "${{{MAP_NAME}:{MAP_KEY}}}/$1" [P,L]\n{reverse}{workers}')


def vhost_snippet(upstream_file: str, variable: str = "GOLIVE_UPSTREAM", switch: str = "reload",
                  ports: tuple[int, int] = (8001, 8002)) -> str:
    """What the Apache site needs so that golive can move it between colours (``ports``: blue, green)."""
    if switch == "map":
        return (f"# golive owns {upstream_file}: one line, `{MAP_KEY} http://127.0.0.1:<port>`, readable by\n"
                "# Apache's user; mod_rewrite re-reads it when it changes, so a switch needs no reload\n"
                "<VirtualHost *:80>\n"
                "    ProxyPreserveHost On\n"
                f"{_map_directives(upstream_file, ports, '    ')}"
                "</VirtualHost>\n")
    return (f"# golive owns {upstream_file}: one line, `Define {variable} http://127.0.0.1:<port>`\n"
            f"Include {upstream_file}\n"
            "<VirtualHost *:80>\n"
            "    ProxyPreserveHost On\n"
            "    # disablereuse: a graceful reload must not leave pooled connections to the old colour\n"
            f"    ProxyPass / ${{{variable}}}/ disablereuse=On retry=0\n"
            f"    ProxyPassReverse / ${{{variable}}}/\n"
            "    # which colour served a request, told only to golive's own probes: a swap and its undo then know\n"
            "    # when the graceful reload has taken effect, with or without version_path (`a2enmod headers`)\n"
            "    <IfModule mod_headers.c>\n"
            f"        {upstream_header(variable)}\n"
            "    </IfModule>\n"
            "</VirtualHost>\n")


def upstream_header(variable: str = "GOLIVE_UPSTREAM") -> str:
    return f'Header always set X-Golive-Upstream "${{{variable}}}" "expr=req(\'X-Golive-Probe\') == \'1\'"'


class ApacheRunner:
    def __init__(self, root: Path, port: int, upstream_file: Path, variable: str = "GOLIVE_UPSTREAM",
                 switch: str = "reload", ports: tuple[int, ...] = ()) -> None:
        self.root, self.port, self.upstream_file, self.variable = root, port, upstream_file, variable
        self.switch, self.ports = switch, ports  # ports: the colours' host ports, for map mode's workers
        self.conf = root / "httpd.conf"
        self._watcher: Watcher | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def test_command(self) -> list[str]:
        return ["apache2", "-f", str(self.conf), "-t"]

    @property
    def reload_command(self) -> list[str]:
        return ["apache2", "-f", str(self.conf), "-k", "graceful"]

    def _proxy_directives(self) -> str:
        if self.switch == "map":
            return _map_directives(self.upstream_file, self.ports)
        return (f"Include {self.upstream_file}\n"
                f"ProxyPass / ${{{self.variable}}}/ disablereuse=On retry=0\n"
                f"ProxyPassReverse / ${{{self.variable}}}/\n{upstream_header(self.variable)}\n")

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        mods = ["mpm_event", "authz_core", "proxy", "proxy_http"] + (["rewrite"] if self.switch == "map" else ["headers"])
        loads = "".join(f"LoadModule {m}_module {MODULES}/mod_{m}.so\n" for m in mods)
        self.conf.write_text(
            f'ServerRoot "{self.root}"\nServerName 127.0.0.1\nListen 127.0.0.1:{self.port}\n'
            f"PidFile {self.root}/httpd.pid\nErrorLog {self.root}/error.log\nLogLevel warn\n"
            f"Mutex file:{self.root} default\nUser nobody\nGroup nogroup\n{loads}"
            "StartServers 2\nServerLimit 16\nThreadsPerChild 25\nMaxRequestWorkers 400\n"
            "KeepAlive On\nMaxKeepAliveRequests 0\nKeepAliveTimeout 5\nGracefulShutdownTimeout 30\n"
            f"ProxyPreserveHost On\nProxyTimeout 10\n{self._proxy_directives()}")

    def point_at(self, url: str) -> None:
        self.upstream_file.write_text(upstream_line(self.variable, url, self.switch))

    def _run(self, *args: str) -> None:
        done = subprocess.run(["apache2", "-f", str(self.conf), *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"apache2 {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self, upstream: str) -> ApacheRunner:
        self.write_config()
        self.point_at(upstream)
        self._run("-k", "start")
        self._watcher = Watcher(["apache2", "-f", str(self.conf), "-k", "stop"])  # (if this process dies first)
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
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
