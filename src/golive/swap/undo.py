"""The undos of the swap steps (:mod:`golive.swap.steps` holds their plan and apply).

A swap's undo puts service first: the previous colour running, the proxy back on it and confirmed through
the public URL, and only then the other colour removed. A prepare's undo removes the colour it started (not
while it is live); a finalize's makes the old colour again. An undo that fails once something needed doing by
hand (the proxy back on the previous colour, then Docker gone) raises :class:`UndoFailed` with those lines as
its ``manual``; any other failure leaves the runner to ask the step's ``manual_undo(record)``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from golive.core.change import Change
from golive.core.step import Record, StepContext
from golive.errors import GoliveError, UndoFailed
from golive.swap.docker_gateway import short
from golive.swap.kept import spec_of
from golive.swap.steps import Finalize, Prepare, Swap, _containers, _url, live_color

if TYPE_CHECKING:
    from golive.swap.docker_gateway import DockerGateway
    from golive.swap.proxy import ProxyGateway

__all__ = ["SETTLE", "finalize_manual", "finalize_undo_plan", "prepare_manual", "prepare_undo_plan", "swap_manual",
           "swap_undo_plan", "undo_finalize", "undo_prepare", "undo_swap"]

# s an undo waits after a graceful reload when nothing through the proxy tells the colours apart: Apache starts
# the new generation's children from its once-a-second maintenance loop
SETTLE = 2.0


def _docker(ctx: StepContext) -> DockerGateway:
    gateway: DockerGateway = ctx.gateways.get("docker")
    return gateway


def _proxy(ctx: StepContext) -> ProxyGateway:
    gateway: ProxyGateway = ctx.gateways.get("proxy")
    return gateway


@contextlib.contextmanager
def _briefly(ctx: StepContext) -> Iterator[None]:
    """The undo's Docker calls (and its plan's) each wait at most UNDO_TIMEOUT for an answer: the SDK's 60 s kept a
    rollback a minute in silence on a hung daemon before it put the site back."""
    from golive.swap import docker_gateway

    try:
        docker = _docker(ctx) if ctx.config is not None else None
    except GoliveError:  # (not answering at all: each call says so, at once)
        docker = None
    if docker is None:
        yield
        return
    with docker.within(docker_gateway.UNDO_TIMEOUT):
        yield


def _build(record: dict[str, Any]) -> str:
    """The image a recorded container ran: its reference and the build (image id) it was."""
    build = str(record.get("image_id") or "").removeprefix("sha256:")[:12]
    return f"{record['image']} ({build})" if build else str(record["image"])


def _spec_file(record: dict[str, Any]) -> str:
    """Where a by-hand recreate finds what the container was created with (its variables' values too)."""
    return f", with the variables and settings kept in <state_dir>/containers/{record['kept']}" if record.get("kept") else ""


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


def _build_gone(ctx: StepContext, record: dict[str, Any]) -> bool:
    """The build a recorded container ran is no longer on this host (a record of an older golive names none)."""
    return bool(record.get("image_id")) and _docker(ctx).local_image(str(record["image_id"])) is None


def _gone_build(ctx: StepContext, record: dict[str, Any]) -> str:
    """Why a recorded container cannot be made again from its build, and what its reference is now."""
    now = _docker(ctx).local_image(str(record["image"]))
    tag = f"{record['image']} is now build {short(now)}" if now else f"{record['image']} is not on this host either"
    return f"its build {_build(record)} is no longer on this host ({tag})"


_BUILD_BACK = "put that very build back (`docker load` a saved copy, or `docker pull` it by digest), then `golive" \
              " rollback` again"


def _ahead(ctx: StepContext) -> bool:
    """An undo planned ahead of this one in the same rollback changes the containers first (`rollback --through`):
    the plan cannot see what it leaves; the undo checks it then."""
    from golive.core.runner import UNDONE_FIRST

    return any(p.step.kind in (Swap.kind, Finalize.kind) for p in ctx.options.get(UNDONE_FIRST, []))


def _golive_labels(container: dict[str, Any]) -> tuple[str | None, str | None]:
    labels = container.get("labels") or {}
    return labels.get("golive.color"), labels.get("golive.image")


def _is_recorded(now: dict[str, Any], kept: dict[str, Any]) -> bool:
    """``now`` is the container the run recorded: the same one, or made again from it (an undo of a finalize, a
    recreate by hand) — the same build and golive's same labels. Another build, or golive's labels of another run
    (a later `swap --prepare`, a swap that went to this colour since), is another release."""
    if now.get("id") == kept.get("id"):
        return True
    same = now.get("image_id") == kept["image_id"] if kept.get("image_id") else now.get("image") == kept.get("image")
    return same and _golive_labels(now) == _golive_labels(kept)


def _shown(container: dict[str, Any]) -> str:
    return f"{container['status']} {_build(container)}, container {str(container.get('id') or '')[:12]}"


def _not_recorded(ctx: StepContext, record: Record, now: dict[str, Any] | None) -> tuple[str, str] | None:
    """When the previous colour's container ``now`` is not the one the swap recorded and the undo cannot put that
    one back in its place, (what, fix); None when it is the recorded one, or the undo can make the recorded one
    again exactly (from its very build and its kept settings: a container someone ran there by hand, not live)."""
    kept: dict[str, Any] | None = record.get("live_container")
    if now is None or not kept or _is_recorded(now, kept):
        return None
    previous = _containers(ctx).color(record["live"])
    there = (f"{record['live']} ({previous.name}) is now {_shown(now)}, not the container the swap recorded"
             f" ({_shown(kept)})")
    later = "`golive history` shows the run that put it there: roll that back first (`golive rollback`), then this"
    try:
        live = _proxy(ctx).upstream().rstrip("/") == _url(previous.host_port)
    except GoliveError:
        live = False
    if live:
        return (f"{there}, and it is live now (a swap went to it since): this undo would keep it and remove"
                f" {record['idle']}, that swap's way back"), later
    if _golive_labels(now)[0]:
        return f"{there}: golive started it for a later run (`swap --prepare`, or a swap since)", later
    keep_it = f"or keep it and go forward: `golive swap --image {now['image']}`"
    if _build_gone(ctx, kept):
        return f"{there}, and {_gone_build(ctx, kept)}", f"{_BUILD_BACK}; {keep_it}"
    try:
        exact = "config" in spec_of(ctx.state_dir, kept)
    except GoliveError:
        exact = False
    if not exact:
        return (f"{there}, and how the recorded one was created is not kept to make it again",
                f"`docker rm -f {previous.name}`, run {_build(kept)} there by hand as it was, then `golive rollback`"
                f" again; {keep_it}")
    return None


def _no_way_back(ctx: StepContext, record: Record) -> tuple[str, str] | None:
    """Why the undo cannot put back the previous colour's container the swap recorded, as (what, fix): another
    one is there in its place (:func:`_not_recorded`), or it is gone and its build with it (made from its tag, the
    "old" colour would run whatever build the tag points at now). None if it can."""
    kept: dict[str, Any] | None = record.get("live_container")
    if not kept:
        return None
    previous = _containers(ctx).color(record["live"])
    now = _docker(ctx).container(previous.name)
    if now is None:
        if previous.name in _made_again(ctx) or not _build_gone(ctx, kept):
            return None
        return (f"{record['live']} ({previous.name}) has no container, and the one the swap recorded cannot be made"
                f" again: {_gone_build(ctx, kept)}",
                f"{_BUILD_BACK}; or go forward: `golive swap --image {kept['image']}` deploys {kept['image']} as it is"
                " now")
    return _not_recorded(ctx, record, now)


def _other_refused(what: tuple[str, str]) -> GoliveError:
    return GoliveError(f"{what[0]}; nothing was changed", hint=what[1])


# -- swap ----------------------------------------------------------------------------------------------------------
def swap_undo_plan(ctx: StepContext, changes: list[Change], record: Record, switches: bool = True) -> list[Change]:
    with _briefly(ctx):
        return _swap_undo_plan(ctx, changes, record, switches)


def _swap_undo_plan(ctx: StepContext, changes: list[Change], record: Record, switches: bool = True) -> list[Change]:
    """The journal's changes reversed, but the upstream as the proxy's file has it now: someone may have
    switched back by hand since the run. A warning the swap's plan carried is no change to undo. A swap's undo
    whose previous colour cannot serve again is refused here, before anything changes (nothing is marked as
    failed: `golive swap` still works)."""
    if switches:
        _way_back(ctx, record)
    undone = [c.inverse() for c in changes if not c.what.startswith("warning: ")]
    planned = _previous_back(ctx, record, switches) + _idle_back(ctx, undone, record)
    after = _live_after(ctx)  # (a newer swap undone first in the same rollback points the proxy there)
    try:
        now = _url(_containers(ctx).color(after).host_port) if after else _proxy(ctx).upstream()
    except GoliveError:  # (no readable upstream: the undo says more)
        return planned
    return [_upstream_now(ctx, c, now, reloads=after is None) if c.what == "proxy upstream" and c.before != now
            else c for c in planned]


def _upstream_now(ctx: StepContext, change: Change, now: str, reloads: bool) -> Change:
    """The upstream change as things are now. A file that points back already (a rollback killed between the
    write and the reload, an edit by hand not reloaded) is "unchanged" only if Apache serves it too: when the vhost
    says Apache still serves the other colour, the undo's configtest and graceful reload are the change."""
    proxy = _proxy(ctx)
    if reloads and now == change.after and not proxy.map_mode:
        served = proxy.served(_containers(ctx).health_path)
        if served is not None and served.rstrip("/") != str(change.after).rstrip("/"):
            return Change(f"{change.what} (the file points back already, Apache still serves {served}: configtest"
                          " and graceful reload)", served, change.after)
    return Change(f"{change.what} (changed since the run)", now, change.after)


def _previous_back(ctx: StepContext, record: Record, switches: bool = True) -> list[Change]:
    """The previous colour's container, when the undo must start, unpause or create it again first (stopped,
    paused or removed since the run), or make the recorded one again in place of another container someone ran
    under its name: the plan says so, and from which build."""
    kept: dict[str, Any] | None = record.get("live_container")
    if not switches or not kept or kept["name"] in _made_again(ctx):  # (a prepare's undo leaves the live colour be)
        return []
    try:
        now = _docker(ctx).container(kept["name"])
    except GoliveError:  # (Docker not answering: the undo says more)
        return []
    what = f"container {kept['name']} ({record['live']})"
    if switches and now is not None and not _is_recorded(now, kept) and not _ahead(ctx):  # (else refused: _way_back)
        return [Change(f"{what} (not the container the swap recorded: removed, and the recorded one made again)",
                       f"{now['status']} {_build(now)}", f"running {_build(kept)}, created again")]
    if now is not None and now["running"]:
        return []
    after = f"running {_build(kept)}" + (", created again" if now is None else ", unpaused" if
                                          now["status"] == "paused" else "")
    return [Change(what, f"{now['status']} {now['image']}" if now else None, after)]


def _idle_back(ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
    """The idle colour's container as the undo leaves it (:func:`_restore_idle`), from what is there now (or what
    the undos ahead of this one leave): the one the step started removed, the one there before made again —
    unless its build is gone: then the plan says it is not made again (made from its tag, it would be another
    build). One already gone is nothing to remove; one that is not golive's for this colour is left as it is."""
    was: dict[str, Any] | None = record.get("idle_container")
    name = _containers(ctx).color(record["idle"]).name
    what = f"container {name} ({record['idle']})"
    try:
        touched, now = _left_ahead(ctx, name)
        now = now if touched else _docker(ctx).container(name)
        gone = was is not None and _build_gone(ctx, was)
    except GoliveError:  # (Docker not answering: the undo says more)
        return changes
    note = f" (the one there before: {_build(was)} is no longer on this host, not made again)" if gone and was else ""
    if now is not None and not _started_by_step(now, record):  # (left as it is)
        if any(c.what == what and c.action == "noop" for c in changes):  # (a prepared container the swap kept)
            return changes
        shown = f"{now['status']} {now['image']}"
        return [Change(what, shown, shown) if c.what == what else c for c in changes]
    if now is None:  # (nothing to remove: the one there before made again, if it is gone too)
        after = None if was is None or gone else f"{was['status']} {was['image']}"
        return [Change(what + note, None, after) if c.what == what else c for c in changes]
    return [Change(c.what + note, c.before, None if gone else c.after) if c.what == what else c for c in changes]


def _started_by_step(now: dict[str, Any], record: Record) -> bool:
    """``now``, the idle colour's container, is one the undo removes: golive's for this colour, and not the one
    there before the step (a prepared container a swap only kept)."""
    was: dict[str, Any] | None = record.get("idle_container")
    return _golive_labels(now)[0] == record["idle"] and not (was and was.get("id") == now.get("id"))


def _left_ahead(ctx: StepContext, name: str) -> tuple[bool, dict[str, Any] | None]:
    """(True, what) when an undo planned ahead of this one in the same rollback (`rollback --through`) leaves the
    container named ``name`` as ``what`` (its record; None: no container), the last of them to touch it; else
    (False, None): it stays as Docker has it now. A swap's or prepare's undo leaves its idle colour as it was before
    the step (a build gone: none), a swap's leaves its previous colour running, a finalize's makes its old one again."""
    from golive.core.runner import UNDONE_FIRST

    c, touched, left = _containers(ctx), False, None
    for p in ctx.options.get(UNDONE_FIRST, []):
        r = p.record
        if not r:
            continue
        if p.step.kind in (Swap.kind, Prepare.kind) and c.color(r["idle"]).name == name:
            was = r.get("idle_container")
            touched, left = True, None if was is None or _build_gone(ctx, was) else was
        elif p.step.kind == Swap.kind and c.color(r["live"]).name == name and r.get("live_container"):
            touched, left = True, {**r["live_container"], "status": "running", "running": True}
        elif p.step.kind == Finalize.kind and r.get("container") and r["container"]["name"] == name:
            touched, left = True, r["container"]
    return touched, left


def undo_swap(ctx: StepContext, record: Record) -> None:
    with _briefly(ctx):
        _undo_swap(ctx, record)


def _undo_swap(ctx: StepContext, record: Record) -> None:
    """Service first: the previous colour running, the proxy back on it and confirmed, only then the other
    colour removed. With the Docker daemon unreachable (stopped, restarting, hung: its containers usually
    keep running), a previous colour that answers its health check on its host port is switched back to all
    the same; then the undo fails on what needs Docker, saying what was done and what was not."""
    from golive.swap.docker_gateway import DockerUnreachable

    previous = _containers(ctx).color(record["live"])
    down: DockerUnreachable | None = None
    try:
        _previous_up(ctx, record)
    except DockerUnreachable as exc:
        _answers_without_docker(ctx, record, exc)
        down = exc
    if record["upstream_text"] is not None:  # (Apache must serve the previous colour before the other goes)
        dead = None if down is not None else _why_not_back(ctx, record)  # (without Docker: checked above)
        if dead is None:
            _switch_back(ctx, previous.host_port, record["live"])
        elif _still_on(ctx, previous.host_port):  # (a swap that failed before its switch, from a dead colour)
            ctx.notice(f"{dead[0]}, as before the swap, and the proxy still points at it: nothing to point back")
        else:
            raise _refused(record, dead)
    if down is None:
        try:
            _restore_idle(ctx, record, drain=True)
            return
        except DockerUnreachable as exc:
            down = exc
    raise _docker_left(ctx, record, down)


def _way_back(ctx: StepContext, record: Record) -> None:
    """In the plan: refuse an undo that would point the proxy at a colour that cannot serve. Not when an undo
    planned ahead of it in the same rollback changes the containers first, nor with Docker not answering (the
    undo then checks the colour's host port itself)."""
    if _ahead(ctx):
        return
    try:
        other = _no_way_back(ctx, record)
        dead = _why_not_back(ctx, record, planning=True)
    except GoliveError:
        return
    if other is not None:  # (not the release that ran before the swap: going back to it is no undo)
        raise _other_refused(other)
    if dead is not None and not _still_on(ctx, _containers(ctx).color(record["live"]).host_port):
        raise _refused(record, dead)


def _why_not_back(ctx: StepContext, record: Record, planning: bool = False) -> tuple[str, str] | None:
    """Why the previous colour cannot serve if the proxy goes back to it — its container gone with nothing
    recorded to make it again from, or running and answering nothing on its host port — as (what, fix); None if
    it can. In the plan a stopped colour, or a gone one with a record, is one the undo starts or makes again
    (and waits for) first; in the undo that has been done."""
    from golive.swap.proxy import probe

    c = _containers(ctx)
    previous = c.color(record["live"])
    now = _docker(ctx).container(previous.name)
    if now is None:
        if planning and (record.get("live_container") or previous.name in _made_again(ctx)):
            return None
        was: dict[str, Any] | None = record.get("idle_container")
        again = (f"; or run the release {record['idle']} ran before that swap again: `golive swap --image"
                 f" {str(was.get('image_id') or '').removeprefix('sha256:')[:12] or was['image']}`") if was else ""
        return (f"{record['live']} ({previous.name}) has no container, and the swap recorded none to make it again"
                " from", f"{record['idle']} serves on; to go back, start {previous.name} on 127.0.0.1:"
                f"{previous.host_port} by hand, then `golive rollback` again{again}")
    kept: dict[str, Any] | None = record.get("live_container")
    if planning and (not now["running"] or (kept and not _is_recorded(now, kept))):  # (made again in its place)
        return None
    url, host = _url(previous.host_port) + c.health_path, _proxy(ctx).proxy.public_host
    status, said = probe(url, host=host)
    patience = time.monotonic() + 3  # (a colour slow for a moment is asked again)
    while not status and time.monotonic() < patience:
        time.sleep(0.2)
        status, said = probe(url, host=host)
    if status:  # (any answer, an error too: what the site did before the swap is what its undo puts back)
        return None
    return (f"{record['live']} ({previous.name}) answers nothing on 127.0.0.1:{previous.host_port}"
            f" ({c.health_path}: {said})", f"get {previous.name} answering {c.health_path} on 127.0.0.1:"
            f"{previous.host_port}, then `golive rollback` again")


def _still_on(ctx: StepContext, host_port: int) -> bool:
    """The proxy never left the previous colour: the file points at it, and Apache serves from it (the vhost's
    upstream header says so; in map mode mod_rewrite reads the file itself)."""
    proxy = _proxy(ctx)
    try:
        if proxy.upstream().rstrip("/") != _url(host_port):
            return False
    except GoliveError:
        return False
    served = proxy.served(_containers(ctx).health_path)
    return served.rstrip("/") == _url(host_port) if served is not None else proxy.map_mode


def _refused(record: Record, dead: tuple[str, str]) -> GoliveError:
    return GoliveError(f"{dead[0]}: going back would point the proxy at nothing and take the site down; nothing was"
                       " changed", hint=dead[1])


def _previous_up(ctx: StepContext, record: Record) -> None:
    """The previous colour's container running again, if it was stopped or removed since the swap."""
    from golive.swap.docker_gateway import DockerUnreachable

    c, docker = _containers(ctx), _docker(ctx)
    previous = c.color(record["live"])
    live_record = record.get("live_container")
    current = docker.container(previous.name)
    if live_record and current is not None and not _is_recorded(current, live_record):
        other = _not_recorded(ctx, record, current)  # (checked in the plan too, unless an undo ran ahead of this)
        if other is not None:
            raise _other_refused(other)
        spec = spec_of(ctx.state_dir, live_record)
        ctx.log("undo", f"container {previous.name}: {_shown(current)} is not the one the swap recorded: remove it,"
                        f" recreate from {_build(live_record)}")
        docker.remove(previous.name)
        docker.recreate(live_record, spec)
        _await_old(ctx, previous.host_port)
    elif current is None and live_record:
        ctx.log("undo", f"container {previous.name}: gone; recreate from {_build(live_record)}")
        docker.recreate(live_record, spec_of(ctx.state_dir, live_record))
        _await_old(ctx, previous.host_port)
    elif current is not None and current["status"] == "paused":
        ctx.log("undo", f"container {previous.name}: unpause")
        try:
            docker.start(previous.name)
        except DockerUnreachable:
            raise
        except GoliveError as failed:  # (nothing changed yet: the proxy still points at the other colour)
            raise UndoFailed(failed.message, manual=[
                f"`docker unpause {previous.name}` (the {record['live']} container), and make sure it answers on"
                f" {_url(previous.host_port)}", *swap_manual(record)[1:]], hint=failed.hint) from None
        _await_old(ctx, previous.host_port)
    elif current is not None and not current["running"]:
        ctx.log("undo", f"container {previous.name}: start again")
        docker.start(previous.name)
        _await_old(ctx, previous.host_port)


def _answers_without_docker(ctx: StepContext, record: Record, down: GoliveError) -> None:
    """Docker cannot say whether the previous colour runs: its health check on its host port must, or the
    proxy stays where it is (pointing Apache at a colour that is gone takes the whole site down)."""
    from golive.swap.proxy import probe

    c = _containers(ctx)
    previous = c.color(record["live"])
    where = f"{c.health_path} on 127.0.0.1:{previous.host_port}"
    status, said = probe(_url(previous.host_port) + c.health_path, host=_proxy(ctx).proxy.public_host)
    if not 200 <= status < 300:
        raise GoliveError(f"{down.message}, and {record['live']} ({previous.name}) answers {where} with"
                          f" {status or f'nothing ({said})'}: the proxy was left on {record['idle']}; nothing was"
                          " changed", hint="start dockerd, or fix [containers].docker_url; then `golive rollback`"
                                           " again")
    ctx.notice(f"{down.message}; {record['live']} ({previous.name}) answers {where}: the proxy goes back to it"
               f" first, and {record['idle']} is removed once Docker answers")


def _docker_left(ctx: StepContext, record: Record, down: GoliveError) -> UndoFailed:
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


def _restore_idle(ctx: StepContext, record: Record, drain: bool) -> None:
    """The idle colour as it was before: what the step started removed (a prepared container it only
    reused stays), and a container it replaced made again."""
    c, docker = _containers(ctx), _docker(ctx)
    idle, was = c.color(record["idle"]), record.get("idle_container")
    now_idle = docker.container(idle.name)
    if now_idle is not None and now_idle["labels"].get("golive.color") == record["idle"] and \
            not (was and was["id"] == now_idle["id"]):
        if drain:
            time.sleep(c.drain_time)  # the proxy's old workers may still be finishing requests to it
        ctx.log("undo", f"container {idle.name}: remove")
        docker.remove(idle.name)
    if was and docker.container(idle.name) is None:
        from golive.swap.docker_gateway import BuildGone

        try:
            docker.recreate(was, spec_of(ctx.state_dir, was))
        except BuildGone:  # (made from its tag it would be another build: the plan said it is not made again)
            ctx.notice(f"the {record['idle']} container that was there before ({_build(was)}) was not made again:"
                       " its build is no longer on this host")


def _switch_back(ctx: StepContext, host_port: int, color: str) -> None:
    """Point the proxy back — one clean line for the previous colour, never the file's old text (a second line
    someone added by hand would come back with it) — and confirm through the public URL that it answers from the previous colour:
    only then may the other colour go. A file that already says so proves nothing in reload mode (a
    rollback killed between the write and the reload, an edit by hand): Apache may still run the config
    that points at the other colour, so it is tested and reloaded all the same. A reload that fails (Apache
    not signalled, often the very failure the swap is being undone for) — or, with the file already back,
    a configtest that fails — does not fail the undo if the public URL answers from the previous colour
    anyway: then the live side is right, and what is left is the new colour to remove."""
    from golive.swap.proxy import ReloadFailed

    c, proxy, command = _containers(ctx), _proxy(ctx), "reload"
    line = proxy.line(_url(host_port))
    try:
        if proxy.read() != line:
            ctx.log("undo", f"proxy upstream -> {_url(host_port)}")
            proxy.switch(line)
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
            _confirm_back(ctx, host_port, color)
        except GoliveError:
            raise failed from None
        ctx.notice(f"{failed.message}; the public URL answers from {color} all the same, so the undo goes on —"
                   f" fix [proxy].{command}_command before the next swap")
        return
    _confirm_back(ctx, host_port, color)


def _confirm_back(ctx: StepContext, host_port: int, color: str) -> None:
    """The public URL answers as the previous colour does on its own port: the same version (a 2xx answer to
    version_path), else the same status to health_path — what the site did before the swap, failing or not
    (swapping away from a failing colour is what a swap is for, and its undo puts that back)."""
    from golive.swap.proxy import probe, probe_served

    c, proxy = _containers(ctx), _proxy(ctx)
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
    if not now:  # (no answer at all: Apache itself is down — in map mode nothing golive runs would start it)
        raise GoliveError(f"through the proxy, {url} answers nothing ({answer}) after {waited}"
                          f" ([proxy].confirm_timeout), so {color} could not be confirmed: is Apache running?",
                          hint=f"start Apache (it reads the upstream golive wrote: {color}), check that {url} answers")
    said = repr(answer.strip()) if 200 <= now < 300 and by_version else str(now)
    wanted = repr(body.strip()) if by_version else str(status or "nothing")
    raise GoliveError(f"through the proxy, {path} answers {said}, not {wanted} from {color} on 127.0.0.1:{host_port},"
                      f" after {waited} ([proxy].confirm_timeout)", hint="check the proxy's error log")


def _await_old(ctx: StepContext, host_port: int) -> None:
    """Before the proxy goes back to a colour that had to be started again, let it answer."""
    from golive.swap.proxy import probe

    c = _containers(ctx)
    deadline = time.monotonic() + c.health_timeout
    while time.monotonic() < deadline:
        status, _ = probe(_url(host_port) + c.health_path, timeout=1, host=_proxy(ctx).proxy.public_host)
        if 200 <= status < 300:
            return
        time.sleep(0.2)
    raise GoliveError(f"the previous colour on 127.0.0.1:{host_port} did not answer {c.health_path} within"
                      f" {c.health_timeout:g}s after being started again", hint="check it with `docker logs`")


def swap_manual(record: Record) -> list[str]:
    """In order: the previous colour answering, the proxy on it, and only then the other colour gone (the
    other way round takes the site down). Map mode needs no reload, and one is harmless there."""
    text = str(record.get("upstream_line") or _last_line(record.get("upstream_text")))
    url = text.split()[-1] if text else "its host port"
    kept: dict[str, Any] | None = record.get("live_container")
    gone = f" (if it is gone: create it again from {_build(kept)}{_spec_file(kept)})" if kept else \
        " (the swap recorded none to make it again from: start one from the release it should serve)"
    return [f"make sure the {record['live']} container{' ' + kept['name'] if kept else ''} runs and answers on"
            f" {url}{gone}",
            f"make the upstream file say {text!r}, run the proxy's configtest, then (switch = \"reload\" only)"
            " its graceful reload",
            f"check that [proxy].public_url answers from {record['live']}; only then remove the {record['idle']}"
            " container golive started (docker rm -f)"]


def _last_line(text: str | None) -> str:
    """A record of an older golive, with the file's whole text only: its last Define (as Apache reads it), else its
    first map line (as mod_rewrite does)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and not line.lstrip().startswith("#")]
    defines = [line for line in lines if line.lower().startswith("define ")]
    return defines[-1] if defines else next(iter(lines), "")


# -- prepare -------------------------------------------------------------------------------------------------------
def prepare_undo_plan(ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
    _not_live(ctx, record, _live_after(ctx))  # (refused in the plan: nothing is marked as failed)
    return swap_undo_plan(ctx, changes, record, switches=False)


def undo_prepare(ctx: StepContext, record: Record) -> None:
    with _briefly(ctx):
        _undo_prepare(ctx, record)


def _undo_prepare(ctx: StepContext, record: Record) -> None:
    from golive.swap.docker_gateway import DockerUnreachable

    _not_live(ctx, record)
    idle = _containers(ctx).color(record["idle"])
    try:
        _restore_idle(ctx, record, drain=False)
    except DockerUnreachable as down:
        message = f"{down.message}: {record['idle']} ({idle.name}), prepared and not live, was not removed"
        hint = "start dockerd, or fix [containers].docker_url"
        if record.get("idle_container") is not None:  # (the one there before comes back too: golive knows it)
            raise GoliveError(message, hint=hint) from None
        raise UndoFailed(message, manual=[f"`docker rm -f {idle.name}` once Docker answers: the {record['idle']}"
                                          " container golive prepared (it is not live)"], hint=hint) from None


def _not_live(ctx: StepContext, record: Record, live: str | None = None) -> None:
    """The prepared colour is not live (``live``: as the undos planned before this one leave it)."""
    if (live or live_color(_containers(ctx), _proxy(ctx))) == record["idle"]:
        raise GoliveError(f"{record['idle']} is live now: a swap went to the prepared colour",
                          hint="roll that swap back first (`golive rollback`), then this")


def prepare_manual(record: Record) -> list[str]:
    return [f"remove the {record['idle']} container golive prepared (docker rm -f), if it is not live"]


# -- finalize ------------------------------------------------------------------------------------------------------
def finalize_undo_plan(ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
    """The old colour made again from the build it ran (its tag may have moved on to the release being rolled
    back: the plan said "create running <tag>"), or started again (unpaused) if an earlier undo made it and could
    not; another container someone put under its name is left as it is (the swap's undo replaces it). With
    `rollback --through`, from what the undos ahead of it leave (a newer prepare's removes its container)."""
    saved: dict[str, Any] | None = record.get("container")
    if saved is None:
        return [c.inverse() for c in changes]
    what = changes[0].what if changes else f"container {saved['name']} ({record['old']})"
    with _briefly(ctx):
        try:  # (`rollback --through`: as the undos ahead of it leave it — a newer prepare's removes its container)
            touched, now = _left_ahead(ctx, saved["name"])
            now = now if touched else _docker(ctx).container(saved["name"])
        except GoliveError:  # (Docker not answering: the undo says more)
            now = None
    was = f"{saved['status']} {_build(saved)}"
    if now is None:
        with _briefly(ctx):
            try:
                gone = _build_gone(ctx, saved) and _gone_build(ctx, saved)
            except GoliveError:  # (Docker not answering: the undo says more)
                gone = ""
        if gone:  # (made from its tag, the "old" colour would be whatever build the tag points at now)
            raise GoliveError(f"{record['old']} ({saved['name']}), which swap finalize removed, cannot be made again as"
                              f" it ran: {gone}; nothing was changed",
                              hint=f"{_BUILD_BACK}; or go forward: `golive swap --image {saved['image']}` deploys"
                                   f" {saved['image']} as it is now")
        return [Change(what, None, was)]
    shown = f"{now['status']} {now['image']}"
    if not (saved["running"] and not now["running"] and _is_recorded(now, saved)):  # (another one: left as it is)
        return [Change(what, shown, shown)]
    return [Change(what, shown, f"running {_build(saved)}" + (", unpaused" if now["status"] == "paused" else ""))]


def undo_finalize(ctx: StepContext, record: Record) -> None:
    with _briefly(ctx):
        _undo_finalize(ctx, record)


def _undo_finalize(ctx: StepContext, record: Record) -> None:
    from golive.swap.docker_gateway import DockerUnreachable

    saved: dict[str, Any] | None = record["container"]
    if saved is None:
        return
    try:
        _old_back(ctx, saved)
    except DockerUnreachable as down:  # (the live colour serves on: nothing else to do without Docker)
        raise GoliveError(f"{down.message}: {record['old']} ({saved['name']}) was not made again; the live colour"
                          " was not touched", hint="start dockerd, or fix [containers].docker_url") from None


def _old_back(ctx: StepContext, saved: dict[str, Any]) -> None:
    now = _docker(ctx).container(saved["name"])
    if now is None:
        ctx.log("undo", f"container {saved['name']}: recreate from {_build(saved)}")
        _docker(ctx).recreate(saved, spec_of(ctx.state_dir, saved))
    elif saved["running"] and not now["running"] and _is_recorded(now, saved):  # (made, not started; paused)
        ctx.log("undo", f"container {saved['name']}: {'unpause' if now['status'] == 'paused' else 'start again'}")
        _docker(ctx).start(saved["name"])


def finalize_manual(record: Record) -> list[str]:
    saved = record.get("container")
    return [f"docker run the old colour again: {saved['name']} from {_build(saved)}{_spec_file(saved)}"] if saved else []
