"""The DNS line of `golive status`: where the configured records point now."""

from __future__ import annotations

from typing import Any

from golive.core.status import Part


def status(config: Any) -> Part | None:
    if config.dns is None or config.linode is None:
        return None
    from golive.dns.gateway import LinodeDns
    from golive.dns.steps import configured_records

    dns = config.dns
    # status must answer quickly even when the API does not: no retries here
    gateway = LinodeDns(config.linode.token.resolve(), config.linode.api_url, retries=0,
                        token_ref=str(config.linode.token))
    _, records = configured_records(dns, gateway)
    sides = [next((s for s in ("new", "old") if r["target"] == dns.target(r["type"], s)), "elsewhere") for r in records]
    counts = {side: sides.count(side) for side in ("new", "old", "elsewhere")}
    summary = ", ".join(f"{n} {side}" for side, n in counts.items() if n)
    on = [side for side, n in counts.items() if n]
    points_to = on[0] if len(on) == 1 else ("mixed" if on else "none")
    one = points_to in ("new", "old")
    shown = {"records": f"{len(records)} ({summary})"}
    if points_to == "mixed" and counts["new"] and counts["old"]:  # (a switch interrupted half way, or a revert)
        shown["half switched"] = "finish with `golive dns switch` (or `--to old`), or undo with `golive rollback`"
    return Part(shown,
                {"ok": points_to in ("new", "old"), "records": len(records), **counts, "points_to": points_to,
                 "address": dns.target("A", points_to) if one else None,
                 "address_v6": (dns.target("AAAA", points_to) or None) if one else None})
