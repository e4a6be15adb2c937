"""The swap steps: move the proxy to the idle colour (Swap), and later remove the old one (Finalize).

Swap keeps the live side untouched until the new colour is proven: the idle container is started
and must pass its health check (Docker HEALTHCHECK when the image has one, else HTTP on the host
port); only then is the upstream file rewritten, configtested (a failing test puts the old file
back and nothing is reloaded) and Apache gracefully reloaded — or, with ``[proxy] switch = "map"``,
configtested and the RewriteMap renamed into place, with no reload; then the public URL must
answer from the new colour. Undo points the proxy back at the previous colour (restarting or recreating it if
needed) and removes what the swap created.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.errors import ConfigError, GoliveError, UndoFailed
from golive.swap.guards import no_unfinished_swap
from golive.swap.kept import keep, spec_of

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


# s an undo waits after a graceful reload when nothing through the proxy tells the colours apart: Apache starts
# the new generation's children from its once-a-second maintenance loop
SETTLE = 2.0
def _env_file(ctx: StepContext) -> dict[str, str]:
    """[containers].env_file as ``docker run --env-file`` reads it: ``KEY=value`` lines (the value as
    written), ``KEY`` alone takes golive's own variable, ``#`` lines are comments. It holds the
    application's secrets, so like a secret file it must be the owner's alone, and its values are
    registered with the redactor like resolved references."""
    import os

    from golive.secrets import REDACTOR, check_private, kept_secret, url_passwords

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
    # check, may print them): the values of secret-named variables, and any password in a URL. Not every
    # value: masking INTERNAL_IPS=127.0.0.1 or SITE_SCHEME=http everywhere corrupted the upstream text the
    # journal keeps for the undo ("http://***:8001"), and the rollback then pointed Apache at nothing.
    for key, value in env.items():
        if kept_secret(key, value):
            REDACTOR.add(value)
        for password in url_passwords(value):
            REDACTOR.add(password)
    return env


def _build(record: dict[str, Any]) -> str:
    """The image a recorded container ran: its reference and the build (image id) it was."""
    build = str(record.get("image_id") or "").removeprefix("sha256:")[:12]
    return f"{record['image']} ({build})" if build else str(record["image"])


def _spec_file(record: dict[str, Any]) -> str:
    """Where a by-hand recreate finds what the container was created with (its variables' values too)."""
    return f", with the variables and settings kept in <state_dir>/containers/{record['kept']}" if record.get("kept") else ""


def _prepared(container: dict[str, Any] | None, color: str, image: str, build: str | None) -> bool:
    """``container`` (the idle colour's) already runs this very build, started by golive for this colour
    (`golive swap --prepare`): the swap keeps it instead of starting it again."""
    return bool(container and container["running"] and build and container.get("image_id") == build
                and container["labels"].get("golive.color") == color and container["labels"].get("golive.image") == image)


def _live_after(ctx: StepContext) -> str | None:
    """The live colour once the undos planned ahead of this one in the same rollback are done (`rollback
    --through`: the night's swap, newer than its prepare, is undone first), or None if none of them moves the
    proxy: then it is the live colour now. A swap's undo puts back the upstream it recorded, its previous colour;
    the oldest such undo is the last to run."""
    from golive.core.runner import UNDONE_FIRST

    colors = [p.record["live"] for p in ctx.options.get(UNDONE_FIRST, [])
              if p.step.kind == Swap.kind and p.record and p.record.get("upstream_text") is not None]
    return str(colors[-1]) if colors else None


def _made_again(ctx: StepContext) -> set[str]:
    """The containers a finalize's undo planned ahead of this one in the same rollback makes again (or starts)."""
    from golive.core.runner import UNDONE_FIRST

    return {p.record["container"]["name"] for p in ctx.options.get(UNDONE_FIRST, [])
            if p.step.kind == Finalize.kind and p.record and p.record.get("container")}


def _recreated(ctx: StepContext, record: dict[str, Any], problem: str | None) -> None:
    if problem:
        ctx.notice(f"container {record['name']} was created again, but {problem}; check `docker inspect`")


class _SwapBase(Step):
    def _docker(self, ctx: StepContext) -> DockerGateway:
        gateway: DockerGateway = ctx.gateways.get("docker")
        return gateway

    def _proxy(self, ctx: StepContext) -> ProxyGateway:
        gateway: ProxyGateway = ctx.gateways.get("proxy")
        return gateway

    def _confirm_public(self, ctx: StepContext, host_port: int, expected: str | None) -> None:
        """The public URL answers healthy, and (with version_path) 2xx with ``expected``, the container's own version."""
        c, proxy = _containers(ctx), self._proxy(ctx)
        deadline = time.monotonic() + proxy.proxy.confirm_timeout
        status, _ = proxy.public(c.health_path, None, deadline, upstream=_url(host_port))
        hint = (f"does the site use the RewriteMap of {proxy.file}, readable by Apache's user? (`golive init`"
                " prints the vhost); see the proxy's error log") if proxy.map_mode else "check the proxy's error log"
        waited = f"after {proxy.proxy.confirm_timeout:g}s ([proxy].confirm_timeout)"
        if not 200 <= status < 300:
            raise GoliveError(f"through the proxy, {c.health_path} answers {status or 'nothing'} {waited}", hint=hint)
        if c.version_path and expected is not None:
            status, body = proxy.public(c.version_path, expected, deadline, upstream=_url(host_port))
            if not 200 <= status < 300 or body.strip() != expected.strip():  # (an error page is no version)
                said = repr(body.strip()) if 200 <= status < 300 else str(status or "nothing")
                raise GoliveError(f"through the proxy, {c.version_path} answers {said}, not"
                                  f" {expected.strip()!r} from 127.0.0.1:{host_port}, {waited}", hint=hint)


class Swap(_SwapBase):
    """Start the idle colour from the image, prove it, point the proxy at it."""

    kind = "swap.swap"
    switches = True  # (Prepare: the same up to the health check, then no switch)

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
        c, docker = _containers(ctx), self._docker(ctx)
        no_unfinished_swap(ctx)
        if self.switches and (same := self._live_runs_it(ctx)) is not None:
            return same
        live, idle = self._colors(ctx)
        self._env(ctx)  # a missing env_file or secret stops the swap here, before the prompt
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
        if _prepared(existing, idle, image, found):
            before = after = f"{after}, prepared (`swap --prepare`): kept"
        changes = [Change(f"container {target.name} ({idle})", before, after)]
        if not self.switches:
            return changes
        self._proxy_answers(ctx)
        return [*changes, Change("proxy upstream", _url(c.color(live).host_port), _url(target.host_port))]

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

    def _proxy_answers(self, ctx: StepContext) -> None:
        """Before anything changes: the public URL must answer at all. With the proxy down, the switch could not
        be confirmed, nor could its undo (map mode ended half rolled back, exit 4), and reload mode's graceful
        restart would start Apache as a side effect. Any answer will do, an error too: swapping away from a
        failing live colour is what a swap is for."""
        c, proxy = _containers(ctx), self._proxy(ctx)
        status, reason = proxy.public(c.health_path, None, time.monotonic() + 1.0)
        if status == 0:
            raise GoliveError(f"the site answers nothing through the proxy ({proxy.proxy.public_url.rstrip('/')}"
                              f"{c.health_path}: {reason}) before the swap; nothing was changed",
                              hint="is Apache running, and does [proxy].public_url reach it? Start it, then run again")

    def snapshot(self, ctx: StepContext) -> Record:
        c, docker, proxy = _containers(ctx), self._docker(ctx), self._proxy(ctx)
        live, idle = self._colors(ctx)
        live_record = keep(ctx.state_dir, docker.container(c.color(live).name))
        return {"live": live, "idle": idle, "upstream_text": proxy.read(),
                "live_container": live_record, "adopted": bool(live_record and "golive.color" not in live_record["labels"]),
                "idle_container": keep(ctx.state_dir, docker.container(c.color(idle).name))}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        from golive.swap.docker_gateway import port_in_use

        c, docker, proxy = _containers(ctx), self._docker(ctx), self._proxy(ctx)
        idle, image = c.color(before["idle"]), self._image(ctx)
        if before["adopted"]:
            ctx.log("apply", f"adopting {before['live_container']['name']} ({before['live']}), started outside golive")
        found = docker.ensure_image(image)
        if _prepared(before["idle_container"], before["idle"], image, found):
            ctx.log("apply", f"container {idle.name}: prepared with {image}, running: kept")
        else:
            docker.remove(idle.name)  # an old idle container: not live, replaced by the new release
            if port_in_use(idle.host_port):
                raise GoliveError(f"host port 127.0.0.1:{idle.host_port} for {before['idle']} is taken by something"
                                  " else", hint=f"free it, or change [containers.{before['idle']}].host_port")
            ctx.log("apply", f"container {idle.name}: run {image} on 127.0.0.1:{idle.host_port}")
            docker.run(idle.name, image, port=c.port, host_port=idle.host_port, env=self._env(ctx),
                       labels={"golive.color": before["idle"], "golive.image": image}, volumes=c.volumes,
                       networks=c.networks, extra_hosts=c.extra_hosts)
        self._wait_healthy(ctx, idle.name, idle.host_port, image)
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

    def _wait_healthy(self, ctx: StepContext, name: str, host_port: int, image: str) -> None:
        from golive.swap.proxy import probe

        c, docker = _containers(ctx), self._docker(ctx)
        use_docker = docker.has_healthcheck(image)
        deadline, last = time.monotonic() + c.health_timeout, "no answer"
        ctx.checkpoint("health-wait")
        while time.monotonic() < deadline:
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
        logs = docker.logs(name)
        docker.remove(name)
        tail = " | ".join(logs[-5:]) or "(no output)"
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
        """The journal's changes reversed, but the upstream as the proxy's file has it now: someone may have
        switched back by hand since the run."""
        planned = self._previous_back(ctx, record) + super().undo_plan(ctx, changes, record)
        after = _live_after(ctx)  # (a newer swap undone first in the same rollback points the proxy there)
        try:
            now = _url(_containers(ctx).color(after).host_port) if after else self._proxy(ctx).upstream()
        except GoliveError:  # (no readable upstream: the undo says more)
            return planned
        return [Change(f"{c.what} (changed since the run)", now, c.after) if c.what == "proxy upstream" and c.before != now
                else c for c in planned]

    def _previous_back(self, ctx: StepContext, record: Record) -> list[Change]:
        """The previous colour's container, when the undo must start or create it again first (stopped or
        removed since the run): the plan says so, and from which build."""
        kept: dict[str, Any] | None = record.get("live_container")
        if not kept or kept["name"] in _made_again(ctx):
            return []
        try:
            now = self._docker(ctx).container(kept["name"])
        except GoliveError:  # (Docker not answering: the undo says more)
            return []
        if now is not None and now["running"]:
            return []
        after = f"running {_build(kept)}" + (", created again" if now is None else "")
        return [Change(f"container {kept['name']} ({record['live']})", f"{now['status']} {now['image']}" if now else None,
                       after)]

    def undo(self, ctx: StepContext, record: Record) -> None:
        """Service first: the previous colour running, the proxy back on it and confirmed, only then the other
        colour removed. With the Docker daemon unreachable (stopped, restarting, hung: its containers usually
        keep running), a previous colour that answers its health check on its host port is switched back to all
        the same; then the undo fails on what needs Docker, saying what was done and what was not."""
        from golive.swap.docker_gateway import DockerUnreachable

        previous = _containers(ctx).color(record["live"])
        down: DockerUnreachable | None = None
        try:
            self._previous_up(ctx, record)
        except DockerUnreachable as exc:
            self._answers_without_docker(ctx, record, exc)
            down = exc
        if record["upstream_text"] is not None:  # (Apache must serve the previous colour before the other goes)
            self._switch_back(ctx, record["upstream_text"], previous.host_port, record["live"])
        if down is None:
            try:
                self._restore_idle(ctx, record, drain=True)
                return
            except DockerUnreachable as exc:
                down = exc
        raise self._docker_left(ctx, record, down)

    def _previous_up(self, ctx: StepContext, record: Record) -> None:
        """The previous colour's container running again, if it was stopped or removed since the swap."""
        c, docker = _containers(ctx), self._docker(ctx)
        previous = c.color(record["live"])
        live_record = record.get("live_container")
        current = docker.container(previous.name)
        if current is None and live_record:
            ctx.log("undo", f"container {previous.name}: gone; recreate from {_build(live_record)}")
            _recreated(ctx, live_record, docker.recreate(live_record, spec_of(ctx.state_dir, live_record)))
            self._await_old(ctx, previous.host_port)
        elif current is not None and not current["running"]:
            ctx.log("undo", f"container {previous.name}: start again")
            docker.start(previous.name)
            self._await_old(ctx, previous.host_port)

    def _answers_without_docker(self, ctx: StepContext, record: Record, down: GoliveError) -> None:
        """Docker cannot say whether the previous colour runs: its health check on its host port must, or the
        proxy stays where it is (pointing Apache at a colour that is gone takes the whole site down)."""
        from golive.swap.proxy import probe

        c = _containers(ctx)
        previous = c.color(record["live"])
        where = f"{c.health_path} on 127.0.0.1:{previous.host_port}"
        status, said = probe(_url(previous.host_port) + c.health_path, host=self._host(ctx))
        if not 200 <= status < 300:
            raise GoliveError(f"{down.message}, and {record['live']} ({previous.name}) answers {where} with"
                              f" {status or f'nothing ({said})'}: the proxy was left on {record['idle']}; nothing was"
                              " changed", hint="start dockerd, or fix [containers].docker_url; then `golive rollback`"
                                               " again")
        ctx.notice(f"{down.message}; {record['live']} ({previous.name}) answers {where}: the proxy goes back to it"
                   f" first, and {record['idle']} is removed once Docker answers")

    def _docker_left(self, ctx: StepContext, record: Record, down: GoliveError) -> UndoFailed:
        """The proxy is back on the previous colour, confirmed; removing the other one needs Docker: the failure
        says what is left to do by hand, instead of the swap's whole manual undo."""
        idle = _containers(ctx).color(record["idle"])
        was: dict[str, Any] | None = record.get("idle_container")
        if was is None:
            left = [f"`docker rm -f {idle.name}` once Docker answers: the {record['idle']} container this swap"
                    f" started ({record['live']} serves again)"]
        else:  # (only golive knows which container is the one that was there before: by id)
            left = [f"once Docker answers, `golive rollback` again: it removes {idle.name} if this swap started"
                    f" it, and makes the {record['idle']} container that was there before ({_build(was)}) again"
                    " if it is gone"]
        return UndoFailed(f"{record['live']} serves again through the proxy, but {down.message}: {record['idle']}"
                          f" ({idle.name}) was not removed", manual=left, hint="start dockerd, or fix [containers].docker_url")

    def _restore_idle(self, ctx: StepContext, record: Record, drain: bool) -> None:
        """The idle colour as it was before: what the step started removed (a prepared container it only
        reused stays), and a container it replaced made again."""
        c, docker = _containers(ctx), self._docker(ctx)
        idle, was = c.color(record["idle"]), record.get("idle_container")
        now_idle = docker.container(idle.name)
        if now_idle is not None and now_idle["labels"].get("golive.color") == record["idle"] and \
                not (was and was["id"] == now_idle["id"]):
            if drain:
                time.sleep(c.drain_time)  # the proxy's old workers may still be finishing requests to it
            ctx.log("undo", f"container {idle.name}: remove")
            docker.remove(idle.name)
        if was and docker.container(idle.name) is None:
            _recreated(ctx, was, docker.recreate(was, spec_of(ctx.state_dir, was)))

    def _switch_back(self, ctx: StepContext, text: str, host_port: int, color: str) -> None:
        """Point the proxy back, and confirm through the public URL that it answers from the previous colour:
        only then may the other colour go. A file that already says so proves nothing in reload mode (a
        rollback killed between the write and the reload, an edit by hand): Apache may still run the config
        that points at the other colour, so it is tested and reloaded all the same. A reload that fails (Apache
        not signalled, often the very failure the swap is being undone for) — or, with the file already back,
        a configtest that fails — does not fail the undo if the public URL answers from the previous colour
        anyway: then the live side is right, and what is left is the new colour to remove."""
        from golive.swap.proxy import ReloadFailed

        c, proxy, command = _containers(ctx), self._proxy(ctx), "reload"
        try:
            if proxy.read() != text:
                ctx.log("undo", f"proxy upstream -> {_url(host_port)}")
                proxy.switch(text)
            elif not proxy.map_mode:  # (map mode: mod_rewrite reads the file itself, on its next request)
                ctx.log("undo", f"proxy upstream is {_url(host_port)} already: configtest and graceful reload all the same")
                try:
                    proxy.test()
                except GoliveError as failed:
                    if not c.version_path:  # (only a version tells the colours apart through the proxy)
                        raise
                    command = "test"
                    raise ReloadFailed(failed.message, hint=failed.hint) from None
                proxy.reload()
        except ReloadFailed as failed:
            try:
                self._confirm_back(ctx, host_port, color)
            except GoliveError:
                raise failed from None
            ctx.notice(f"{failed.message}; the public URL answers from {color} all the same, so the undo goes on —"
                       f" fix [proxy].{command}_command before the next swap")
            return
        self._confirm_back(ctx, host_port, color)

    def _confirm_back(self, ctx: StepContext, host_port: int, color: str) -> None:
        """The public URL answers as the previous colour does on its own port: the same version (a 2xx answer to
        version_path), else the same status to health_path — what the site did before the swap, failing or not
        (swapping away from a failing colour is what a swap is for, and its undo puts that back)."""
        from golive.swap.proxy import probe, probe_served

        c, proxy = _containers(ctx), self._proxy(ctx)
        host = proxy.proxy.public_host
        status, body = probe(_url(host_port) + c.version_path, host=host) if c.version_path else (0, "")
        by_version = 200 <= status < 300  # (an error page is no version: the health answer must do)
        path = c.version_path if by_version and c.version_path else c.health_path
        if not by_version:
            status, body = probe(_url(host_port) + path, host=host)
            patience = time.monotonic() + 3  # (a colour slow for a moment is asked again)
            while not status and time.monotonic() < patience:
                time.sleep(0.2)
                status, body = probe(_url(host_port) + path, host=host)
            if not status:  # nothing to confirm: the proxy cannot serve what does not answer on its own port
                raise GoliveError(f"{color} answers nothing on 127.0.0.1:{host_port} itself ({body}), so no answer"
                                  f" through the proxy can be {color}'s: the proxy points at it again, as before the"
                                  " swap, and the new colour was kept",
                                  hint=f"start {color}'s container (it answers on 127.0.0.1:{host_port})")
        url, waited = proxy.proxy.public_url.rstrip("/") + path, f"{proxy.proxy.confirm_timeout:g}s"
        if not by_version and not proxy.map_mode and proxy.served(path) is None:
            # Nothing tells the colours apart through the proxy (no version, a vhost without golive's upstream
            # header): give the graceful restart time to replace its children before the other colour goes
            ctx.notice(f"nothing shows which colour answers through the proxy (no [containers].version_path, and the"
                       f" vhost lacks golive's X-Golive-Upstream line: `golive init` prints it); waited {SETTLE:g}s"
                       " for the reload instead")
            time.sleep(SETTLE)
        deadline = time.monotonic() + proxy.proxy.confirm_timeout
        while True:  # (with the vhost's upstream header the answer also says which colour served it)
            now, answer, served = probe_served(url, host=host)
            if now == status and (not by_version or answer.strip() == body.strip()) and \
                    (served is None or served.rstrip("/") == _url(host_port)):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if served is not None and served.rstrip("/") != _url(host_port):
            raise proxy.not_switched(path, served, f"{color} on 127.0.0.1:{host_port}")
        said = repr(answer.strip()) if 200 <= now < 300 and by_version else str(now or "nothing")
        wanted = repr(body.strip()) if by_version else str(status or "nothing")
        raise GoliveError(f"through the proxy, {path} answers {said}, not {wanted} from {color} on 127.0.0.1:{host_port},"
                          f" after {waited} ([proxy].confirm_timeout)", hint="check the proxy's error log")

    def _await_old(self, ctx: StepContext, host_port: int) -> None:
        """Before the proxy goes back to a colour that had to be started again, let it answer."""
        from golive.swap.proxy import probe

        c = _containers(ctx)
        deadline = time.monotonic() + c.health_timeout
        while time.monotonic() < deadline:
            status, _ = probe(_url(host_port) + c.health_path, timeout=1, host=self._proxy(ctx).proxy.public_host)
            if 200 <= status < 300:
                return
            time.sleep(0.2)
        raise GoliveError(f"the previous colour on 127.0.0.1:{host_port} did not answer {c.health_path} within"
                          f" {c.health_timeout:g}s after being started again", hint="check it with `docker logs`")

    def check(self, ctx: StepContext) -> list[str]:
        c = _containers(ctx)
        live = live_color(c, self._proxy(ctx))
        expected = self.params["to"] or None
        return [f"the proxy points at {live}, not {expected}"] if expected and live != expected else []

    def manual_undo(self, record: Record) -> list[str]:
        """In order: the previous colour answering, the proxy on it, and only then the other colour gone (the
        other way round takes the site down). Map mode needs no reload, and one is harmless there."""
        text = str(record.get("upstream_text") or "").strip()
        url = text.split()[-1] if text else "its host port"
        kept: dict[str, Any] | None = record.get("live_container")
        gone = f" (if it is gone: create it again from {_build(kept)}{_spec_file(kept)})" if kept else ""
        return [f"make sure the {record['live']} container{' ' + kept['name'] if kept else ''} runs and answers on"
                f" {url}{gone}",
                f"make the upstream file say {text!r}, run the proxy's configtest, then (switch = \"reload\" only)"
                " its graceful reload",
                f"check that [proxy].public_url answers from {record['live']}; only then remove the {record['idle']}"
                " container golive started (docker rm -f)"]


class Prepare(Swap):
    """`golive swap --prepare`: start the idle colour from the image and prove it healthy ahead of time,
    and switch nothing; the swap that follows keeps it, so the night's switch is the switch alone.
    Undo removes it (not while it is live: roll that swap back first)."""

    kind = "swap.prepare"
    switches = False

    @property
    def title(self) -> str:
        return f"prepare {self.params['to'] or 'the idle colour'}"

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        self._not_live(ctx, record, _live_after(ctx))  # (refused in the plan: nothing is marked as failed)
        return super().undo_plan(ctx, changes, record)

    def undo(self, ctx: StepContext, record: Record) -> None:
        from golive.swap.docker_gateway import DockerUnreachable

        self._not_live(ctx, record)
        idle = _containers(ctx).color(record["idle"])
        try:
            self._restore_idle(ctx, record, drain=False)
        except DockerUnreachable as down:
            message = f"{down.message}: {record['idle']} ({idle.name}), prepared and not live, was not removed"
            hint = "start dockerd, or fix [containers].docker_url"
            if record.get("idle_container") is not None:  # (the one there before comes back too: golive knows it)
                raise GoliveError(message, hint=hint) from None
            raise UndoFailed(message, manual=[f"`docker rm -f {idle.name}` once Docker answers: the {record['idle']}"
                                              " container golive prepared (it is not live)"], hint=hint) from None

    def _not_live(self, ctx: StepContext, record: Record, live: str | None = None) -> None:
        """The prepared colour is not live (``live``: as the undos planned before this one leave it)."""
        if (live or live_color(_containers(ctx), self._proxy(ctx))) == record["idle"]:
            raise GoliveError(f"{record['idle']} is live now: a swap went to the prepared colour",
                              hint="roll that swap back first (`golive rollback`), then this")

    def check(self, ctx: StepContext) -> list[str]:
        return []

    def manual_undo(self, record: Record) -> list[str]:
        return [f"remove the {record['idle']} container golive prepared (docker rm -f), if it is not live"]


class Finalize(_SwapBase):
    """After the bake time: stop and remove the old colour. Undo recreates it from the recorded image."""

    kind = "swap.finalize"

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

    def undo(self, ctx: StepContext, record: Record) -> None:
        from golive.swap.docker_gateway import DockerUnreachable

        saved: dict[str, Any] | None = record["container"]
        if saved is None:
            return
        try:
            self._old_back(ctx, saved)
        except DockerUnreachable as down:  # (the live colour serves on: nothing else to do without Docker)
            raise GoliveError(f"{down.message}: {record['old']} ({saved['name']}) was not made again; the live colour"
                              " was not touched", hint="start dockerd, or fix [containers].docker_url") from None

    def _old_back(self, ctx: StepContext, saved: dict[str, Any]) -> None:
        now = self._docker(ctx).container(saved["name"])
        if now is None:
            ctx.log("undo", f"container {saved['name']}: recreate from {_build(saved)}")
            _recreated(ctx, saved, self._docker(ctx).recreate(saved, spec_of(ctx.state_dir, saved)))
        elif saved["running"] and not now["running"]:  # (an undo that created it, then failed to start it)
            ctx.log("undo", f"container {saved['name']}: start again")
            self._docker(ctx).start(saved["name"])

    def manual_undo(self, record: Record) -> list[str]:
        saved = record.get("container")
        return [f"docker run the old colour again: {saved['name']} from {_build(saved)}{_spec_file(saved)}"] if saved else []
