"""The swap line of `golive status`: which colour the proxy points at, what the idle colour holds (the old
release a rollback goes back to, a prepared one, or nothing), and what Apache really serves when the vhost says.

Status is the quick look at 2 a.m.: the proxy probe and the Docker question are asked at once, each bounded
(PROBE_WAIT, DOCKER_WAIT), so a site that hangs or a hung dockerd is shown as such on the line instead of
costing the whole line its part's time budget (`golive status` waits 10 s for a part in all)."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from golive.core.status import Part

PROBE_WAIT = 2.0  # s, in all: a proxy that trickles its answer resets httpx's read timeout with every byte
DOCKER_WAIT = 4.0  # s: the gateway's own ping waits 10 s for a hung daemon

_T = TypeVar("_T")


def status(config: Any) -> Part | None:
    if config.containers is None or config.proxy is None:
        return None
    from golive.swap.proxy import ProxyGateway
    from golive.swap.steps import live_color

    proxy = ProxyGateway(config.proxy, config.resolve(config.proxy.upstream_file))
    live = live_color(config.containers, proxy)
    idle = "green" if live == "blue" else "blue"
    url = proxy.proxy.public_url.rstrip("/") + config.containers.health_path
    probed = _within(PROBE_WAIT + 0.5, lambda: _probe(proxy, url))  # (asked at once, each bounded)
    found = _within(DOCKER_WAIT, lambda: _containers(config, (live, idle)))
    late = _Container(None, None, _late("Docker", DOCKER_WAIT))
    running, container = (found() or {}).get(live, late), (found() or {}).get(idle, late)
    info = {"live": live, "upstream": proxy.upstream(), "idle": f"{idle} ({container.shown()})"}
    state = {"ok": True, "live": live, "upstream": info["upstream"], "idle": idle,
             "idle_container": container.kind(), "idle_image": container.image,
             "live_container": running.kind(), "live_image": running.image,
             "proxy_answers": True, "health_status": None, "serving_as_configured": True}
    if running.unknown is None and running.status != "running":  # (removed by hand, crashed, stopped)
        info["live_container"] = f"{running.shown()} — the proxy points at {live}, which has no running container:" \
            " `golive swap` starts a healthy colour and points the proxy at it"
        state["ok"] = False
    answer = probed()
    if answer is None or answer[0] == 0:  # (no answer at all: say so, the rest of the line stands)
        said = "ReadTimeout" if answer is None else answer[1]
        info["proxy"] = f"{url} timed out after {PROBE_WAIT:g}s" if "Timeout" in said else f"{url} answers nothing ({said})"
        return Part(info, state | {"ok": False, "proxy_answers": False})
    state["health_status"] = answer[0]
    if not 200 <= answer[0] < 300:  # (the site is down for its users, whatever the file says)
        info["health"] = f"{url} answers {answer[0]}"
        state["ok"] = False
    serving = answer[2]  # (what Apache really serves, when the vhost says)
    if serving is not None and serving.rstrip("/") != str(proxy.upstream()).rstrip("/"):
        # (a graceful reload not made after the file was written: a swap or rollback killed in between, or a hand edit)
        reload = f"{shlex.join(proxy.proxy.test_command)} && {shlex.join(proxy.proxy.reload_command)}"
        info["serving"] = f"{serving} — not what the upstream file says: a swap or rollback stopped before its reload" \
            f" (`golive rollback`), or the file edited by hand (`{reload}` once it is right)"
        state |= {"ok": False, "serving_as_configured": False}
    return Part(info, state)


@dataclass
class _Container:
    """A colour's container: its Docker status and image, or none, or why that is not known."""
    status: str | None
    image: str | None
    unknown: str | None = None

    def shown(self) -> str:
        return f"unknown: {self.unknown}" if self.unknown else f"{self.status} {self.image}" if self.status else "none"

    def kind(self) -> str:
        return self.status or ("unknown" if self.unknown else "none")


def _within(seconds: float, ask: Callable[[], _T]) -> Callable[[], _T | None]:
    """Start ``ask`` in a daemon thread; the returned function waits for it until ``seconds`` after the start,
    and gives its answer, or None if it has none by then (left behind: status ends soon after)."""
    import time

    answer: list[_T] = []
    thread = threading.Thread(target=lambda: answer.append(ask()), daemon=True, name="status-swap")
    thread.start()
    deadline = time.monotonic() + seconds

    def wait() -> _T | None:
        thread.join(max(0.0, deadline - time.monotonic()))
        return answer[0] if answer else None

    return wait


def _late(what: str, seconds: float) -> str:
    return f"{what} did not answer within {seconds:g}s"


def _probe(proxy: Any, url: str) -> tuple[int, str, str | None]:
    from golive.swap.proxy import probe_served

    return probe_served(url, timeout=PROBE_WAIT, host=proxy.proxy.public_host)


def _containers(config: Any, colors: tuple[str, ...]) -> dict[str, _Container]:
    from golive.errors import GoliveError, first_line
    from golive.swap.docker_gateway import from_config

    try:
        docker = from_config(config)
    except GoliveError as exc:
        return dict.fromkeys(colors, _Container(None, None, exc.message))
    out = {}
    try:
        for color in colors:
            found = docker.container(config.containers.color(color).name)
            # (a colour golive made again from a recorded build has the build's id as its image: the label names it)
            out[color] = _Container(None, None) if found is None else \
                _Container(found["status"], found["labels"].get("golive.image") or found["image"])
    except Exception as exc:  # (the daemon went away between the ping and the question)
        return dict.fromkeys(colors, _Container(None, None, first_line(exc)))
    finally:
        docker.close()
    return out
