"""Container images built locally, with no registry: ``FROM scratch`` plus the static busybox of
Debian's ``busybox-static`` package, whose ``httpd`` serves ``/healthz`` and ``/version``.

``healthy`` images answer 200 on the health path; ``unhealthy`` ones answer 404 there (the server
runs, the app is broken). ``healthcheck=True`` adds a Docker HEALTHCHECK that fetches the health
path with busybox ``wget``, so golive's Docker-health path is exercised too.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["BUSYBOX", "build_image", "dockerfile"]

BUSYBOX = Path("/bin/busybox")


def dockerfile(port: int, healthcheck: bool) -> str:
    lines = ["FROM scratch", "COPY busybox /bin/busybox", "COPY www /www", f"EXPOSE {port}"]
    if healthcheck:
        lines.append(f'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["/bin/busybox", "wget", "-q", "-O",'
                     f' "/dev/null", "http://127.0.0.1:{port}/healthz"]')
    lines.append(f'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "{port}", "-h", "/www"]')
    return "\n".join(lines) + "\n"


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


# like a Django app's ALLOWED_HOSTS: /cgi-bin/healthz answers 400 unless the request's Host is the allowed one
_HOST_CHECK = """#!/bin/busybox sh
case "${{HTTP_HOST%%:*}}" in
  {host}) printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n' ;;
  *) printf 'Status: 400 Bad Request\\r\\nContent-Type: text/plain\\r\\n\\r\\nDisallowedHost\\n' ;;
esac
"""


def context(version: str, port: int, healthy: bool, healthcheck: bool, allowed_host: str | None = None) -> bytes:
    busybox = shutil.which("busybox") or str(BUSYBOX)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "Dockerfile", dockerfile(port, healthcheck).encode())
        _add(tar, "busybox", Path(busybox).read_bytes(), 0o755)
        www = {"www/version": f"{version}\n", "www/index.html": f"<h1>directory {version}</h1>\n"}
        if healthy:
            www["www/healthz"] = "ok\n"
        for name, text in www.items():
            _add(tar, name, text.encode())
        if allowed_host:
            _add(tar, "www/cgi-bin/healthz", _HOST_CHECK.format(host=allowed_host).encode(), 0o755)
    return buffer.getvalue()


def build_image(client: Any, tag: str, version: str, *, port: int = 8000, healthy: bool = True,
                healthcheck: bool = False, allowed_host: str | None = None) -> str:
    """Build ``tag`` with the docker SDK from an in-memory context; returns the image id. ``allowed_host``:
    also serve ``/cgi-bin/healthz``, which answers 400 to any other Host (as Django's ALLOWED_HOSTS does)."""
    image, _ = client.images.build(fileobj=io.BytesIO(context(version, port, healthy, healthcheck, allowed_host)),
                                   custom_context=True, tag=tag, rm=True, labels={"golive.sandbox": "1"})
    return str(image.id)
