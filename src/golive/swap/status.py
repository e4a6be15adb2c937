"""The swap line of `golive status`: which colour the proxy points at."""

from __future__ import annotations

from typing import Any


def status(config: Any) -> dict[str, str] | None:
    if config.containers is None or config.proxy is None:
        return None
    from golive.swap.proxy import ProxyGateway
    from golive.swap.steps import live_color

    proxy = ProxyGateway(config.proxy, config.resolve(config.proxy.upstream_file))
    live = live_color(config.containers, proxy)
    return {"live": live, "upstream": proxy.upstream()}
