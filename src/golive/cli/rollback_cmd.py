"""golive rollback."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from golive.cli.options import DryRun, Json, Yes, a_value, app_of, command_again, given_options

if TYPE_CHECKING:
    from golive.core.journal import RunRow
    from golive.core.runner import Planned


def rollback(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Roll back this run (default: the most recent run"
                                            " that still has applied steps).", callback=a_value)] = None,
    through: Annotated[str | None, typer.Option("--through", help="Roll back every run that still has applied"
                                                " steps, newest first, back to and including this one (say, the"
                                                " night's `freeze on`): one plan, one confirmation.",
                                                callback=a_value)] = None,
    restore_data: Annotated[bool, typer.Option("--restore-data", help="Also restore the new database from the backup"
                                               " taken before a sync (default: leave its data as it is). What the"
                                               " restore replaces is kept first, in <state_dir>/reconcile/.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Also put back DNS records someone changed by hand since the"
                                        " run (refused without it, naming them; what they held is journaled).")] = False,
    dry_run: DryRun = False,
    yes: Yes = False,
    json: Json = False,
) -> None:
    """Undo the applied steps of the most recent run that still has any, newest first.

    Safe after a crash (a half-applied step is put back from the state recorded before it
    started). Each call undoes one run: a second call undoes the run before it — `golive status`
    says which run that would be. To take back a whole night of runs at once, use --through RUN.
    """
    from golive.errors import UsageError

    a = app_of(ctx, json)
    if run and through:
        raise UsageError("--run and --through cannot be given together", hint="--run undoes one run; --through a series")
    if not dry_run:
        a.lock()
    given = given_options(yes, json, restore_data=restore_data)
    if through:
        _through(a, command_again(ctx, f"rollback --through {through}{given}"), through, restore_data, dry_run, yes, force)
        return
    target = a.journal.run(run) if run else a.journal.latest_undoable_run()
    if run and target is None:
        raise UsageError(f"no run {run} in the journal", hint="`golive history` lists the runs")
    again = command_again(ctx, f"rollback{f' --run {run}' if run else ''}{given}")
    options = {"restore_data": restore_data, **_dns_options(again, force, dry_run)}
    runner = a.runner(options)
    if target is None or not runner.undoable(target.id):
        latest = a.journal.latest_undoable_run() if run else None
        a.say(f"nothing to roll back: run {run} has no applied steps" + (
            f" (run {latest.id} ({latest.command}) has: `golive rollback` undoes it)" if latest else "")
              if run else "nothing to roll back: no run has applied steps")
        if a.json:  # (a rollback is a run command: its output is NDJSON ending in a result, also when empty)
            a.emit_json(NOTHING)
        return
    if run:
        _not_over_newer(a, target, lambda rest: command_again(ctx, rest + given))
    planned = runner.rollback_plan(target)
    what = f"rollback of run {target.id} ({target.command})"
    if dry_run:
        from golive.cli.render import show_plan

        show_plan(a, what, planned)
        _refused(options)
        a.done({"dry_run": True, "target": target.id, "steps": [p.as_dict() for p in planned]})
        return
    outcome = runner.rollback(target, confirm=lambda p: a.confirm(what, p, yes), again=again + (" --force" if force else ""))
    a.say(f"rolled back {len(planned)} step(s) of run {target.id}")
    older = a.journal.latest_undoable_run()
    if older is not None:  # (an interrupted run, then the same command run again: the first still has its steps)
        # (what that would do, not an invitation: undoing a `freeze off` freezes the old application again)
        a.warn(f"run {older.id} ({older.command}) still has applied steps: `golive rollback` again would undo that"
               f" {older.command} too (`golive rollback --dry-run` shows what it puts back)")
    if not a.json:
        return
    a.emit_json({"event": "result", "ok": True, "rolled_back": [target.id], "target": target.id, **outcome.as_dict(),
                 "still_undoable": older.id if older else None, "notices": a.notices})


# the result when there was nothing to roll back, with or without --through: every key either result has (no
# rollback run was made: `run` is null, as a command's whose every change is already in place)
NOTHING = {"event": "result", "ok": True, "run": None, "status": "nothing to do", "rolled_back": [], "target": None,
           "targets": [], "rollbacks": [], "steps": [], "notices": []}


def _not_over_newer(a: Any, target: RunRow, again: Callable[[str], str]) -> None:
    """``--run`` for a run whose steps must be undone after newer runs' steps of some kinds (a step's
    ``undone_after``: a swap's undo switches to the colour it left, which a newer swap or prepare has changed), while
    such a newer run still has them applied: refused, naming it. (A DNS lowering's undo puts back only its own TTLs,
    and a prepare's undo refuses by itself while the swap to it stands: those declare nothing and go as they are.)"""
    from golive.core.journal import UNDOABLE
    from golive.core.step import step_class
    from golive.errors import GoliveError

    def kinds(run_id: str) -> set[str]:
        return {s.kind for s in a.journal.steps(run_id) if s.status in UNDOABLE}

    blocking = {(kind, step_class(mine).undone_after_why) for mine in kinds(target.id)
                for kind in step_class(mine).undone_after}
    if not blocking:
        return
    between = []  # the newer runs with applied steps, newest first: what --through would undo too
    for newer in a.journal.runs(10_000):  # newest first
        if newer.id == target.id:
            return
        applied = kinds(newer.id)
        if applied:
            between.append(newer)
        why = next((reason for kind, reason in sorted(blocking) if kind in applied), None)
        if why is not None:
            parts = sorted({kind.split(".")[0] for kind, _ in blocking if kind in applied})
            others = [f"{r.id} ({r.command})" for r in between if r is not newer]
            raise GoliveError(
                f"run {target.id} ({target.command}) cannot be rolled back before run {newer.id} ({newer.command}),"
                f" which came after it and still has applied {', '.join(parts)} steps: {why}; nothing was changed",
                hint=f"roll back run {newer.id} first (`{again(f'rollback --run {newer.id}')}`), or every run back to"
                     f" {target.id} at once (`{again(f'rollback --through {target.id}')}`"
                     + (f": that undoes {', '.join(others)} too" if others else "") + ")")


def _dns_options(again: str, force: bool, dry_run: bool) -> dict[str, Any]:
    """What the DNS undos read (golive.dns.steps): --force, a dry run (its refusals kept in "refused" for after
    the plan: :func:`_refused`), the command to give again."""
    return {"force": force, "dry_run": dry_run, "again": again, "refused": []}


def _refused(options: dict[str, Any]) -> None:
    """A dry run whose plan the rollback would refuse is refused after it is shown (its exit code included)."""
    if options.get("refused"):
        raise options["refused"][0]


def _through(a: Any, again: str, first: str, restore_data: bool, dry_run: bool, yes: bool, force: bool = False) -> None:
    """Every run with applied steps from the newest back to ``first``: all their plans shown, one
    confirmation, then each rolled back in turn (a failure stops there; the same command resumes). Once the first
    has started, the rest are undone too if the terminal or the output goes away meanwhile: one rollback, which an
    SSH session dropping does not leave half done (Ctrl-C and SIGTERM still stop it)."""
    from golive.cli.render import show_plan
    from golive.core.interrupts import finishing
    from golive.errors import Interrupted, UsageError

    if a.journal.run(first) is None:
        raise UsageError(f"no run {first} in the journal", hint="`golive history` lists the runs")
    options = {"restore_data": restore_data, **_dns_options(again, force, dry_run)}
    runner = a.runner(options)
    runs = []
    for run in a.journal.runs(10_000):  # newest first
        if runner.undoable(run.id):
            runs.append(run)
        if run.id == first:
            break
    if not runs:
        a.say(f"nothing to roll back: no run since {first} has applied steps")
        if a.json:
            a.emit_json(NOTHING)
        return
    plans: list[tuple[RunRow, list[Planned]]] = []
    for run in runs:  # (each run's plan from the state the newer runs' undos leave: none is undone yet)
        plans.append((run, runner.rollback_plan(run, first=[p for _, planned in plans for p in planned])))
    for run, planned in plans:
        show_plan(a, f"rollback of run {run.id} ({run.command})", planned)
    if dry_run:
        _refused(options)
        a.done({"dry_run": True, "targets": [run.id for run in runs],
                "steps": [{"run": run.id, **p.as_dict()} for run, planned in plans for p in planned]})
        return
    a.ask(f"rollback of {len(runs)} run(s), newest first, back to {first}", yes)
    outcomes: list[dict[str, Any]] = []
    forced = again + (" --force" if force else "")
    try:
        with finishing():
            for at, (run, planned) in enumerate(plans):
                later = plans[at + 1:]  # (what a failure in this run leaves for the same command besides)
                outcomes.append(a.runner(options).rollback(
                    run, again=forced, under_way=bool(outcomes),
                    older=(sum(len(p) for _, p in later), len(later))).as_dict())
                a.say(f"rolled back {len(planned)} step(s) of run {run.id} ({run.command})")
            if a.json:  # (`run`, `status`, `steps` as every run's result: the last rollback run's id, all the steps)
                ids = [run.id for run in runs]
                steps = [{"run": run.id, **step} for run, done in zip(runs, outcomes, strict=True)
                         for step in done["steps"]]
                a.emit_json({"event": "result", "ok": True, "run": outcomes[-1]["run"], "status": "succeeded",
                             "steps": steps, "rolled_back": ids, "targets": ids, "rollbacks": outcomes,
                             "notices": a.notices})
    except KeyboardInterrupt:  # (Ctrl-C or SIGTERM between two runs: each run's own undo says so itself)
        raise Interrupted(f"rollback --through {first} interrupted after {len(outcomes)} of {len(runs)} run(s) were"
                          " rolled back; the journal is consistent", hint=f"run `{forced}` again to finish it") from None
