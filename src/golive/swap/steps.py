"""The swap steps: move the proxy to the idle colour (Swap), and later remove the old one (Finalize).

Swap keeps the live side untouched until the new colour is proven: the idle container is started
and must pass its health check (Docker HEALTHCHECK when the image has one, else HTTP on the host
port); only then is the upstream file rewritten, configtested (a failing test puts the old file
back and nothing is reloaded) and Apache gracefully reloaded — or, with ``[proxy] switch = "map"``,
configtested and the RewriteMap renamed into place, with no reload; then the public URL must
answer from the new colour. The undos (:mod:`golive.swap.undo`) point the proxy back at the previous colour
(restarting or recreating it if needed) and remove what the swap created.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.errors import ConfigError, GoliveError, UsageError
from golive.swap.guards import no_unfinished_swap
from golive.swap.kept import keep

if TYPE_CHECKING:
    from golive.config.models import Containers
    from golive.swap.docker_gateway import DockerGateway
    from golive.swap.proxy import ProxyGateway

__all__ = ["COLORS", "Finalize", "Prepare", "Swap", "live_color"]

COLORS = ("blue", "green")


def _containers(ctx: StepContext) -> Containers:
    if ctx.config is None:
        raise ConfigError("swap steps need a config with [containers] and [proxy]")
    containers: Containers = ctx.config.require("containers")
    return containers


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def live_color(containers: Containers, proxy: ProxyGateway) -> str:
    upstream = proxy.upstream().rstrip("/")
    for color in COLORS:
        if upstream == _url(containers.color(color).host_port):
            return color
    raise ConfigError(f"the upstream file points at {upstream}, which is neither blue nor green",
                      hint="point it at one of [containers.blue]/[containers.green]'s host ports")


def _env_file(ctx: StepContext) -> dict[str, str]:
    """[containers].env_file as ``docker run --env-file`` reads it: ``KEY=value`` lines (the value as
    written), ``KEY`` alone takes golive's own variable, ``#`` lines are comments. It holds the
    application's secrets, so like a secret file it must be the owner's alone, and its values are
    registered with the redactor like resolved references."""
    import os

    from golive.secrets import REDACTOR, check_private, plain, url_passwords

    c = _containers(ctx)
    assert c.env_file is not None and ctx.config is not None
    path = ctx.config.resolve(c.env_file)
    if not path.is_file():
        raise ConfigError(f"[containers].env_file {path} does not exist",
                          hint="create it (KEY=value lines, mode 600), or remove env_file")
    check_private(path, "[containers].env_file")
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            if key in os.environ:
                env[key] = os.environ[key]
            continue
        env[key] = value
    # The secrets among them are masked everywhere (the app's own log lines, shown when it fails its health
    # check, may print them): every value that is not plain, whatever its variable is called (DB_PWD,
    # CREDENTIALS: no secret-looking word in the name), and any password in a URL. Not the plain ones (a number,
    # a boolean, an IP address, a short word, a URL without a password): masking INTERNAL_IPS=127.0.0.1 or
    # SITE_SCHEME=http everywhere garbled every upstream URL golive shows ("http://***:8001"). The log tail of a
    # container that fails its health check masks every value (Swap._wait_healthy).
    for value in env.values():
        if not plain(value):
            REDACTOR.add(value)
            REDACTOR.add(value.strip())
        for password in url_passwords(value):
            REDACTOR.add(password)
    return env


def _masked(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` (4 characters or more, longest first) replaced by the redactor's mask."""
    from golive.secrets import MASK

    for value in sorted({v for raw in values for v in (raw, raw.strip()) if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


SPEC_LABEL = "golive.spec"


def _spec_hash(c: Containers, host_port: int, env: dict[str, str]) -> str:
    """A hash of what golive creates the new colour with besides its image — environment (env_file and env,
    resolved), volumes, networks, extra hosts, ports, restart policy — for the ``golive.spec`` label: a prepared
    container made with another configuration is not the one to keep. Only the hash is kept, never the values."""
    spec = {"v": 1, "env": sorted(env.items()), "volumes": list(c.volumes), "networks": list(c.networks),
            "extra_hosts": sorted(c.extra_hosts.items()), "port": c.port, "host_port": host_port,
            "restart": "unless-stopped"}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def _prepared(container: dict[str, Any] | None, color: str, image: str, build: str | None, spec: str) -> bool:
    """``container`` (the idle colour's) already runs this very build, started by golive for this colour
    (`golive swap --prepare`) with the same configuration (``spec``, its label's hash; a container prepared
    before that label existed has none): the swap keeps it instead of starting it again."""
    return bool(_was_prepared(container, color, image, build) and container
                and container["labels"].get(SPEC_LABEL) == spec)


def _was_prepared(container: dict[str, Any] | None, color: str, image: str, build: str | None) -> bool:
    """The same build, started by golive for this colour, running — whatever it was configured with."""
    return bool(container and container["running"] and build and container.get("image_id") == build
                and container["labels"].get("golive.color") == color and container["labels"].get("golive.image") == image)


def _kept_as(container: dict[str, Any] | None) -> str:
    """Why the idle colour's container, running the build asked for, is there: prepared by `swap --prepare`, or made
    again from its recorded build by a rollback (a finalize's undo: the old colour as it ran, with its labels)."""
    if container and container.get("made_again"):
        return "made again from its build by `golive rollback`"
    return "prepared (`swap --prepare`)"


def _publishes(container: dict[str, Any], port: int) -> bool:
    """``container`` publishes host port ``port`` (its port bindings, whatever host address)."""
    return any(str(b.get("HostPort")) == str(port) for bindings in (container.get("ports") or {}).values()
               for b in bindings or [])


def _ok(answer: tuple[int, str]) -> bool:
    return 200 <= answer[0] < 300


def _check_image(image: str | None) -> None:
    """``--image`` read as ``[containers].image`` is: an image reference, else a usage error (it was Docker's
    "invalid reference format", blamed on the daemon, exit 1)."""
    from golive.config.models import _IMAGE

    if image is not None and not _IMAGE.fullmatch(image):
        raise UsageError(f"--image {image!r} is not an image reference ([registry/]name[:tag][@digest], the name in"
                         " lowercase)", hint='e.g. --image "directory-web:1.4"')


class _SwapBase(Step):
    def _docker(self, ctx: StepContext) -> DockerGateway:
        gateway: DockerGateway = ctx.gateways.get("docker")
        return gateway

    def _proxy(self, ctx: StepContext) -> ProxyGateway:
        gateway: ProxyGateway = ctx.gateways.get("proxy")
        return gateway

    def _answers_as_idle(self, ctx: StepContext, live: str, idle: str) -> str | None:
        """With version_path, whether the public URL answers as the idle colour does on its own host port and not
        as the live one does: then Apache serves the idle colour, whatever the upstream file says (edited and not
        reloaded), and without the vhost's X-Golive-Upstream header (mod_headers off) nothing else tells. Returns
        what was seen, or None (they agree, or cannot be told apart: no 2xx answer, or the same version on both)."""
        from golive.swap.proxy import probe

        c, proxy = _containers(ctx), self._proxy(ctx)
        if not c.version_path:
            return None
        host = proxy.proxy.public_host
        public = probe(proxy.proxy.public_url.rstrip("/") + c.version_path, host=host)
        if not _ok(public):
            return None
        own = {color: probe(_url(c.color(color).host_port) + c.version_path, host=host) for color in (live, idle)}
        if not (_ok(own[idle]) and own[idle][1].strip() == public[1].strip()):
            return None
        if _ok(own[live]) and own[live][1].strip() == public[1].strip():
            return None  # (the same version on both: nothing tells them apart)
        said = repr(own[live][1].strip()) if _ok(own[live]) else str(own[live][0] or "nothing")
        return (f"through the proxy {c.version_path} answers {public[1].strip()!r}, as {idle} does on 127.0.0.1:"
                f"{c.color(idle).host_port}, not {said} as {live} does on 127.0.0.1:{c.color(live).host_port}")

    def _confirm_public(self, ctx: StepContext, host_port: int, expected: str | None) -> None:
        """The public URL answers healthy, and (with version_path) 2xx with ``expected``, the container's own version."""
        c, proxy = _containers(ctx), self._proxy(ctx)
        deadline = time.monotonic() + proxy.proxy.confirm_timeout
        status, body = proxy.public(c.health_path, None, deadline, upstream=_url(host_port))
        hint = (f"does the site use the RewriteMap of {proxy.file}, readable by Apache's user? (`golive init`"
                " prints the vhost); see the proxy's error log") if proxy.map_mode else "check the proxy's error log"
        waited = f"after {proxy.proxy.confirm_timeout:g}s ([proxy].confirm_timeout)"
        if not 200 <= status < 300:
            said = status or (f"nothing ({body}: check the certificate and [proxy].public_host)"
                              if body.startswith("TLS:") else "nothing")
            raise GoliveError(f"through the proxy, {c.health_path} answers {said} {waited}", hint=hint)
        if c.version_path and expected is not None:
            status, body = proxy.public(c.version_path, expected, deadline, upstream=_url(host_port))
            if not 200 <= status < 300 or body.strip() != expected.strip():  # (an error page is no version)
                said = repr(body.strip()) if 200 <= status < 300 else str(status or "nothing")
                raise GoliveError(f"through the proxy, {c.version_path} answers {said}, not"
                                  f" {expected.strip()!r} from 127.0.0.1:{host_port}, {waited}", hint=hint)


SWAP_KINDS: tuple[str, ...] = ("swap.swap", "swap.prepare", "swap.finalize")


class Swap(_SwapBase):
    """Start the idle colour from the image, prove it, point the proxy at it."""

    kind = "swap.swap"
    switches = True  # (Prepare: the same up to the health check, then no switch)
    undone_after = SWAP_KINDS  # (its undo switches to the colour it left: a newer swap or prepare changed it)
    undone_after_why = "its undo would switch to a colour that run has changed since"

    def __init__(self, to: str | None = None, image: str | None = None) -> None:
        super().__init__(to=to, image=image)

    @property
    def title(self) -> str:
        return f"swap to {self.params['to'] or 'the idle colour'}"

    def _colors(self, ctx: StepContext) -> tuple[str, str]:
        live = live_color(_containers(ctx), self._proxy(ctx))
        idle = self.params["to"] or ("green" if live == "blue" else "blue")
        if idle == live:
            raise GoliveError(f"{idle} is already live", hint="nothing to swap; `golive status` shows the colours")
        return live, idle

    def _image(self, ctx: StepContext) -> str:
        return str(self.params["image"] or _containers(ctx).image)

    def plan(self, ctx: StepContext) -> list[Change]:
        _check_image(self.params["image"])  # (before Docker is asked anything)
        c, docker = _containers(ctx), self._docker(ctx)
        no_unfinished_swap(ctx)
        if self.switches and (same := self._live_runs_it(ctx)) is not None:
            return same
        live, idle = self._colors(ctx)
        env = self._env(ctx)  # a missing env_file or secret stops the swap here, before the prompt
        absent = docker.missing(c.volumes, c.networks)
        if absent:  # (a bind of a host path docker cannot see from a remote docker_url is its own error then)
            raise ConfigError(f"[containers] names {', '.join(absent)}, which does not exist",
                              hint="create it, or fix [containers].volumes / networks")
        target = c.color(idle)
        existing = docker.container(target.name)
        before = f"{existing['status']} {existing['image']}" if existing else None
        image = self._image(ctx)
        found = docker.local_image(image)  # the exact build that goes live, or that it is not here yet
        built = f"{found.removeprefix('sha256:')[:12]}" if found else "not on this host: pulled first"
        after = f"running {image} ({built}) on 127.0.0.1:{target.host_port}"
        if _prepared(existing, idle, image, found, _spec_hash(c, target.host_port, env)):
            before = after = f"{after}, {_kept_as(existing)}: kept"
        elif _was_prepared(existing, idle, image, found):
            which, since = ("container `golive rollback` made again", "it was first started") if existing and \
                existing.get("made_again") else ("prepared container", "`swap --prepare`")
            after += (f", created again: the {which} was made with another configuration (env, volumes, networks or"
                      f" ports changed since {since})")
        changes = [Change(f"container {target.name} ({idle})", before, after)]
        self._not_the_live_one(ctx, live, idle, existing)
        self._proxy_answers(ctx, live, idle)
        if not self.switches:
            return changes
        return [*changes, Change("proxy upstream", _url(c.color(live).host_port), _url(target.host_port)),
                *self._no_way_back(ctx, live)]

    def _live_runs_it(self, ctx: StepContext) -> list[Change] | None:
        """A swap run again (a retrying script, a second `swap --image REL`): the live colour already runs the
        very build asked for. Swapping again would replace the idle colour — the old release a rollback goes
        back to — with the same new one. Then every change is in place: no run (None: a real swap)."""
        c, docker, proxy = _containers(ctx), self._docker(ctx), self._proxy(ctx)
        live = live_color(c, proxy)
        if self.params["to"] not in (None, live):
            return None
        image = self._image(ctx)
        running, build = docker.container(c.color(live).name), docker.local_image(image)
        if running is None or not running["running"] or build is None or running["image_id"] != build:
            return None
        from golive.swap.proxy import probe

        status, _ = probe(_url(c.color(live).host_port) + c.health_path, host=proxy.proxy.public_host)
        if not 200 <= status < 300:  # (a broken live colour: a swap of the same build is how it is recovered)
            return None
        shown = f"running {image} ({build.removeprefix('sha256:')[:12]}), live"
        url = _url(c.color(live).host_port)
        return [Change(f"container {c.color(live).name} ({live})", shown, shown), Change("proxy upstream", url, url)]

    def _no_way_back(self, ctx: StepContext, live: str) -> list[Change]:
        """The live colour has no container at all (removed by hand: the site is down already): a rollback would
        point the proxy back at a colour with nothing behind it, and fail. The plan says so, before the prompt."""
        name = _containers(ctx).color(live).name
        if self._docker(ctx).container(name) is not None:
            return []
        return [Change(f"warning: container {name} ({live}), which a rollback points the proxy back to", None, None)]

    def _not_the_live_one(self, ctx: StepContext, live: str, idle: str, existing: dict[str, Any] | None) -> None:
        """The container the swap replaces (the idle colour's, by its configured name) must not be the one serving:
        with [containers.blue].name and [containers.green].name exchanged, it publishes the live colour's host port,
        and removing it takes the site down (and leaves nothing to roll back to). And the idle host port must be
        free, or held by that very container, before it is removed: not found taken only once it is gone."""
        from golive.swap.docker_gateway import port_in_use

        c = _containers(ctx)
        target, live_port = c.color(idle), c.color(live).host_port
        if existing is not None and _publishes(existing, live_port):
            raise GoliveError(f"container {target.name}, the idle colour {idle}'s by [containers.{idle}].name, publishes"
                              f" 127.0.0.1:{live_port}, the live colour {live}'s host port: the swap would remove the"
                              " container serving the site; nothing was changed",
                              hint="are [containers.blue].name and [containers.green].name exchanged? `docker ps`"
                                   " shows which container publishes which port: fix golive.toml, then run again")
        if port_in_use(target.host_port) and not (existing is not None and existing["running"]
                                                  and _publishes(existing, target.host_port)):
            raise GoliveError(f"host port 127.0.0.1:{target.host_port} for {idle} is taken by something else; nothing"
                              " was changed", hint=f"free it, or change [containers.{idle}].host_port")

    def _proxy_answers(self, ctx: StepContext, live: str, idle: str) -> None:
        """Before anything changes: the public URL must answer at all. With the proxy down, the switch could not
        be confirmed, nor could its undo (map mode ended half rolled back, exit 4), and reload mode's graceful
        restart would start Apache as a side effect. Any answer will do, an error too: swapping away from a
        failing live colour is what a swap is for. (A prepare switches nothing: the site may be down.)
        And when the vhost says which upstream served the answer, it must be the one the upstream file points at:
        else the file was changed and not reloaded (by hand, or a switch back killed before its reload), and the
        colour the swap takes for the idle one, to replace, may be the one serving."""
        from golive.swap.proxy import probe_served

        c, proxy = _containers(ctx), self._proxy(ctx)
        url, deadline = proxy.proxy.public_url.rstrip("/") + c.health_path, time.monotonic() + 1.0
        while True:
            status, reason, served = probe_served(url, host=proxy.proxy.public_host)
            if status or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if status == 0 and self.switches and reason.startswith("TLS:"):
            raise GoliveError(f"the site's TLS handshake fails through the proxy ({url}: {reason}) before the swap;"
                              " nothing was changed",
                              hint="the certificate must be trusted here and valid for [proxy].public_host (or"
                                   " public_url's host): fix the certificate or public_host, then run again")
        if status == 0 and self.switches:
            raise GoliveError(f"the site answers nothing through the proxy ({url}: {reason}) before the swap; nothing"
                              " was changed",
                              hint="is Apache running, and does [proxy].public_url reach it? Start it, then run again")
        upstream = _url(c.color(live).host_port)
        if served is not None and served.rstrip("/") != upstream:
            serving = f"{idle}, the colour serving" if served.rstrip("/") == _url(c.color(idle).host_port) else \
                f"{idle}, and Apache serves neither colour"
            raise GoliveError(f"Apache serves {served}, not {upstream} as the upstream file {proxy.file} says (changed"
                              f" and not reloaded): a swap would replace {serving}; nothing was changed",
                              hint="make the upstream file point at what Apache should serve, run the proxy's"
                                   " configtest and graceful reload, then run this again")
        self._not_serving_idle(ctx, live, idle)

    def _not_serving_idle(self, ctx: StepContext, live: str, idle: str) -> None:
        seen = self._answers_as_idle(ctx, live, idle)
        if seen is not None:
            raise GoliveError(f"Apache serves {idle}, not {live} as the upstream file {self._proxy(ctx).file} says"
                              f" ({seen}): a swap would replace {idle}, the colour serving; nothing was changed",
                              hint="make the upstream file point at what Apache should serve, run the proxy's"
                                   " configtest and graceful reload, then run this again")

    def snapshot(self, ctx: StepContext) -> Record:
        c, docker, proxy = _containers(ctx), self._docker(ctx), self._proxy(ctx)
        live, idle = self._colors(ctx)
        # Again after the prompt, which may have waited — here, before the journal holds the step: a refusal then
        # changes nothing and has nothing to undo (a failing apply is undone: a configtest and graceful reload).
        existing = docker.container(c.color(idle).name)
        self._not_the_live_one(ctx, live, idle, existing)
        self._not_serving_idle(ctx, live, idle)
        live_record = keep(ctx.state_dir, docker.container(c.color(live).name))
        return {"live": live, "idle": idle, "upstream_text": proxy.read(),
                "upstream_line": proxy.line(_url(c.color(live).host_port)).strip(),  # (what an undo writes back)
                "live_container": live_record, "adopted": bool(live_record and "golive.color" not in live_record["labels"]),
                "idle_container": keep(ctx.state_dir, docker.container(c.color(idle).name))}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        from golive.swap.docker_gateway import port_in_use

        c, docker, proxy = _containers(ctx), self._docker(ctx), self._proxy(ctx)
        idle, image, env = c.color(before["idle"]), self._image(ctx), self._env(ctx)
        if before["adopted"]:
            ctx.log("apply", f"adopting {before['live_container']['name']} ({before['live']}), started outside golive")
        found = docker.ensure_image(image)
        use_docker = docker.has_healthcheck(image)  # (asked before the start: the health wait has a deadline)
        spec = _spec_hash(c, idle.host_port, env)
        if _prepared(before["idle_container"], before["idle"], image, found, spec):
            how = "made again by `golive rollback` from" if before["idle_container"].get("made_again") else "prepared with"
            ctx.log("apply", f"container {idle.name}: {how} {image}, running: kept")
        else:
            docker.remove(idle.name)  # an old idle container: not live, replaced by the new release
            if port_in_use(idle.host_port):
                raise GoliveError(f"host port 127.0.0.1:{idle.host_port} for {before['idle']} is taken by something"
                                  " else", hint=f"free it, or change [containers.{before['idle']}].host_port")
            ctx.log("apply", f"container {idle.name}: run {image} on 127.0.0.1:{idle.host_port}")
            docker.run(idle.name, image, port=c.port, host_port=idle.host_port, env=env,
                       labels={"golive.color": before["idle"], "golive.image": image, SPEC_LABEL: spec},
                       volumes=c.volumes, networks=c.networks, extra_hosts=c.extra_hosts)
        self._wait_healthy(ctx, idle.name, idle.host_port, use_docker, hide=list(env.values()))
        if not self.switches:
            return {**before, "image": image}
        expected = self._own_version(ctx, idle.name, idle.host_port)
        ctx.log("apply", f"proxy upstream -> {_url(idle.host_port)}{' (map, no reload)' if proxy.map_mode else ''}")
        ctx.checkpoint("before-reload")
        proxy.switch(proxy.line(_url(idle.host_port)))
        ctx.checkpoint("after-reload")
        self._confirm_public(ctx, idle.host_port, expected)
        return {**before, "image": image}

    def _env(self, ctx: StepContext) -> dict[str, str]:
        """The new container's environment: env_file's variables, then [containers].env's (secret
        references resolved, so the redactor knows their values)."""
        from golive.secrets import SecretRef

        c = _containers(ctx)
        env = _env_file(ctx) if c.env_file is not None else {}
        for key, value in c.env.items():
            env[key] = value.resolve() if isinstance(value, SecretRef) else value
        return env

    def _wait_healthy(self, ctx: StepContext, name: str, host_port: int, use_docker: bool, hide: list[str]) -> None:
        """Until its health passes or health_timeout; else the container's last log lines in the error, every
        value of its environment (``hide``) masked there whatever it is: the application printing its settings
        as it fails is exactly when they leak, and from the error into the journal, history and reports.
        Docker's answers are waited for until the same deadline, no longer (a hung daemon)."""
        from golive.swap import docker_gateway
        from golive.swap.proxy import probe

        c, docker = _containers(ctx), self._docker(ctx)
        deadline, last = time.monotonic() + c.health_timeout, "no answer"
        ctx.log("apply", f"container {name}: waiting up to {c.health_timeout:g}s for its health ("
                         f"{'Docker HEALTHCHECK, and ' if use_docker else ''}GET {c.health_path} on 127.0.0.1:{host_port})")
        ctx.checkpoint("health-wait")
        while time.monotonic() < deadline:
            with docker.within(deadline - time.monotonic()):
                state = docker.health(name)
            if state is not None and state.startswith("exited"):
                last = state
                break
            if use_docker and state != "healthy":
                last = f"docker health {state}"
            else:  # (a HEALTHCHECK may test something else: the health_path the site is confirmed by must answer too)
                status, _ = probe(_url(host_port) + c.health_path, timeout=1, host=self._host(ctx))
                last = f"{'docker health healthy, but ' if use_docker else ''}GET {c.health_path} -> {status or 'no answer'}"
                if 200 <= status < 300:
                    return
            time.sleep(0.2)
        with docker.within(docker_gateway.UNDO_TIMEOUT):
            logs = docker.logs(name)
            docker.remove(name)
        tail = _masked(" | ".join(logs[-5:]), hide) or "(no output)"
        hint = "fix the image or raise [containers].health_timeout"
        if last.endswith("-> 400") and not self._host(ctx):
            hint = ("a Django app answers 400 to a Host it does not allow (ALLOWED_HOSTS): set [proxy].public_host to"
                    " the site's name, or " + hint)
        raise GoliveError(f"{name} did not become healthy within {c.health_timeout:g}s ({last}); it was removed."
                          f" Last log lines: {tail}", hint=hint)

    def _own_version(self, ctx: StepContext, name: str, host_port: int) -> str | None:
        """What the new colour answers to version_path on its host port, before the switch: a 2xx answer only
        (a 404 or 503 page is no version, and the same page through the proxy would "confirm" anything)."""
        from golive.swap.proxy import probe

        c, proxy = _containers(ctx), self._proxy(ctx)
        if not c.version_path:
            return None
        deadline = time.monotonic() + proxy.proxy.confirm_timeout
        while True:
            status, body = probe(_url(host_port) + c.version_path, host=self._host(ctx))
            if 200 <= status < 300:
                return body
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        raise GoliveError(f"{name} answers {c.version_path} on 127.0.0.1:{host_port} with {status or 'nothing'}, not"
                          f" a version, after {proxy.proxy.confirm_timeout:g}s; the proxy was not switched",
                          hint="its version_path must answer 2xx with the release's version: fix the image or"
                               " [containers].version_path")

    def _host(self, ctx: StepContext) -> str | None:
        return self._proxy(ctx).proxy.public_host

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        from golive.swap.undo import swap_undo_plan

        return swap_undo_plan(ctx, changes, record)

    def undo(self, ctx: StepContext, record: Record) -> None:
        from golive.swap.undo import undo_swap

        undo_swap(ctx, record)

    def check(self, ctx: StepContext) -> list[str]:
        c = _containers(ctx)
        live = live_color(c, self._proxy(ctx))
        expected = self.params["to"] or None
        return [f"the proxy points at {live}, not {expected}"] if expected and live != expected else []

    def manual_undo(self, record: Record) -> list[str]:
        from golive.swap.undo import swap_manual

        return swap_manual(record)


class Prepare(Swap):
    """`golive swap --prepare`: start the idle colour from the image and prove it healthy ahead of time,
    and switch nothing; the swap that follows keeps it, so the night's switch is the switch alone.
    Undo removes it (not while it is live: roll that swap back first)."""

    kind = "swap.prepare"
    switches = False
    undone_after = ()  # (its undo refuses by itself while the swap to it stands, naming it)

    @property
    def title(self) -> str:
        return f"prepare {self.params['to'] or 'the idle colour'}"

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        from golive.swap.undo import prepare_undo_plan

        return prepare_undo_plan(ctx, changes, record)

    def undo(self, ctx: StepContext, record: Record) -> None:
        from golive.swap.undo import undo_prepare

        undo_prepare(ctx, record)

    def check(self, ctx: StepContext) -> list[str]:
        return []

    def manual_undo(self, record: Record) -> list[str]:
        from golive.swap.undo import prepare_manual

        return prepare_manual(record)


class Finalize(_SwapBase):
    """After the bake time: stop and remove the old colour. Undo recreates it from the recorded image."""

    kind = "swap.finalize"
    undone_after = SWAP_KINDS  # (its undo makes the old colour again: a newer swap may have put another there)
    undone_after_why = "its undo would switch to a colour that run has changed since"

    def __init__(self) -> None:
        super().__init__()

    @property
    def title(self) -> str:
        return "swap finalize"

    def _old(self, ctx: StepContext) -> tuple[str, str]:
        c = _containers(ctx)
        live = live_color(c, self._proxy(ctx))
        old = "green" if live == "blue" else "blue"
        return old, c.color(old).name

    def plan(self, ctx: StepContext) -> list[Change]:
        no_unfinished_swap(ctx)
        old, name = self._old(ctx)
        existing = self._docker(ctx).container(name)
        if existing is not None:
            self._live_answers(ctx, old)
        return [Change(f"container {name} ({old})", f"{existing['status']} {existing['image']}" if existing else None, None)]

    def _live_answers(self, ctx: StepContext, old: str) -> None:
        """Before the old colour goes, the live one must run and answer its health check on its host port:
        else the old colour is the release that works, and `golive rollback` goes back to it."""
        from golive.swap.proxy import probe

        c = _containers(ctx)
        live = "green" if old == "blue" else "blue"
        target = c.color(live)
        found, problem = self._docker(ctx).container(target.name), None
        if found is None or not found["running"]:
            problem = f"is {found['status'] if found else 'gone'}"
        elif found.get("health") == "unhealthy":
            problem = "is unhealthy (its Docker HEALTHCHECK)"
        else:
            status, _ = probe(_url(target.host_port) + c.health_path, host=self._proxy(ctx).proxy.public_host)
            if not 200 <= status < 300:
                problem = f"answers {c.health_path} with {status or 'nothing'} on 127.0.0.1:{target.host_port}"
        if problem is None:  # (the vhost tells golive's probes which upstream Apache really serves from)
            served = self._proxy(ctx).served(c.health_path)
            if served is not None and served.rstrip("/") != _url(target.host_port):
                problem = f"is not what Apache serves: it proxies to {served} (a reload that did not take effect)"
        if problem is None and (seen := self._answers_as_idle(ctx, live, old)) is not None:
            raise GoliveError(f"the live colour {live} ({target.name}) is not what Apache serves: {seen}, though the"
                              f" upstream file {self._proxy(ctx).file} says {live}: finalize would remove {old}, the"
                              " colour serving; nothing was changed",
                              hint="make the upstream file point at what Apache should serve, run the proxy's"
                                   " configtest and graceful reload, then run this again")
        if problem:
            raise GoliveError(f"the live colour {live} ({target.name}) {problem}: finalize would remove {old}, the"
                              " release that works; nothing was changed",
                              hint=f"`golive rollback` goes back to {old}; or get {target.name} answering, then finalize")

    def snapshot(self, ctx: StepContext) -> Record:
        old, name = self._old(ctx)
        return {"old": old, "container": keep(ctx.state_dir, self._docker(ctx).container(name))}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        if before["container"] is not None:
            self._live_answers(ctx, before["old"])  # (again: the prompt may have waited)
            ctx.log("apply", f"container {before['container']['name']}: stop and remove")
            self._docker(ctx).remove(before["container"]["name"])
        return before

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        from golive.swap.undo import finalize_undo_plan

        return finalize_undo_plan(ctx, changes, record)

    def undo(self, ctx: StepContext, record: Record) -> None:
        from golive.swap.undo import undo_finalize

        undo_finalize(ctx, record)

    def manual_undo(self, record: Record) -> list[str]:
        from golive.swap.undo import finalize_manual

        return finalize_manual(record)
