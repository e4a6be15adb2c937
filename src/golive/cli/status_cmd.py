"""golive status."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from golive.cli.options import Json, app_of
from golive.core.status import Part

# part -> "module:function(config) -> golive.core.status.Part | None" (None: not configured); each part adds its
# own line as it lands.
STATUS_PARTS: dict[str, str] = {
    "dns": "golive.dns.status:status",
    "swap": "golive.swap.status:status",
    "freeze": "golive.freeze.status:status",
    "sync": "golive.sync.status:status",
}


# a part that has not answered by then (an API or database that accepts the connection and stays silent)
# is shown as such: status is the quick look at 2 a.m., it must not hang on the one thing that is down
STATUS_WAIT = 10.0


def _parts(config: Any) -> dict[str, Part]:
    """Every part asked at once, each in its own (daemon) thread, for at most STATUS_WAIT seconds in all; one
    that failed or did not answer in time is a part with an ``error``."""
    import threading
    import time

    answers: dict[str, Part | None] = {}

    def ask(part: str, target: str) -> None:
        module, _, fn = target.partition(":")
        try:
            answers[part] = getattr(importlib.import_module(module), fn)(config)
        except Exception as exc:  # one unreachable part must not hide the others
            answers[part] = _failed(str(exc))

    threads = {part: threading.Thread(target=ask, args=(part, target), daemon=True, name=f"status-{part}")
               for part, target in STATUS_PARTS.items()}
    for thread in threads.values():
        thread.start()
    deadline = time.monotonic() + STATUS_WAIT
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    out: dict[str, Part] = {}
    for part in STATUS_PARTS:
        info = answers.get(part, _failed(f"no answer within {STATUS_WAIT:g}s"))
        if info is not None:  # None: the part is not configured
            out[part] = info
    return out


def _failed(error: str) -> Part:
    return Part({"error": error}, {"ok": False, "error": error})


def status(ctx: typer.Context, json: Json = False) -> None:
    """What is live now and what is in flight: the lock, the last run, what a rollback would undo."""
    from golive.core.lock import Lock

    a = app_of(ctx, json)
    config = a.config
    lock = Lock(config.state_dir).status()
    journal = a.journal_read  # (a full or read-only disk: still read)
    runs = journal.runs(1)
    last = runs[0] if runs else None
    undoable = journal.latest_undoable_run()
    unfinished = journal.unfinished_through()  # (a `rollback --through` that stopped: its command finishes it)
    parts = _parts(config)
    again = unfinished.again if unfinished else "golive rollback" if undoable else None
    doc: dict[str, Any] = {"config": str(config.path), "state_dir": str(config.state_dir),
                           "lock": lock.as_dict(), "last_run": last.as_dict() if last else None,
                           "rollback_would_undo": undoable.id if undoable else None,
                           "rollback_command": a.commands(f"`{again}`")[1:-1] if again else None,
                           "parts": {name: part.shown for name, part in parts.items()}}
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

        n = len([s for s in journal.steps(undoable.id) if s.status in UNDOABLE])
        if lock.state == "held":  # (a run or a rollback is under way: it may be undoing these very steps)
            a.say(f"rollback:  run {undoable.id} has {n} applied step(s); a run holds the lock now (above): ask again"
                  " once it ends")
        elif unfinished is not None:
            a.say(f"rollback:  would undo {unfinished.steps} step(s) of {len(unfinished.left)} run(s), back to run"
                  f" {unfinished.through} (`{unfinished.again}`: it stopped before its end)")
        else:
            a.say(f"rollback:  would undo {n} step(s) of run {undoable.id} (`golive rollback`)")
    sync = parts.get("sync")
    if sync is not None:  # (the journal is read here, in the thread that opened it)
        from golive.sync.status import rollback_backup

        sync.shown["backup"] = backup = rollback_backup(journal)
        if "error" not in sync.state:
            sync.state["backup"] = None if backup == "none" else backup
    for part, info in doc["parts"].items():
        a.say(f"{part + ':':<10} " + ", ".join(f"{k}={v}" for k, v in info.items()))
    a.done({**doc, "state": {name: part.state for name, part in parts.items()}})
