"""golive report RUN --format md|html|svg."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from golive.cli.options import Json, app_of


def report(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run id (`golive history` lists them).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, html or svg.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write it; '-' for stdout."
                                                " Default: <state_dir>/reports/RUN.FORMAT")] = None,
    json: Json = False,
) -> None:
    """Write the timeline report of a run: every step's apply and undo on one time axis, its changes and events."""
    from golive.report import render_report

    a = app_of(ctx, json)
    to_stdout = output is not None and str(output) == "-"
    if to_stdout and json:  # (--json's one document says where the report went; the report itself is not JSON)
        from golive.errors import UsageError

        raise UsageError("-o - and --json both write to stdout", hint="write the report to a file (-o PATH, or the"
                         " default) and --json names it, or drop --json to read the report on stdout")
    from golive.core.lock import Lock

    lock = Lock(a.config.state_dir).status()  # (a run the journal says is running, its process gone: crashed)
    journal = a.journal_read  # (a full or read-only disk: still read)
    text = render_report(journal, run, fmt, crashed=lambda r: lock.crashed(r.status, r.host, r.pid))
    if to_stdout:
        typer.echo(text, nl=False)
        return
    path = output or a.config.state_dir / "reports" / f"{run}.{fmt}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        from golive.errors import UsageError

        raise UsageError(f"cannot write the report to {path}: {exc.strerror or exc}",
                         hint="pass -o a file path you may write, or -o - for stdout") from None
    a.say(f"wrote {path}")
    a.done({"run": run, "format": fmt, "path": str(path)})
