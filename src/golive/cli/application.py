"""The one ``App`` object every command receives in ``ctx.obj``: config, journal, lock, output."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from golive.core.interrupts import GuardedStream, interrupts
from golive.errors import GoliveError, Interrupted, JournalError, UsageError
from golive.secrets import REDACTOR, redact

if TYPE_CHECKING:
    from rich.console import Console

    from golive.config.models import GoliveConfig
    from golive.core.journal import Journal
    from golive.core.lock import Lock
    from golive.core.runner import Planned, Runner, RunOutcome

__all__ = ["App"]

_NAMED = re.compile(r"`golive (?!-c |--config)")  # a golive command in backquotes that names no config yet


class App:
    def __init__(self, config_path: Path, verbose: bool = False, named: bool = False) -> None:
        self.config_path = config_path
        # a config named on the command line (-c) is named in every golive command a line tells the operator to
        # run: pasted without it, `golive rollback` undoes the run of whatever ./golive.toml is (GOLIVE_CONFIG,
        # the other way to name one, is still in the environment)
        self._named = f"-c {shlex.quote(str(config_path))} " if named else ""
        self.verbose = verbose or os.environ.get("GOLIVE_DEBUG") == "1"
        self.json = False
        self.notices: list[str] = []  # what runs said the operator must see (`notices` in a --json result)
        self.warned: list[str] = []  # every warning said (`config check --strict` fails on any)
        self.command = " ".join(["golive", *sys.argv[1:]])[:200]
        self._locks: list[Lock] = []
        self._streams = (sys.stdout, sys.stderr)  # (now: a spinner redirects them while a step runs)

    # -- output ----------------------------------------------------------------------------------
    @cached_property
    def stdout(self) -> GuardedStream:
        """stdout that a vanished reader cannot fail a mutating command through (core/interrupts.py)."""
        return GuardedStream(self._streams[0], "stdout", armed=lambda: bool(self._locks))

    @cached_property
    def stderr(self) -> GuardedStream:
        """stderr: warnings and the error line are best effort; where they cannot go, they are dropped."""
        return GuardedStream(self._streams[1], "stderr", armed=lambda: True)

    @cached_property
    def tty(self) -> bool:
        return self.stdout.isatty() and not os.environ.get("NO_COLOR")

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        if self.tty:
            return Console(file=self.stdout, highlight=False, emoji=False)  # type: ignore[arg-type]
        # (emoji off: rich turned ":ok:" in an image reference or a message into an emoji)
        return Console(file=self.stdout, highlight=False, emoji=False, no_color=True, width=1000,  # type: ignore[arg-type]
                       soft_wrap=True, force_terminal=False, force_interactive=False)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        tty = self.stderr.isatty() and not os.environ.get("NO_COLOR")
        return Console(file=self.stderr, highlight=False, emoji=False, no_color=not tty,  # type: ignore[arg-type]
                       width=None if tty else 1000, soft_wrap=not tty, force_terminal=tty or None)

    def commands(self, text: str) -> str:
        """``text`` with the config named on the command line (-c) in each golive command it names in backquotes."""
        if not self._named:
            return text
        return _NAMED.sub(lambda m: f"`golive {self._named}", text)

    def say(self, text: str, style: str | None = None) -> None:
        """A line for humans; silent under --json."""
        if not self.json:  # (masked like every --json document: a URL's password in a status line, say)
            self.out.print(REDACTOR(self.commands(text)), style=style if self.tty else None, markup=False)

    def emit_json(self, doc: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(redact(doc), default=str, sort_keys=False) + "\n")
        self.stdout.flush()

    def done(self, doc: dict[str, Any]) -> None:
        """The one JSON document of a command (only under --json)."""
        if self.json:
            self.emit_json({"ok": True, **doc})

    def abort(self, message: str, code: int = 1, hint: str | None = None) -> NoReturn:
        raise GoliveError(message, hint=hint) if code == 1 else UsageError(message, hint=hint)

    def table(self, columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        if self.json:
            return
        rows = [[REDACTOR(value) for value in row] for row in rows]
        title = REDACTOR(title) if title else title
        natural = sum(max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)) + 3 * (len(columns) - 1)
        if self.tty and natural > self.out.width:  # too narrow for the table: a block per row, nothing cut short
            if title:  # (a run id or an address shown as "2026…" cannot be used)
                self.out.print(title, style="bold", markup=False)
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    self.out.print(f"{column}: {value}", markup=False, highlight=False, overflow="fold")
                self.out.print()
            return
        table = Table(*columns, title=title if self.tty else None, box=box.SIMPLE_HEAD if self.tty else None,
                      show_edge=False, pad_edge=False, header_style="bold" if self.tty else "")
        for row in rows:  # (as text: "[proxy].reload_command" in a cell was taken for markup and dropped)
            table.add_row(*(Text(value) for value in row))
        if title and not self.tty:
            self.say(title)
        self.out.print(table)

    # -- config and state ------------------------------------------------------------------------
    @cached_property
    def config(self) -> GoliveConfig:
        from golive.config.loader import load_config

        config: GoliveConfig = load_config(self.config_path)
        return config

    @cached_property
    def journal(self) -> Journal:
        from golive.core.journal import Journal

        return Journal(self.config.state_dir / "journal.db")

    @cached_property
    def journal_read(self) -> Journal:
        """The journal for a command that only reads it (``history``, ``report``, ``status``): opened read-only, so a
        full or read-only state dir still reads, and nothing is created."""
        from golive.core.journal import Journal

        return Journal(self.config.state_dir / "journal.db", read_only=True)

    def lock(self) -> Lock:
        from golive.core.lock import Lock

        lock = Lock(self.config.state_dir)
        lock.acquire(self.command)
        if lock.took_over is not None:
            self.warn(f"lock: the previous holder ({lock.took_over}) is gone; its run may need "
                      "`golive rollback` (`golive status` shows it)")
        self._locks.append(lock)
        return lock

    def release_locks(self) -> None:
        if self._locks:  # a mutating command ends: housekeeping while the lock is still held
            self._prune_kept()
        for lock in self._locks:
            lock.release()
        self._locks.clear()

    def _prune_kept(self) -> None:
        """Files no step left to undo needs any more are removed: container specs (with their secrets), and
        the target's dumps beyond ``[target].backup_keep`` (one a data rollback still needs stays)."""
        import sqlite3

        from golive.swap.kept import prune as prune_specs
        from golive.sync.backup import prune as prune_dumps

        state, target = self.config.state_dir, self.config.target
        chores: list[tuple[Path, Callable[[], object]]] = [
            (state / "containers", lambda: prune_specs(state, set(self.journal.needed("kept"))))]
        if target is not None:
            chores.append((state / "backups", lambda: prune_dumps(state / "backups", target.backup_keep,
                                                                   set(self.journal.needed("backup")))))
        for folder, tidy in chores:
            if not folder.is_dir():
                continue
            try:
                tidy()
            except (JournalError, sqlite3.Error):  # housekeeping: a journal that cannot be read was already reported
                return
            except OSError as exc:
                self.warn(f"could not tidy {folder}: {exc}")

    def warn(self, text: str) -> None:
        text = REDACTOR(self.commands(text))
        self.warned.append(text)
        self.err.print(f"warning: {text}", style="yellow", markup=False)

    def runner(self, options: dict[str, Any] | None = None) -> Runner:
        from golive.cli.render import run_view
        from golive.core.faults import Faults
        from golive.core.runner import Runner
        from golive.core.step import Gateways, StepContext

        ctx = StepContext(state_dir=self.config.state_dir, config=self.config, gateways=Gateways(self.config),
                          options=options or {}, faults=Faults.from_env())
        return Runner(self.journal, ctx, run_view(self))

    def execute(self, command: str, what: str, steps: list[Any], *, yes: bool, dry_run: bool,
                args: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
                result: Callable[[], dict[str, Any]] | None = None) -> RunOutcome | None:
        """The shape of every mutating command: plan; with --dry-run show it and stop; else lock,
        show, confirm, run. Under --json the run's events are NDJSON, closed by a result line, which also
        carries ``result()`` (what the command learnt from the run: a sync's tables and media)."""
        from golive.cli.render import show_plan

        if dry_run:
            planned = self.runner(options).plan(steps)
            show_plan(self, what, planned)
            self.done({"dry_run": True, "steps": [p.as_dict() for p in planned]})
            return None
        self.lock()
        outcome = self.runner(options).run(command, steps, args=args, confirm=lambda p: self.confirm(what, p, yes))
        if outcome.run_id is None:  # every change already in place: no run was made
            show_plan(self, what, outcome.planned)
            self.say("nothing to do: every change is already in place (no run was made)")
        if self.json:
            self.emit_json({"event": "result", "ok": True, **outcome.as_dict(), **(result() if result else {}),
                            "notices": self.notices})
        return outcome

    # -- prompts ---------------------------------------------------------------------------------
    def confirm(self, what: str, planned: list[Planned], yes: bool) -> None:
        """Show the plan; ask unless --yes. No TTY and no --yes is a usage error (exit 2)."""
        from golive.cli.render import show_plan

        show_plan(self, what, planned)
        self.ask(what, yes)

    def ask(self, what: str, yes: bool) -> None:
        """Ask before a plan already shown; unless --yes. No TTY and no --yes is a usage error (exit 2)."""
        if yes:
            return
        if self.json:  # (its answer would be a line of the JSON output)
            raise UsageError(f"{what} needs confirmation, and --json does not ask",
                             hint="review it with --dry-run, then pass --yes")
        if sys.stdin is None or not sys.stdin.isatty():  # (None: started with stdin closed)
            raise UsageError(f"{what} needs confirmation and there is no terminal to ask",
                             hint="review it with --dry-run, then pass --yes")
        try:
            with interrupts():  # (the terminal hanging up at the prompt ends it as Ctrl-C does, lock released)
                answer = typer.confirm("Proceed?", default=False)
        except typer.Abort as exc:  # Ctrl-C is an interrupt; end of input (Ctrl-D, the terminal gone) a "no"
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise Interrupted(f"{what}: interrupted at the prompt; nothing was changed") from None
            answer = False
        except OSError:  # (the prompt could not be written: the terminal is gone)
            answer = False
        if not answer:
            raise GoliveError(f"{what}: not confirmed; nothing was changed")
