"""Checks a swap, a prepare and a finalize make in their plan, before anything changes.

- :func:`no_unfinished_swap`: a swap step the journal still has ``applying`` (interrupted, crashed, or
  failed with --no-rollback), ``undoing`` (its rollback interrupted or crashed) or ``undo_failed``. Then
  the upstream file is no proof of what Apache serves (a crash between the write and the graceful reload
  leaves them apart), and the "idle" colour a new swap would replace may be the one serving, or the old
  release kept for rollback. Only `golive rollback` knows how to put that run back.
"""

from __future__ import annotations

from golive.core.step import StepContext
from golive.errors import GoliveError

__all__ = ["no_unfinished_swap"]

UNFINISHED = {
    "applying": "did not finish (interrupted, crashed, or failed and not undone)",
    "undoing": "was being undone when that stopped (interrupted or crashed)",
    "undo_failed": "could not be undone",
}


def no_unfinished_swap(ctx: StepContext) -> None:
    from golive.core.journal import Journal
    from golive.core.lock import Lock

    path = ctx.state_dir / "journal.db"
    if not path.exists():
        return
    journal = Journal(path)
    try:
        found = journal.newest_step("swap.", tuple(UNFINISHED))
        if found is None:
            return
        run, row = found
        if run.status == "running" and not Lock(ctx.state_dir).status().crashed(run.status, run.host, run.pid):
            raise GoliveError(f"run {run.id} ({run.command}) is still running (pid {run.pid} on {run.host});"
                              " nothing was changed", hint="wait for it to end (`golive status` shows it)")
        latest = journal.latest_undoable_run()
        fix = "golive rollback" if latest is not None and latest.id == run.id else f"golive rollback --run {run.id}"
        raise GoliveError(f"step {row.seq} ({row.title}) of run {run.id} ({run.command}) {UNFINISHED[row.status]}:"
                          " what Apache serves and which colour is idle are not known from the upstream file;"
                          " nothing was changed",
                          hint=f"`{fix}` puts that run back (`golive status` shows it), then run this again")
    finally:
        journal.close()
