"""golive history [RUN]."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from golive.cli.options import Json, app_of


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
    from golive.errors import UsageError

    a = app_of(ctx, json)
    journal = a.journal
    if run is None:
        runs = journal.runs(limit)
        rows = []
        for r in runs:
            steps = journal.steps(r.id)
            done = sum(s.status == "applied" for s in steps)
            undone = sum(s.status == "undone" for s in steps)
            rows.append([r.id, r.command, r.started_at[:19].replace("T", " "), _duration(r.started_at, r.finished_at),
                         r.status, f"{done}/{undone}/{len(steps)}"])
        if not runs:
            a.say("no runs yet")
        else:
            a.table(["RUN", "COMMAND", "STARTED (UTC)", "TOOK", "STATUS", "APPLIED/UNDONE/STEPS"], rows)
        a.done({"runs": [r.as_dict() for r in runs]})
        return
    found = journal.run(run)
    if found is None:
        raise UsageError(f"no run {run} in the journal", hint="`golive history` lists the runs")
    steps = journal.steps(run)
    a.say(f"run {found.id}: {found.command} — {found.status} (by {found.user}@{found.host}, pid {found.pid})")
    if found.error:
        a.say(f"  error: {found.error}")
    a.table(["#", "STEP", "STATUS", "TOOK", "CHANGES"],
            [[str(s.seq), s.title, s.status, _duration(s.started_at, s.finished_at), str(len(s.changes or []))]
             for s in steps])
    events = journal.events(run)
    # what the operator had to be told (where data was kept, what to do), by the run and by its rollbacks
    for r, said in [(found, events), *((c, journal.events(c.id)) for c in journal.children(run))]:
        for e in said:
            if e["kind"] == "log" and e["phase"] == "notice":
                a.say(f"  ! {'' if r is found else f'rollback {r.id}: '}[{e['seq']}] {e['message']}")
    a.done({"run": found.as_dict(), "steps": [s.as_dict() for s in steps], "events": events})
