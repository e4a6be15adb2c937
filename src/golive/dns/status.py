"""The DNS line of `golive status`: where the configured records point now."""

from __future__ import annotations

from typing import Any


def status(config: Any) -> dict[str, str] | None:
    if config.dns is None or config.linode is None:
        return None
    from golive.dns.gateway import LinodeDns
    from golive.dns.steps import configured_records

    dns = config.dns
    # status must answer quickly even when the API does not: no retries here
    gateway = LinodeDns(config.linode.token.resolve(), config.linode.api_url, retries=0)
    _, records = configured_records(dns, gateway)
    sides = [next((s for s in ("new", "old") if r["target"] == dns.target(r["type"], s)), "elsewhere") for r in records]
    summary = ", ".join(f"{sides.count(s)} {s}" for s in ("new", "old", "elsewhere") if sides.count(s))
    return {"records": f"{len(records)} ({summary})"}
