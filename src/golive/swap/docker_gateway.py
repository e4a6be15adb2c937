"""The Docker gateway: the only module that imports ``docker``. Containers as plain dicts.

Every call to the engine fails as one :class:`GoliveError` naming Docker, what golive was doing and the
fix — never the SDK's raw text (``('Connection aborted.', ConnectionRefusedError(111, …))``, ``500
Server Error for http+docker://…``)."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from golive.errors import GoliveError, first_line

if TYPE_CHECKING:
    from golive.config.models import GoliveConfig

__all__ = ["BuildGone", "DockerGateway", "DockerUnreachable", "from_config", "port_in_use", "short"]

PING_TIMEOUT = 10.0  # s: a daemon that takes the connection and never answers (hung dockerd, a stale socket)
# s an undo's Docker call waits for its answer (the SDK's own 60 s: a rollback that sat a minute in silence on a hung
# daemon before putting the site back): inspecting, starting, creating or removing a container answers in far less
UNDO_TIMEOUT = 10.0
# the label naming the image reference a container made again from its build (image id) was started from: its
# Config.Image is that id then, and `golive status` and the plans would show "sha256:…" for an adopted colour
REF_LABEL = "golive.ref"


def from_config(config: GoliveConfig) -> DockerGateway:
    return DockerGateway(config.require("containers").docker_url)


class DockerUnreachable(GoliveError):
    """The daemon does not answer at all (stopped, restarting, hung, a wrong docker_url) — not an answer saying
    no. The containers it started usually keep running, and serving, meanwhile: an undo can still point the
    proxy back at a colour that answers on its host port."""


def short(build: str | None) -> str:
    """An image id as Docker shows it (12 hex digits, no ``sha256:``)."""
    return str(build or "").removeprefix("sha256:")[:12]


class BuildGone(GoliveError):
    """The build (image id) a recorded container ran is no longer on this host (``docker image prune``, ``docker
    rmi``): it cannot be made again as it was, and its tag may point at another build now."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        super().__init__(f"container {record['name']}'s build {short(record.get('image_id'))} ({record['image']}) is no"
                         " longer on this host; nothing was created",
                         hint=f"put that very build back (`docker load` a saved copy, or `docker pull` it by digest),"
                              f" then run this again; or deploy {record['image']} as it is now: `golive swap --image"
                              f" {record['image']}`")


_F = TypeVar("_F", bound=Callable[..., Any])


def _engine(doing: str) -> Callable[[_F], _F]:
    """Translate what the engine raises into one line. ``doing`` is formatted with the call's arguments
    (``"starting container {0}"``)."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def call(self: DockerGateway, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except GoliveError:
                raise
            except Exception as exc:
                raise self.failure(doing.format(*args), exc) from exc

        return call  # type: ignore[return-value]

    return wrap


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class DockerGateway:
    def __init__(self, url: str | None) -> None:
        import docker

        host = os.environ.get("DOCKER_HOST")
        self.local = not (url or host or "").startswith(("tcp://", "ssh://", "http://", "https://"))
        self.url = url or (f"{host} (DOCKER_HOST)" if host else "unix:///var/run/docker.sock (the default)")
        import docker.constants
        import requests.exceptions

        try:
            # the first call with a short timeout, then the SDK's own (image pulls, container stops take long)
            self.client = docker.DockerClient(base_url=url, timeout=PING_TIMEOUT) if url \
                else docker.from_env(timeout=PING_TIMEOUT)
            self.client.ping()
        except Exception as exc:
            timed_out = isinstance(exc, requests.exceptions.Timeout) or isinstance(exc.__context__,
                                                                                   requests.exceptions.Timeout)
            why = f"within {PING_TIMEOUT:g}s" if timed_out else f"({type(exc).__name__})"
            raise DockerUnreachable(f"the Docker daemon at {self.url} does not answer {why}",
                              hint="start dockerd, or fix [containers].docker_url; nothing was changed") from None
        self.client.api.timeout = docker.constants.DEFAULT_TIMEOUT_SECONDS

    def close(self) -> None:
        self.client.close()

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Each call to the engine in the block waits at most ``seconds`` (at least 1 s) for its answer, instead of
        the SDK's 60 s: a daemon that takes requests and never answers (hung, SIGSTOPped) fails the call then, as
        :class:`DockerUnreachable` saying how long it waited."""
        before = self.client.api.timeout
        self.client.api.timeout = max(1.0, round(seconds, 1))
        try:
            yield
        finally:
            self.client.api.timeout = before

    def failure(self, doing: str, exc: Exception) -> GoliveError:
        import docker.errors
        import requests.exceptions

        if isinstance(exc, requests.exceptions.RequestException) and not isinstance(exc, docker.errors.APIError):
            why = f"no answer within {self.client.api.timeout:g}s" if isinstance(exc, requests.exceptions.Timeout) else \
                "connection refused" if "refused" in str(exc).lower() else "connection lost"
            return DockerUnreachable(f"the Docker daemon at {self.url} stopped answering while {doing} ({why})",
                               hint="start dockerd, or fix [containers].docker_url; `golive status` shows where"
                                    " things stand")
        said = str(exc.explanation) if isinstance(exc, docker.errors.APIError) and exc.explanation else first_line(exc)
        said = said.strip().splitlines()[0] if said.strip() else type(exc).__name__
        if "address already in use" in said or "port is already allocated" in said:
            return GoliveError(f"Docker could not finish {doing}: its host port is taken ({said})",
                               hint="free the port (`ss -ltnp` shows who holds it), then run again")
        return GoliveError(f"Docker could not finish {doing}: {said}",
                           hint="see `docker info` and the daemon's log (`journalctl -u docker`)")

    @_engine("looking up image {0}")
    def local_image(self, ref: str) -> str | None:
        """The image id of ``ref`` on this host (None: not here; a swap would pull it first)."""
        import docker.errors

        try:
            return str(self.client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    @_engine("getting image {0}")
    def ensure_image(self, ref: str) -> str:
        """The image id of ``ref``, pulling it if it is not here; a clear error if neither works."""
        import docker.errors

        try:
            return str(self.client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            pass
        try:
            return str(self.client.images.pull(ref).id)
        except docker.errors.DockerException:
            raise GoliveError(f"image {ref} is not on this host and cannot be pulled",
                              hint="build or `docker load` it here, or fix --image / [containers].image") from None

    @_engine("reading image {0}")
    def has_healthcheck(self, ref: str) -> bool:
        config = self.client.images.get(ref).attrs.get("Config") or {}
        test = (config.get("Healthcheck") or {}).get("Test") or []
        return bool(test) and test != ["NONE"]

    @_engine("inspecting container {0}")
    def container(self, name: str) -> dict[str, Any] | None:
        import docker.errors

        try:
            c = self.client.containers.get(name)
        except docker.errors.NotFound:
            return None
        attrs = c.attrs
        config = attrs.get("Config") or {}
        host = attrs.get("HostConfig") or {}
        networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        labels, image = config.get("Labels") or {}, config.get("Image")
        made_again = str(image or "").startswith("sha256:")  # (made from its build by an undo: recreate)
        return {
            # everything to create it again as it was (volumes, networks and their aliases, command, user,
            # limits…); its environment is kept out of the journal (golive.swap.kept)
            "config": {k: v for k, v in config.items() if k != "Env"}, "host_config": host,
            "networks": {name: {k: e.get(k) for k in ("Aliases", "IPAMConfig", "Links") if e.get(k)}
                         for name, e in networks.items()},
            # image: the reference it was started from (a tag may move on to a newer build); image_id: the build
            "name": name, "id": c.id, "image": labels.get(REF_LABEL, image) if made_again else image,
            "image_id": attrs.get("Image"), "status": c.status, "made_again": made_again,
            "running": c.status == "running", "labels": labels, "env": config.get("Env") or [],
            "ports": host.get("PortBindings") or {}, "restart": (host.get("RestartPolicy") or {}).get("Name") or "",
            "health": ((attrs.get("State") or {}).get("Health") or {}).get("Status"),
        }

    @_engine("starting container {0} from {1}")
    def run(self, name: str, image: str, *, port: int, host_port: int, env: dict[str, str] | list[str],
            labels: dict[str, str], volumes: Sequence[str] = (), networks: Sequence[str] = (),
            extra_hosts: dict[str, str] | None = None) -> str:
        """Create and start a container; it is on its first network from the start, the others are
        connected before it starts (so the application never runs without its database)."""
        container = self.client.containers.create(
            image, name=name, environment=env, labels=labels, volumes=list(volumes), extra_hosts=extra_hosts or None,
            ports={f"{port}/tcp": ("127.0.0.1", host_port)}, restart_policy={"Name": "unless-stopped"},
            network=networks[0] if networks else None)
        for network in networks[1:]:
            self.client.networks.get(network).connect(container)
        container.start()
        return str(container.id)

    @_engine("looking up volumes and networks")
    def missing(self, volumes: Sequence[str], networks: Sequence[str]) -> list[str]:
        """What the new colour would mount or join but does not exist (docker would quietly make an empty
        directory or volume in its place: the new release without its users' files)."""
        import docker.errors

        absent = []
        for volume in volumes:
            source = volume.split(":")[0]
            if source.startswith("/"):
                if self.local and not os.path.exists(source):  # (a remote engine's paths are not ours to see)
                    absent.append(f"host path {source}")
                continue
            try:
                self.client.volumes.get(source)
            except docker.errors.NotFound:
                absent.append(f"volume {source}")
        for network in networks:
            try:
                self.client.networks.get(network)
            except docker.errors.NotFound:
                absent.append(f"network {network}")
        return absent

    @_engine("creating container {0[name]} again")
    def recreate(self, record: dict[str, Any], spec: dict[str, Any]) -> None:
        """Create a container again from what :meth:`container` recorded of it (``spec``: how it was
        created, kept out of the journal: golive.swap.kept), from the very build it ran: a tag such as
        ``latest`` has often moved on to the release being rolled back. A build no longer on this host is
        :class:`BuildGone`, nothing created: made from the tag, the "old" colour ran whatever build the tag
        points at now (only a record of a golive that kept no build is made from its reference)."""
        ports = {key: (b[0].get("HostIp") or "127.0.0.1", int(b[0]["HostPort"]))
                 for key, b in record["ports"].items() if b}
        build = record.get("image_id") or record["image"]
        if record.get("image_id") and self.local_image(build) is None:
            raise BuildGone(record)
        labels = dict(record["labels"])
        if build != record["image"] and not str(record["image"]).startswith("sha256:"):
            labels[REF_LABEL] = record["image"]  # (its Config.Image is the build's id now: the label names it)
        if "config" in spec:
            self._create_as_was(record["name"], spec, build, record["running"], labels)
            return
        container = self.client.containers.create(  # (a record of an older golive: what it kept)
            build, name=record["name"], environment=spec.get("env") or [], labels=labels, ports=ports,
            restart_policy={"Name": record["restart"]} if record["restart"] else None)
        if record["running"]:
            container.start()

    def _create_as_was(self, name: str, spec: dict[str, Any], build: str, running: bool,
                       labels: dict[str, str]) -> None:
        """The Engine API's own create, with the recorded Config and HostConfig; the first network at
        create (the API takes one there), the others connected after, each with its aliases."""
        networks: dict[str, dict[str, Any]] = spec.get("networks") or {}
        mode = spec["host_config"].get("NetworkMode") or "default"
        first = mode if mode in networks else next(iter(networks), None)
        body = {**spec["config"], "Env": spec["env"], "Image": build, "Labels": labels, "HostConfig": spec["host_config"],
                "NetworkingConfig": {"EndpointsConfig": {first: networks[first]} if first else {}}}
        created = self.client.api.create_container_from_config(body, name)
        for name, endpoint in networks.items():
            if name != first:
                self.client.api.connect_container_to_network(created["Id"], name, aliases=endpoint.get("Aliases"),
                                                             links=endpoint.get("Links"))
        if running:
            self.client.api.start(created["Id"])

    @_engine("starting container {0}")
    def start(self, name: str) -> None:
        """Running again: started if it stopped (or was only created), unpaused if it was paused (Docker refuses
        to start a paused container)."""
        container = self.client.containers.get(name)
        if container.status == "paused":
            container.unpause()
        else:
            container.start()

    @_engine("removing container {0}")
    def remove(self, name: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(name).remove(force=True)

    @_engine("checking the health of container {0}")
    def health(self, name: str) -> str | None:
        c = self.client.containers.get(name)
        c.reload()
        if c.status != "running":
            return f"exited ({c.status})"
        health = ((c.attrs.get("State") or {}).get("Health") or {}).get("Status")
        return str(health) if health else None

    def logs(self, name: str, lines: int = 20) -> list[str]:
        import docker.errors
        import requests.exceptions

        try:
            raw = self.client.containers.get(name).logs(tail=lines)
        except (docker.errors.DockerException, requests.exceptions.RequestException):  # (only to show: none then)
            return []
        return bytes(raw).decode(errors="replace").splitlines()
