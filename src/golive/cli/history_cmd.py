"""golive history [RUN]."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from golive.cli.options import Json, app_of

if TYPE_CHECKING:
    from golive.cli.application import App
    from golive.core.journal import Journal, RunRow, StepRow
    from golive.core.lock import LockState


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{seconds:.2f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def _undid(journal: Journal, r: RunRow) -> dict[str, Any]:
    """What a `golive rollback` run did (its own steps are none: it undoes another run's): the runs it rolled back
    and each undo, with its result."""
    return {"rolled_back": journal.targets(r), "undos": [u.as_dict() for u in journal.undos(r.id)]}


def history(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Argument(help="A run id: show its steps and events.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs to list.")] = 20,
    json: Json = False,
) -> None:
    """List recent runs, or show one run's steps, changes, timings and events."""
    from golive.core.lock import Lock

    a = app_of(ctx, json)
    journal = a.journal_read  # (the journal of a full or read-only disk is what the operator needs to read then)
    lock = Lock(a.config.state_dir).status()
    if run is None:
        _list(a, journal, lock, limit)
    else:
        _one(a, journal, lock, run)


def _shown(lock: LockState, r: RunRow) -> tuple[str, dict[str, Any]]:
    """A run's status as history tells it ("running" in the journal, its process gone: crashed)."""
    crashed = lock.crashed(r.status, r.host, r.pid)
    return ("crashed" if crashed else r.status), {**r.as_dict(), "crashed": crashed}


def _list(a: App, journal: Journal, lock: LockState, limit: int) -> None:
    runs = journal.runs(limit)
    rows, docs = [], []
    for r in runs:
        steps = journal.steps(r.id)
        status, doc = _shown(lock, r)
        command, counts = r.command, (f"{sum(s.status == 'applied' for s in steps)}/"
                                      f"{sum(s.status == 'undone' for s in steps)}/{len(steps)}")
        if r.command == "rollback" and not steps:  # (its work: the undos of another run's steps)
            doc.update(_undid(journal, r))
            command = f"rollback of {', '.join(doc['rolled_back']) or '?'}"
            counts = f"-/{sum(u['result'] == 'undone' for u in doc['undos'])}/{len(doc['undos'])}"
        docs.append(doc)
        rows.append([r.id, command, r.started_at[:19].replace("T", " "), _duration(r.started_at, r.finished_at),
                     status, counts])
    if not runs:
        a.say("no runs yet")
    else:
        a.table(["RUN", "COMMAND", "STARTED (UTC)", "TOOK", "STATUS", "APPLIED/UNDONE/STEPS"], rows)
    unfinished = journal.unfinished_through()
    if unfinished is not None:
        a.say(f"rollback --through {unfinished.through} stopped before its end: {unfinished.steps} step(s) of"
              f" {len(unfinished.left)} run(s) left; `{unfinished.again}` finishes it")
    a.done({"runs": docs, "unfinished_rollback": None if unfinished is None else {
        "through": unfinished.through, "command": unfinished.again, "runs": [r.id for r in unfinished.left],
        "steps": unfinished.steps}})


def _one(a: App, journal: Journal, lock: LockState, run: str) -> None:
    from golive.errors import UsageError

    found = journal.run(run)
    if found is None:
        raise UsageError(f"no run {run} in the journal", hint="`golive history` lists the runs")
    steps = journal.steps(run)
    status, doc = _shown(lock, found)
    rollback = found.command == "rollback" and not steps
    again = found.args.get("again") if isinstance(found.args.get("again"), str) else "golive rollback"
    gone = f"`{again}` finishes it" if rollback else "`golive rollback` undoes what it applied"
    a.say(f"run {found.id}: {found.command} — {status}" + (f" (its process is gone: {gone})" if doc["crashed"] else "")
          + f" (by {found.user}@{found.host}, pid {found.pid})")
    if found.error:
        a.say(f"  error: {found.error}")
    events = journal.events(run)
    if rollback:
        doc.update(_undid(journal, found))
        _undos(a, doc, status)
        if found.status == "interrupted":
            a.say(f"  to finish it: `{again}`")
    else:
        _steps(a, steps)
    # what the operator had to be told (where data was kept, what to do), by the run and by its rollbacks
    for r, said in [(found, events), *((c, journal.events(c.id)) for c in journal.children(run))]:
        for e in said:
            if e["kind"] == "log" and e["phase"] in ("notice", "manual", "detail"):
                by = "" if r is found else f"rollback {r.id}: "
                a.say(f"  by hand: {by}{e['message']}" if e["phase"] == "manual" else
                      f"  {'!' if e['phase'] == 'notice' else '-'} {by}[{e['seq']}] {e['message']}")
    a.done({"run": doc, "steps": [s.as_dict() for s in steps], "events": events})


def _undos(a: App, doc: dict[str, Any], status: str) -> None:
    targets = doc["rolled_back"]
    a.say(f"  rolled back run {', '.join(targets)}" if targets else "  rolled back: (no run named)")
    unfinished = "killed" if status == "crashed" else "interrupted" if status != "running" else "undoing"
    a.table(["#", "STEP", "UNDO", "TOOK"] + (["OF RUN"] if len(targets) > 1 else []),
            [[str(u["seq"]), u["title"], {"undone": "undone", "failed": f"failed: {u['error'] or ''}"}.get(
                u["result"], unfinished), _duration(u["started_at"], u["finished_at"])]
             + ([u["run"]] if len(targets) > 1 else []) for u in doc["undos"]])


def _steps(a: App, steps: list[StepRow]) -> None:
    a.table(["#", "STEP", "STATUS", "TOOK", "CHANGES"],
            [[str(s.seq), s.title, s.status, _duration(s.started_at, s.finished_at), str(len(s.changes or []))]
             for s in steps])
