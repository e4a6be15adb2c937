"""golive lock status|release."""

from __future__ import annotations

from typing import Annotated

import typer

from golive.cli.groups import help_of
from golive.cli.options import Json, app_of

app = typer.Typer(help=help_of("lock"), add_completion=False, no_args_is_help=True)


@app.command("status")
def status(ctx: typer.Context, json: Json = False) -> None:
    """Show who holds the run lock, and whether that holder is still alive."""
    from golive.core.lock import Lock

    a = app_of(ctx, json)
    state = Lock(a.config.state_dir).status()
    if state.holder is None:
        a.say("lock: free")
    else:
        a.say(f"lock: {state.state} — {state.holder}")
        if state.state == "stale":
            a.say("  its process is gone; the next run takes the lock over (or: golive lock release)")
    a.done({"lock": state.as_dict()})


@app.command("release")
def release(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Also clear a lock recorded by another host.")] = False,
    json: Json = False,
) -> None:
    """Clear a stale lock record. A lock held by a live run is never released (exit 3)."""
    from golive.core.lock import Lock

    a = app_of(ctx, json)
    state = Lock(a.config.state_dir).clear(force=force)
    a.say(f"lock: released (was held by {state.holder})" if state.holder else "lock: already free")
    a.done({"released": state.as_dict()})
