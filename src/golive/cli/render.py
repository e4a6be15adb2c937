"""How runs, plans and errors look: a rich timeline on a terminal, plain lines when piped or with
NO_COLOR, NDJSON events under --json."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from golive.errors import GoliveError, UndoFailed
from golive.secrets import REDACTOR

if TYPE_CHECKING:
    from rich.status import Status

    from golive.cli.application import App
    from golive.core.runner import Planned

__all__ = ["live_table", "render_error", "run_view", "show_plan"]


def show_plan(app: App, what: str, planned: list[Planned]) -> None:
    if app.json:
        return
    changes = sum(len(p.changes) for p in planned)
    app.say(f"Plan: {what} — {len(planned)} step(s), {changes} change(s)", style="bold")
    for p in planned:
        note = f"  ({p.note})" if p.note else ""
        app.say(f"  [{p.seq}] {p.step.title}{note}")
        for change in p.changes:
            app.say(f"      {REDACTOR(str(change))}")


class _View:
    """Turns runner events into a timeline. One instance per run."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.status: Status | None = None
        self.total: int | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        app, kind = self.app, event["event"]
        if kind == "log" and event["phase"] == "notice":  # (also in the result, where a script looks)
            app.notices.append(event["message"])
        if app.json:
            app.emit_json(event)
            return
        self.total = event.get("total") or getattr(self, "total", None)
        label = f"[{event['seq']}/{self.total}]" if self.total else f"[{event.get('seq')}]"
        if kind == "step.start":
            self._spin(f"{label} {event['title']} …")
        elif kind == "step.done":
            self._line(f"✓ {label} {event['title']}  {event['seconds']:.2f}s", "green")
        elif kind == "step.failed":
            self._line(f"✗ {label} {event['title']}: {event['error']}", "red")
        elif kind == "step.skip":
            self._line(f"- [{event['seq']}] {event['title']}: {event['message']}", "dim")
        elif kind == "undo.start":
            self._spin(f"undo [{event['seq']}] {event['title']} …")
        elif kind == "undo.done":
            self._line(f"↶ undone [{event['seq']}] {event['title']}  {event['seconds']:.2f}s", "cyan")
        elif kind == "undo.failed":
            self._line(f"✗ undo [{event['seq']}] {event['title']}: {event['error']}", "red")
        elif kind == "log" and event["phase"] == "notice":
            self._line(f"    ! {event['message']}", "yellow")
        elif kind == "log" and app.verbose:
            self._line(f"    {event['phase']}: {event['message']}", "dim")
        elif kind == "run.start":
            self._line(f"run {event['run']}: {event['command']} ({event['steps']} step(s))", "bold")
        elif kind == "run.done":
            self._line(f"run {event['run']}: {event['status']}", "bold")
        elif kind == "run.interrupted":  # (the spinner stops with it)
            self._line(f"run {event['run']}: interrupted", "bold")

    def _spin(self, text: str) -> None:
        if not self.app.tty:
            return
        if self.status is None:
            self.status = self.app.out.status(text, spinner="dots")
            self.status.start()
        else:
            self.status.update(text)

    def _line(self, text: str, style: str) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        self.app.say(text, style=style)


def run_view(app: App) -> _View:
    return _View(app)


def render_error(app: App, exc: BaseException) -> int:
    """Print one line (plus each thing at fault when there are several, and the manual steps of a failed undo);
    return the exit code."""
    if isinstance(exc, GoliveError):
        code, text = exc.exit_code, REDACTOR(str(exc))
        manual = exc.manual if isinstance(exc, UndoFailed) else []
        doc: dict[str, Any] = exc.to_dict()
    else:
        code, text, manual = 1, REDACTOR(f"internal error: {type(exc).__name__}: {exc}"), []
        doc = {"type": "InternalError", "message": text, "hint": "run with -v for the traceback"}
        if not app.verbose:
            text += " (run with -v for the traceback)"
    if app.verbose:
        app.stderr.write(REDACTOR("".join(traceback.format_exception(exc))))
    details = exc.details if isinstance(exc, GoliveError) else []
    app.err.print(f"error: {app.commands(text)}", style="bold red", markup=False, highlight=False)
    for item in details:
        app.err.print(f"  - {REDACTOR(app.commands(item))}", markup=False, highlight=False)
    for item in manual:
        app.err.print(f"  by hand: {REDACTOR(app.commands(item))}", markup=False, highlight=False)
    if app.json:  # (the commands it names with the config given, as on the terminal)
        doc = {k: app.commands(v) if isinstance(v, str) else [app.commands(i) if isinstance(i, str) else i for i in v]
               if isinstance(v, list) else v for k, v in doc.items()}
        app.emit_json({"ok": False, "error": doc, "exit_code": code})
    return code


@contextmanager
def live_table(app: App, columns: list[str]) -> Iterator[Callable[[list[list[str]]], None]]:
    """A table that redraws in place on a terminal; plain output shows only the last state."""
    last: list[list[str]] = []

    def update(rows: list[list[str]]) -> None:
        last[:] = rows
        if live is not None:
            live.update(_table(columns, rows))

    live = None
    if app.tty and not app.json:
        from rich.live import Live

        live = Live(_table(columns, []), console=app.out, refresh_per_second=4)
        live.start()
    try:
        yield update
    finally:
        if live is not None:
            live.stop()
        elif last:
            app.table(columns, last)


def _table(columns: list[str], rows: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*row, style="green" if row[-1] == "ok" else "yellow")
    return table
