"""golive history [RUN]."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from golive.cli.options import Json, app_of

if TYPE_CHECKING:
    from golive.core.journal import RunRow


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{seconds:.2f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def history(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Argument(help="A run id: show its steps and events.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs to list.")] = 20,
    json: Json = False,
) -> None:
    """List recent runs, or show one run's steps, changes, timings and events."""
    from golive.core.journal import Journal
    from golive.core.lock import Lock
    from golive.errors import UsageError

    a = app_of(ctx, json)
    # read-only: the journal of a full or read-only disk is what the operator needs to read then
    journal = Journal(a.config.state_dir / "journal.db", read_only=True)
    lock = Lock(a.config.state_dir).status()

    def shown(r: RunRow) -> tuple[str, dict[str, Any]]:
        """A run's status as history tells it ("running" in the journal, its process gone: crashed)."""
        crashed = lock.crashed(r.status, r.host, r.pid)
        return ("crashed" if crashed else r.status), {**r.as_dict(), "crashed": crashed}

    if run is None:
        runs = journal.runs(limit)
        rows, docs = [], []
        for r in runs:
            steps = journal.steps(r.id)
            done = sum(s.status == "applied" for s in steps)
            undone = sum(s.status == "undone" for s in steps)
            status, doc = shown(r)
            docs.append(doc)
            rows.append([r.id, r.command, r.started_at[:19].replace("T", " "), _duration(r.started_at, r.finished_at),
                         status, f"{done}/{undone}/{len(steps)}"])
        if not runs:
            a.say("no runs yet")
        else:
            a.table(["RUN", "COMMAND", "STARTED (UTC)", "TOOK", "STATUS", "APPLIED/UNDONE/STEPS"], rows)
        a.done({"runs": docs})
        return
    found = journal.run(run)
    if found is None:
        raise UsageError(f"no run {run} in the journal", hint="`golive history` lists the runs")
    steps = journal.steps(run)
    status, doc = shown(found)
    a.say(f"run {found.id}: {found.command} — {status}"
          + (" (its process is gone: `golive rollback` undoes what it applied)" if doc["crashed"] else "")
          + f" (by {found.user}@{found.host}, pid {found.pid})")
    if found.error:
        a.say(f"  error: {found.error}")
    events = journal.events(run)
    if found.command == "rollback" and not steps:  # (its work is the undo of another run's steps: those, as it did them)
        target = found.args.get("target")
        a.say(f"  rolled back run {target}" if target else "  rolled back: (no run named)")
        begun = {e["seq"]: e["ts"] for e in events if e["kind"] == "undo.start"}
        ends = [e for e in events if e["kind"] in ("undo.done", "undo.failed")]
        a.table(["#", "STEP", "UNDO", "TOOK"],
                [[str(e["seq"]), (e["data"] or {}).get("title", ""), "undone" if e["kind"] == "undo.done" else
                  f"failed: {(e['data'] or {}).get('error', '')}", _duration(begun.get(e["seq"]), e["ts"])]
                 for e in ends]
                + [[str(seq), "", "interrupted", "-"] for seq in begun if seq not in {e["seq"] for e in ends}])
    else:
        a.table(["#", "STEP", "STATUS", "TOOK", "CHANGES"],
                [[str(s.seq), s.title, s.status, _duration(s.started_at, s.finished_at), str(len(s.changes or []))]
                 for s in steps])
    # what the operator had to be told (where data was kept, what to do), by the run and by its rollbacks
    for r, said in [(found, events), *((c, journal.events(c.id)) for c in journal.children(run))]:
        for e in said:
            if e["kind"] == "log" and e["phase"] in ("notice", "manual", "detail"):
                by = "" if r is found else f"rollback {r.id}: "
                a.say(f"  by hand: {by}{e['message']}" if e["phase"] == "manual" else
                      f"  {'!' if e['phase'] == 'notice' else '-'} {by}[{e['seq']}] {e['message']}")
    a.done({"run": doc, "steps": [s.as_dict() for s in steps], "events": events})
