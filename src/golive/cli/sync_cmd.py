"""golive sync [--tables a,b] [--verify-only [--deep]] [--max-rejects N] [--dry-run] [--yes] [--json]."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated, Any

import typer

from golive.cli.groups import help_of
from golive.cli.options import DryRun, Json, Yes, a_value, app_of
from golive.errors import CheckFailed

app = typer.Typer(help=help_of("sync"), add_completion=False)

COLUMNS = ["TABLE", "MODE", "READ", "INSERTED", "UPDATED", "DELETED", "UNCHANGED", "REJECTED", "SECONDS", "VERIFIED"]


def _row(r: Any) -> list[str]:
    keys = r.mismatched_keys
    shown = ", ".join(keys[:3]) + (f", … ({len(keys)} in all; --json lists them)" if len(keys) > 3 else "")
    verified = "yes" if r.verified else (f"no: {shown}" if r.verified is False else "-")
    return [r.table, r.mode, str(r.read), str(r.inserted), str(r.updated), str(r.deleted), str(r.unchanged), str(r.rejected),
            f"{r.seconds:.2f}", verified]


def _media_row(m: Any) -> list[str]:
    shown = ", ".join(m.differ[:3]) + (f", … ({len(m.differ)} in all; --json lists them)" if len(m.differ) > 3 else "")
    return [m.folder, str(m.files), m.checked, "yes" if m.verified else f"no: {shown}"]


def _progress(a: Any) -> tuple[Any, Any]:
    """A bar per table: rows copied of the source's, rows/s, ETA; then the merge and verify phases by name.
    A bar per media folder too, in files."""
    if not a.tty or a.json:
        return nullcontext(), None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {task.fields['unit']}/s" if speed else "", style="progress.data.speed")

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
                   Rate(), TimeRemainingColumn(), console=a.out)
    tasks: dict[str, Any] = {}

    def update(table: str, done: int, total: int, phase: str = "copy") -> None:
        if table not in tasks:  # (a media folder's bar counts files)
            tasks[table] = bar.add_task(table, total=total, unit="files" if table.startswith("media ") else "rows")
        bar.update(tasks[table], completed=done, description=table if phase == "copy" else f"{table} ({phase})")

    return bar, update


class _Differ(CheckFailed):
    """A failed --verify-only: under --json its error document carries every table's verification (as a failed
    undo's carries its manual steps), the one document of the command."""

    def __init__(self, tables: list[dict[str, Any]], media: list[dict[str, Any]]) -> None:
        super().__init__("source and target differ", hint="the VERIFIED column names the first differing keys"
                         " (and media files: `golive sync` copies those changed in from);"
                         " before the cutover, rows testers changed in the new site (a login upgrades a password"
                         " hash) come back from the old one with `golive sync --yes --full --source-wins`")
        self.tables, self.media = tables, media

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "type": "CheckFailed", "tables": self.tables, "media": self.media}


def _unfrozen_warning(a: Any) -> None:
    """A rehearsal sync runs while the old application takes writes; the final one must not: say so."""
    from golive.freeze.steps import frozen

    if a.config.source is None or a.config.source.freeze is None:
        return
    from golive.errors import ConfigError, GoliveError

    try:
        on = frozen(a.config)
    except ConfigError:  # (the source's config itself is wrong: the sync stops on it, saying so, in a moment)
        return
    except GoliveError as exc:  # (not known to be frozen: a role's own setting keeps it writable, a status unread)
        a.warn(f"cannot tell that the old application is frozen: {exc.message} (`golive freeze status` says more)")
        return
    except Exception:  # (its status cannot be read at all: `golive freeze status` says why)
        return
    if not on:
        a.warn("the old application is not frozen: what it writes after this sync reaches the new database only"
               " with the next sync (for the final sync, `golive freeze on` first)")


@app.callback(invoke_without_command=True)
def sync(
    ctx: typer.Context,
    tables: Annotated[str | None, typer.Option("--tables", help="Only these tables (comma-separated, target or"
                                               " source names).", callback=a_value)] = None,
    full: Annotated[bool, typer.Option("--full", help="Read every source row, not only those changed since the"
                                       " last sync's watermark.")] = False,
    verify_only: Annotated[bool, typer.Option("--verify-only", help="Compare source and target; write nothing. Quick"
                                              " where the last sync recorded digests: only ranges where either side"
                                              " changed are compared row by row.")] = False,
    deep: Annotated[bool, typer.Option("--deep", help="With --verify-only: transform and compare every row, not the"
                                       " digests the last sync recorded.")] = False,
    max_rejects: Annotated[int | None, typer.Option("--max-rejects", min=0, help="Rows that may be rejected before the sync"
                                                    " stops (default: \\[sync].max_rejects).")] = None,
    source_wins: Annotated[bool, typer.Option("--source-wins", help="Overwrite synced rows changed in the new"
                                              " database since golive wrote them, and media files in a `to`"
                                              " folder golive did not put there (testers' edits before the"
                                              " cutover), keeping their versions in <state_dir>/overwritten/;"
                                              " without it such rows and files stop the sync.")] = False,
    dry_run: DryRun = False, yes: Yes = False, json: Json = False,
) -> None:
    """Copy the old database into the new one (COPY; new, changed and deleted rows only), verified by
    counts and row checksums before commit, after a pg_dump backup of the target."""
    from golive.sync.steps import Sync, engine_for

    a = app_of(ctx, json)
    names = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    if names == []:  # (`--tables ,`: no table named — not every table)
        from golive.errors import UsageError

        raise UsageError(f"--tables {tables!r} names no table", hint="name one or more tables, comma-separated,"
                         " or leave --tables out to sync every table")
    if deep and not verify_only:
        from golive.errors import UsageError

        raise UsageError("--deep goes with --verify-only", hint="golive sync --verify-only --deep")
    if verify_only:
        from golive.sync.media import verify_media

        bar, update = _progress(a)
        engine, selected = engine_for(a.config, {"tables": names, "progress": update})
        pairs = a.config.sync.media if a.config.sync else []
        with bar:
            results = engine.verify_only(selected, deep=deep)
            media = [verify_media(a.config.resolve(m.from_), a.config.resolve(m.to),
                                  a.config.state_dir / f"media-manifest-{i}.json", deep=deep,
                                  progress=update and (lambda done, total, m=m: update(f"media {m.from_}", done, total)))
                     for i, m in enumerate(pairs)]
        a.table(["TABLE", "SOURCE ROWS", "CHECKED", "VERIFIED"], [[r.table, str(r.read), r.checked, _row(r)[-1]]
                                                                  for r in results])
        if media:
            a.table(["MEDIA", "FILES", "CHECKED", "VERIFIED"], [_media_row(m) for m in media])
        if not all(r.verified for r in results) or not all(m.verified for m in media):
            raise _Differ([r.as_dict() for r in results], [m.as_dict() for m in media])
        a.done({"verified": True, "tables": [r.as_dict() for r in results], "media": [m.as_dict() for m in media]})
        return
    _unfrozen_warning(a)
    bar, update = _progress(a)
    options: dict[str, Any] = {"progress": update, "source_wins": source_wins}
    if max_rejects is not None:
        options["max_rejects"] = max_rejects

    def data() -> dict[str, Any]:  # (the step leaves its results in the options; the result line carries them)
        return {"tables": [r.as_dict() for r in options.get("results", [])],
                "media": [m.as_dict() for m in options.get("media", [])]}

    with bar:
        outcome = a.execute("sync", "sync " + (tables or "all tables"), [Sync(tables=names, full=full)], yes=yes, dry_run=dry_run,
                            args={"tables": names}, options=options, result=data)
    if outcome is not None:
        results, media = options.get("results", []), options.get("media", [])
        a.table(COLUMNS, [_row(r) for r in results])
        if media:
            a.table(["MEDIA", "FILES", "COPIED", "BYTES", "UNCHANGED", "VERIFIED"],
                    [[m.folder, str(m.files), str(m.copied), str(m.bytes_copied), str(m.unchanged), "yes"] for m in media])
