"""Options shared by many commands, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from golive.cli.application import App

__all__ = ["DryRun", "Json", "Yes", "a_value", "app_of", "one_of"]

Json = Annotated[bool, typer.Option("--json", help="Machine output: one JSON document (NDJSON events for runs).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the plan and stop; touch nothing.")]


def app_of(ctx: typer.Context, json: bool = False) -> App:
    app: App = ctx.obj
    app.json = json
    return app


def a_value(value: str | None) -> str | None:
    """An option's callback: a value that starts with "-" is a flag the option took for its value (`swap
    --image --json`, the image forgotten), and an empty one a script's unset variable (`rollback --run "$RUN"`,
    which would otherwise act as if the option were not given: the latest run): a usage error (exit 2), with
    ``--json`` as a JSON document."""
    if value is not None and (value.startswith("-") or not value.strip()):
        raise typer.BadParameter(f"needs a value, not {value!r}")
    return value


def one_of(*allowed: str) -> Callable[[str | None], str | None]:
    """An option's callback: its value one of ``allowed`` (None: not given), else a usage error naming them."""
    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"must be {' or '.join(allowed)}, not {value!r}")
        return value

    return check


def command_again(ctx: typer.Context, rest: str) -> str:
    """The command a hint tells the operator to run again: ``golive [-c CONFIG] <rest>``, ``rest`` with the options
    given (`--yes`, `--json`: run as written by a script, it must not stop at a prompt). A config named on the
    command line is named again (one from GOLIVE_CONFIG is still in the environment; the default needs none)."""
    import shlex

    root = ctx.find_root()
    config, source = root.params.get("config"), root.get_parameter_source("config")
    if config is None or getattr(source, "name", None) != "COMMANDLINE":  # (click's ParameterSource, or typer's copy)
        return f"golive {rest}"
    return f"golive -c {shlex.quote(str(config))} {rest}"


def given_options(yes: bool, json: bool, *, restore_data: bool = False) -> str:
    """The options given that the command to run again carries, as the user would type them (--force is added where
    it is named: a refusal's hint says "`<again> --force`"; an interruption's or a failure's gets it when given)."""
    return f"{' --restore-data' if restore_data else ''}{' --yes' if yes else ''}{' --json' if json else ''}"
