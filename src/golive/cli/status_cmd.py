"""golive status."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from golive.cli.options import Json, app_of

# part -> "module:function(config) -> dict[str, str]"; each part adds its own line as it lands.
STATUS_PARTS: dict[str, str] = {
    "dns": "golive.dns.status:status",
    "swap": "golive.swap.status:status",
    "freeze": "golive.freeze.status:status",
    "sync": "golive.sync.status:status",
}


# a part that has not answered by then (an API or database that accepts the connection and stays silent)
# is shown as such: status is the quick look at 2 a.m., it must not hang on the one thing that is down
STATUS_WAIT = 10.0


def _parts(config: Any) -> dict[str, Any]:
    """Every part asked at once, each in its own (daemon) thread, for at most STATUS_WAIT seconds in all."""
    import threading
    import time

    answers: dict[str, Any] = {}

    def ask(part: str, target: str) -> None:
        module, _, fn = target.partition(":")
        try:
            answers[part] = getattr(importlib.import_module(module), fn)(config)
        except Exception as exc:  # one unreachable part must not hide the others
            answers[part] = {"error": str(exc)}

    threads = {part: threading.Thread(target=ask, args=(part, target), daemon=True, name=f"status-{part}")
               for part, target in STATUS_PARTS.items()}
    for thread in threads.values():
        thread.start()
    deadline = time.monotonic() + STATUS_WAIT
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    out: dict[str, Any] = {}
    for part in STATUS_PARTS:
        info = answers.get(part, {"error": f"no answer within {STATUS_WAIT:g}s"})
        if info is not None:  # None: the part is not configured
            out[part] = info
    return out


def _counts(records: str) -> tuple[int, dict[str, int]] | None:
    """"3 (2 new, 1 old)", the dns part's display, as (3, {"new": 2, "old": 1, "elsewhere": 0})."""
    import re

    found = re.fullmatch(r"(\d+) \((.*)\)", records)
    if found is None:
        return None
    sides = {"new": 0, "old": 0, "elsewhere": 0}
    for item in found[2].split(", "):
        n, _, side = item.partition(" ")
        if side in sides and n.isdigit():
            sides[side] = int(n)
    return int(found[1]), sides


def _dns(config: Any, info: dict[str, str]) -> dict[str, Any]:
    read = _counts(info.get("records", ""))
    if read is None:
        return {"ok": False, "error": f"unreadable answer: {info}"}
    total, sides = read
    on = [side for side, n in sides.items() if n]
    points_to = on[0] if len(on) == 1 else ("mixed" if on else "none")
    dns = config.dns
    return {"ok": not sides["elsewhere"], "records": total, **sides, "points_to": points_to,
            "address": dns.target("A", points_to) if points_to in ("new", "old") else None,
            "address_v6": (dns.target("AAAA", points_to) or None) if points_to in ("new", "old") else None}


def _swap(config: Any, info: dict[str, str]) -> dict[str, Any]:
    colour, _, found = info.get("idle", "").partition(" (")  # "blue (running directory-web:1.3)", "blue (none)"
    found = found.removesuffix(")")
    known = bool(found) and found != "none" and not found.startswith("unknown")
    return {"ok": "proxy" not in info and "serving" not in info, "live": info.get("live"),
            "upstream": info.get("upstream"), "idle": colour or None,
            "idle_container": found.split(" ")[0] if known else (found.split(":")[0] or "unknown"),
            "idle_image": (found.partition(" ")[2] or None) if known else None,
            "proxy_answers": "proxy" not in info, "serving_as_configured": "serving" not in info}


def _freeze(config: Any, info: dict[str, str]) -> dict[str, Any]:
    return {"ok": True, "frozen": info.get("frozen") == "on", "method": info.get("method")}


def _sync(config: Any, info: dict[str, str]) -> dict[str, Any]:
    def number(key: str) -> int | None:
        return int(info[key]) if info.get(key, "").isdigit() else None

    writes = info.get("writes", "open").split(" ")[0]  # open, held, read-only
    backup = info.get("backup", "none")
    return {"ok": writes == "open", "last_sync": None if info.get("last", "never") == "never" else info["last"],
            "mode": info.get("mode"), "tables": number("tables"), "synced_rows": number("synced_rows"),
            "writes": writes, "backup": None if backup == "none" else backup}


# part -> its answer (display strings, `parts` in the JSON) as typed values a script can read (`state`)
STATE_OF = {"dns": _dns, "swap": _swap, "freeze": _freeze, "sync": _sync}


def _state(config: Any, parts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each part's answer as typed values: ``ok`` (it answered and shows nothing to act on), ``error`` when it
    did not answer, and what it knows (live colour, where the DNS records point, freeze on/off, last sync)."""
    out: dict[str, dict[str, Any]] = {}
    for part, info in parts.items():
        reader = STATE_OF.get(part)
        if "error" in info:
            out[part] = {"ok": False, "error": info["error"]}
        elif reader is not None:
            out[part] = reader(config, info)
    return out


def status(ctx: typer.Context, json: Json = False) -> None:
    """What is live now and what is in flight: the lock, the last run, what a rollback would undo."""
    from golive.core.lock import Lock

    a = app_of(ctx, json)
    config = a.config
    lock = Lock(config.state_dir).status()
    runs = a.journal.runs(1)
    last = runs[0] if runs else None
    undoable = a.journal.latest_undoable_run()
    doc: dict[str, Any] = {"config": str(config.path), "state_dir": str(config.state_dir),
                           "lock": lock.as_dict(), "last_run": last.as_dict() if last else None,
                           "rollback_would_undo": undoable.id if undoable else None, "parts": _parts(config)}
    a.say(f"config:    {config.path}")
    a.say(f"state:     {config.state_dir}")
    a.say(f"lock:      {lock.state}" + (f" — {lock.holder}" if lock.holder else ""))
    if last is None:
        a.say("last run:  none")
    else:
        crashed = lock.crashed(last.status, last.host, last.pid)
        state = "crashed (its process is gone)" if crashed else last.status
        doc["last_run"]["crashed"] = crashed
        a.say(f"last run:  {last.id} {last.command} — {state}")
    if undoable is not None:
        from golive.core.journal import UNDOABLE

        n = len([s for s in a.journal.steps(undoable.id) if s.status in UNDOABLE])
        a.say(f"rollback:  would undo {n} step(s) of run {undoable.id} (`golive rollback`)")
    if "sync" in doc["parts"]:  # (the journal is read here, in the thread that opened it)
        from golive.sync.status import rollback_backup

        doc["parts"]["sync"]["backup"] = rollback_backup(a.journal)
    for part, info in doc["parts"].items():
        a.say(f"{part + ':':<10} " + ", ".join(f"{k}={v}" for k, v in info.items()))
    a.done({**doc, "state": _state(config, doc["parts"])})
