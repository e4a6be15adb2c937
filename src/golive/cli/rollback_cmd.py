"""golive rollback."""

from __future__ import annotations

from typing import Annotated

import typer

from golive.cli.options import DryRun, Json, Yes, app_of


def rollback(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Roll back this run (default: the most recent run"
                                            " that still has applied steps).")] = None,
    restore_data: Annotated[bool, typer.Option("--restore-data", help="Also restore the new database from the backup"
                                               " taken before a sync (default: leave its data as it is). What the"
                                               " restore replaces is kept first, in <state_dir>/reconcile/.")] = False,
    dry_run: DryRun = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Undo the applied steps of the most recent run that still has any, newest first.

    Safe after a crash (a half-applied step is put back from the state recorded before it
    started) and safe to run twice: a second rollback finds nothing to do.
    """
    from golive.errors import UsageError

    a = app_of(ctx, json)
    if not dry_run:
        a.lock()
    target = a.journal.run(run) if run else a.journal.latest_undoable_run()
    if run and target is None:
        raise UsageError(f"no run {run} in the journal", hint="`golive history` lists the runs")
    runner = a.runner({"restore_data": restore_data})
    if target is None or not runner.undoable(target.id):
        a.say("nothing to roll back: no run has applied steps")
        a.done({"rolled_back": None, "steps": []})
        return
    planned = runner.rollback_plan(target)
    what = f"rollback of run {target.id} ({target.command})"
    if dry_run:
        from golive.cli.render import show_plan

        show_plan(a, what, planned)
        a.done({"dry_run": True, "target": target.id, "steps": [p.as_dict() for p in planned]})
        return
    outcome = runner.rollback(target, confirm=lambda p: a.confirm(what, p, yes))
    a.say(f"rolled back {len(planned)} step(s) of run {target.id}")
    if not a.json:
        return
    a.emit_json({"event": "result", "ok": True, "target": target.id, **outcome.as_dict()})
