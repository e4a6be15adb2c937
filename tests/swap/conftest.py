"""Real Docker engine and real Apache: images built locally (FROM scratch + static busybox), a
blue container started by hand (as compose would have), Apache proxying to it on a loopback port,
and a golive.toml pointing at all of it."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from golive.sandbox.apache import MODULES, ApacheRunner
from golive.sandbox.images import build_image
from tests.conftest import docker_available, require_real

TAG = f"golive-test-{uuid.uuid4().hex[:6]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    tags = {"blue": f"{TAG}:blue", "green": f"{TAG}:green", "broken": f"{TAG}:broken", "green-hc": f"{TAG}:green-hc"}
    build_image(docker_client, tags["blue"], "blue")
    build_image(docker_client, tags["green"], "green")
    build_image(docker_client, tags["broken"], "broken", healthy=False)
    build_image(docker_client, tags["green-hc"], "green", healthcheck=True)
    yield tags
    for tag in tags.values():
        docker_client.images.remove(tag, force=True)


@dataclass
class SwapEnv:
    project: Path
    apache: ApacheRunner
    blue: str
    green: str
    blue_port: int
    green_port: int
    images: dict[str, str]
    docker: Any

    def write_config(self, **overrides: str) -> None:
        values = {"image": self.images["green"], "health_timeout": "10", "docker_url": "",
                  "test_command": repr(self.apache.test_command).replace("'", '"'), **overrides}
        docker_url = f'docker_url = "{values["docker_url"]}"\n' if values["docker_url"] else ""
        config = self.project / "golive.toml"
        config.write_text(f"""\
[project]
name = "swap-test"

[containers]
{docker_url}image = "{values['image']}"
port = 8000
health_path = "/healthz"
health_timeout = {values['health_timeout']}
version_path = "/version"
bake_time = 0

[containers.blue]
name = "{self.blue}"
host_port = {self.blue_port}

[containers.green]
name = "{self.green}"
host_port = {self.green_port}

[proxy]
kind = "apache"
upstream_file = "{self.apache.upstream_file}"
test_command = {values['test_command']}
reload_command = {repr(self.apache.reload_command).replace("'", '"')}
public_url = "{self.apache.url}"
""")
        config.chmod(0o600)

    def container(self, name: str) -> Any | None:
        import docker.errors

        try:
            return self.docker.containers.get(name)
        except docker.errors.NotFound:
            return None


@pytest.fixture
def swap_env(tmp_path: Path, docker_client: Any, images: dict[str, str],
             monkeypatch: pytest.MonkeyPatch) -> Iterator[SwapEnv]:
    require_real("apache2", shutil.which("apache2") is not None and (MODULES / "mod_proxy_http.so").exists())
    suffix = uuid.uuid4().hex[:6]
    blue, green = f"golive-test-blue-{suffix}", f"golive-test-green-{suffix}"
    blue_port, green_port, apache_port = free_port(), free_port(), free_port()
    # blue was started by hand, not by golive: the first swap must adopt it
    docker_client.containers.run(images["blue"], name=blue, detach=True, ports={"8000/tcp": ("127.0.0.1", blue_port)})
    apache = ApacheRunner(tmp_path / "apache", apache_port, tmp_path / "golive-upstream.conf")
    apache.start(f"http://127.0.0.1:{blue_port}")
    project = tmp_path / "project"
    project.mkdir()
    env = SwapEnv(project, apache, blue, green, blue_port, green_port, images, docker_client)
    env.write_config()
    monkeypatch.chdir(project)
    monkeypatch.delenv("GOLIVE_FAULT", raising=False)
    os.environ.pop("DOCKER_HOST", None)
    try:
        yield env
    finally:
        apache.stop()
        for name in (blue, green):
            container = env.container(name)
            if container is not None:
                container.remove(force=True)
