"""The swap line of `golive status`: which colour the proxy points at, and what the idle colour holds
(the old release a rollback goes back to, a prepared one, or nothing)."""

from __future__ import annotations

from typing import Any


def status(config: Any) -> dict[str, str] | None:
    if config.containers is None or config.proxy is None:
        return None
    from golive.swap.proxy import ProxyGateway
    from golive.swap.steps import live_color

    proxy = ProxyGateway(config.proxy, config.resolve(config.proxy.upstream_file))
    live = live_color(config.containers, proxy)
    idle = "green" if live == "blue" else "blue"
    info = {"live": live, "upstream": proxy.upstream(), "idle": f"{idle} ({_idle(config, idle)})"}
    serving = proxy.served(config.containers.health_path)  # (what Apache really serves, when the vhost says)
    if serving is not None and serving.rstrip("/") != str(proxy.upstream()).rstrip("/"):
        # (a graceful reload not made after the file was written: a swap or rollback killed in between)
        info["serving"] = f"{serving} — not what the upstream file says: `golive rollback` puts it right"
    return info


def _idle(config: Any, color: str) -> str:
    from golive.errors import GoliveError, first_line
    from golive.swap.docker_gateway import from_config

    try:
        docker = from_config(config)
    except GoliveError as exc:
        return f"unknown: {exc.message}"
    try:
        found = docker.container(config.containers.color(color).name)
    except Exception as exc:  # (the daemon went away between the ping and the question)
        return f"unknown: {first_line(exc)}"
    finally:
        docker.close()
    if found is None:
        return "none"
    # (a colour golive made again from a recorded build has the build's id as its image: the label names it)
    return f"{found['status']} {found['labels'].get('golive.image') or found['image']}"
