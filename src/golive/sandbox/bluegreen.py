"""A complete blue-green stack on this machine: images built locally, a blue container started by
hand (as compose would have, so the first swap adopts it), Apache proxying to it on a loopback
port, and the golive.toml sections that point at all of it. Used by the tests and the benchmark."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golive.sandbox.apache import ApacheRunner
from golive.sandbox.images import build_image
from golive.sandbox.owner import Watcher

__all__ = ["BlueGreen", "build_images", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_images(client: Any, prefix: str) -> dict[str, str]:
    """blue, green (v2), broken (health 404) and green-hc (with a Docker HEALTHCHECK)."""
    tags = {"blue": f"{prefix}:blue", "green": f"{prefix}:green", "broken": f"{prefix}:broken",
            "green-hc": f"{prefix}:green-hc"}
    build_image(client, tags["blue"], "blue")
    build_image(client, tags["green"], "green")
    build_image(client, tags["broken"], "broken", healthy=False)
    build_image(client, tags["green-hc"], "green", healthcheck=True)
    return tags


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


@dataclass
class BlueGreen:
    root: Path
    docker: Any
    images: dict[str, str]
    switch: str = "reload"  # [proxy].switch: "reload" (include + graceful) or "map" (RewriteMap, no restart)
    blue_env: dict[str, str] = field(default_factory=dict)  # the hand-started blue's environment
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.blue, self.green = f"golive-blue-{self.suffix}", f"golive-green-{self.suffix}"
        self.blue_port, self.green_port = free_port(), free_port()
        upstream = self.root / "golive-upstream.conf"
        if self.switch == "map":  # Apache's children (User nobody) read the map at request time
            self.map_dir = Path(tempfile.mkdtemp(prefix="golive-map-"))
            self.map_dir.chmod(0o755)
            upstream = self.map_dir / "golive-upstream.map"
        self.apache = ApacheRunner(self.root / "apache", free_port(), upstream, switch=self.switch,
                                   ports=(self.blue_port, self.green_port))
        self.project = self.root / "project"
        self._watcher: Watcher | None = None

    def up(self) -> BlueGreen:
        """Blue running and Apache serving it; if any part fails, what was started is taken down again."""
        # (this process killed before down(): the colours' containers are removed all the same)
        self._watcher = Watcher(["docker", "rm", "-f", self.blue, self.green])
        try:
            self.docker.containers.run(self.images["blue"], name=self.blue, detach=True, environment=self.blue_env,
                                       ports={"8000/tcp": ("127.0.0.1", self.blue_port)})
            self.apache.start(f"http://127.0.0.1:{self.blue_port}")
            self.project.mkdir(parents=True, exist_ok=True)
            self.write_config()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        import docker.errors

        self.apache.stop()
        if self.switch == "map":
            shutil.rmtree(self.map_dir, ignore_errors=True)
        for name in (self.blue, self.green):
            with contextlib.suppress(docker.errors.NotFound):
                self.docker.containers.get(name).remove(force=True)
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    def write_config(self, *, image: str | None = None, health_timeout: float = 10, docker_url: str | None = None,
                     test_command: list[str] | None = None, containers_extra: str = "",
                     reload_command: list[str] | None = None, health_path: str = "/healthz",
                     proxy_extra: str = "") -> Path:
        config = self.project / "golive.toml"
        docker_line = f'docker_url = "{docker_url}"\n' if docker_url else ""
        config.write_text(f"""\
[project]
name = "bluegreen"

[containers]
{docker_line}image = "{image or self.images['green']}"
port = 8000
health_path = "{health_path}"
health_timeout = {health_timeout}
version_path = "/version"
bake_time = 0
{containers_extra}
[containers.blue]
name = "{self.blue}"
host_port = {self.blue_port}

[containers.green]
name = "{self.green}"
host_port = {self.green_port}

[proxy]
kind = "apache"
switch = "{self.switch}"
upstream_file = "{self.apache.upstream_file}"
test_command = {_toml_list(test_command or self.apache.test_command)}
reload_command = {_toml_list(reload_command or self.apache.reload_command)}
public_url = "{self.apache.url}"
{proxy_extra}""")
        config.chmod(0o600)
        return config

    def container(self, name: str) -> Any | None:
        import docker.errors

        try:
            return self.docker.containers.get(name)
        except docker.errors.NotFound:
            return None
