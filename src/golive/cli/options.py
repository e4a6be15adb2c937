"""Options shared by many commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from golive.cli.application import App

__all__ = ["DryRun", "Json", "Yes", "app_of"]

Json = Annotated[bool, typer.Option("--json", help="Machine output: one JSON document (NDJSON events for runs).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the plan and stop; touch nothing.")]


def app_of(ctx: typer.Context, json: bool = False) -> App:
    app: App = ctx.obj
    app.json = json
    return app
