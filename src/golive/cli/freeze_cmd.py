"""golive freeze on|off|status."""

from __future__ import annotations

import typer

from golive.cli.groups import help_of
from golive.cli.options import DryRun, Json, Yes, app_of

app = typer.Typer(help=help_of("freeze"), add_completion=False,
                  no_args_is_help=True)


def _set(ctx: typer.Context, on: bool, dry_run: bool, yes: bool, json: bool) -> None:
    from golive.freeze.steps import Freeze

    a = app_of(ctx, json)
    word = "on" if on else "off"
    # (already so: the plan is all "unchanged" and the runner makes no run, which `golive rollback` would undo)
    outcome = a.execute(f"freeze {word}", f"freeze {word}", [Freeze(on=on)], yes=yes, dry_run=dry_run)
    if outcome is not None and outcome.run_id is not None:
        a.say("the old application is frozen (read-only)" if on else "the old application takes writes again")


@app.command("on")
def on(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False, json: Json = False) -> None:
    """Stop writes to the old application by the configured method (flag file, commands, or PostgreSQL read-only)."""
    _set(ctx, True, dry_run, yes, json)


@app.command("off")
def off(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False, json: Json = False) -> None:
    """Let the old application take writes again."""
    _set(ctx, False, dry_run, yes, json)


@app.command("status")
def status(ctx: typer.Context, json: Json = False) -> None:
    """Say whether the old application is frozen now."""
    from golive.freeze.steps import frozen

    a = app_of(ctx, json)
    state = frozen(a.config, notify=lambda text: a.err.print(f"{text} …", markup=False, highlight=False))
    method = a.config.require("source").freeze.method
    a.say(f"freeze: {'on' if state else 'off'} ({method})")
    a.done({"frozen": state, "method": method})
