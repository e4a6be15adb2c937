"""Real Docker engine and real Apache: images built locally (FROM scratch + static busybox), a
blue container started by hand (as compose would have), Apache proxying to it on a loopback port,
and a golive.toml pointing at all of it (golive.sandbox.bluegreen). ``swap_env`` switches colours
with the include + graceful reload, ``swap_env_map`` with the RewriteMap (no restart)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golive.sandbox.apache import MODULES
from golive.sandbox.bluegreen import BlueGreen, build_images
from golive.sandbox.images import build_image
from tests.conftest import docker_available, require_real


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    require_real("docker", docker_available(), "no Docker engine answers `docker info`")
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(docker_client: Any) -> Iterator[dict[str, str]]:
    require_real("busybox-static", Path("/bin/busybox").exists() or shutil.which("busybox") is not None)
    tags = build_images(docker_client, f"golive-test-{uuid.uuid4().hex[:6]}")
    yield tags
    for tag in tags.values():
        docker_client.images.remove(tag, force=True)


def _env(tmp_path: Path, docker_client: Any, images: dict[str, str], monkeypatch: pytest.MonkeyPatch,
         switch: str) -> Iterator[BlueGreen]:
    yield from running(BlueGreen(tmp_path, docker_client, images, switch=switch), monkeypatch)


def running(env: BlueGreen, monkeypatch: pytest.MonkeyPatch, names: str | None = None) -> Iterator[BlueGreen]:
    """A fixture's body: Apache and blue up (containers named ``<names>-blue-…`` when given), the test in the
    project folder with no fault or DOCKER_HOST inherited, everything down after."""
    modules = ["mod_proxy_http.so"] + (["mod_rewrite.so"] if env.switch == "map" else [])
    require_real("apache2", shutil.which("apache2") is not None and all((MODULES / m).exists() for m in modules))
    if names:  # (before up(): the config names them)
        env.blue, env.green = f"{names}-blue-{env.suffix}", f"{names}-green-{env.suffix}"
    try:
        env.up()
        monkeypatch.chdir(env.project)
        monkeypatch.delenv("GOLIVE_FAULT", raising=False)
        os.environ.pop("DOCKER_HOST", None)
        yield env
    finally:
        env.down()


@pytest.fixture
def swap_env(tmp_path: Path, docker_client: Any, images: dict[str, str],
             monkeypatch: pytest.MonkeyPatch) -> Iterator[BlueGreen]:
    yield from _env(tmp_path, docker_client, images, monkeypatch, "reload")


@pytest.fixture
def swap_env_map(tmp_path: Path, docker_client: Any, images: dict[str, str],
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[BlueGreen]:
    yield from _env(tmp_path, docker_client, images, monkeypatch, "map")


def _context(dockerfile: str, www: dict[str, str]) -> bytes:
    import io
    import tarfile

    from golive.sandbox.images import BUSYBOX

    files = {"Dockerfile": (dockerfile.encode(), 0o644),
             "busybox": (Path(shutil.which("busybox") or str(BUSYBOX)).read_bytes(), 0o755),
             **{f"www/{name}": (text.encode(), 0o644) for name, text in www.items()}}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


_HTTPD = '"/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"'


@pytest.fixture(scope="session")
def odd_images(docker_client: Any, images: dict[str, str]) -> Iterator[dict[str, str]]:
    """hc-nohealthz: a Docker HEALTHCHECK that passes (it fetches /version) on an app whose /healthz is 404;
    envdump: prints DB_PASSWORD and SECRET_KEY at start (as a crashing app's traceback may), /healthz 404."""
    import io

    prefix = images["blue"].split(":")[0] + "-odd"
    dockerfiles = {
        "hc-nohealthz": 'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["/bin/busybox", "wget", "-q", "-O",'
                        f' "/dev/null", "http://127.0.0.1:8000/version"]\nENTRYPOINT [{_HTTPD}]\n',
        "envdump": 'ENTRYPOINT ["/bin/busybox", "sh", "-c", "echo DBP=$DB_PASSWORD; echo SK=$SECRET_KEY;'
                   ' exec /bin/busybox httpd -f -p 8000 -h /www"]\n'}
    tags = {}
    for name, tail in dockerfiles.items():
        tags[name] = f"{prefix}:{name}"
        dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8000\n" + tail
        docker_client.images.build(fileobj=io.BytesIO(_context(dockerfile, {"version": "green\n"})),
                                   custom_context=True, tag=tags[name], rm=True, labels={"golive.sandbox": "1"})
    yield tags
    for tag in tags.values():
        docker_client.images.remove(tag, force=True)


@pytest.fixture
def v3(docker_client: Any, images: dict[str, str]) -> Iterator[str]:
    """A third release (version "v3"), for swaps past green."""
    tag = images["blue"].split(":")[0] + "-v3:v3"
    build_image(docker_client, tag, "v3")
    yield tag
    docker_client.images.remove(tag, force=True)
