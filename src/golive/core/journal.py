"""The journal: every run, step and event, durably, in SQLite (WAL, synchronous=FULL).

The intent of a step (its plan and the state before) is committed before the step touches
anything, and its result (the undo record) right after; that ordering is what makes resume and
rollback after a crash possible. Everything written passes the redactor: no secret reaches disk.

Step status: pending -> applying -> applied | failed; then undoing -> undone | undo_failed.
Run status: running -> succeeded | failed | rolled_back | interrupted | partially_rolled_back.

Commands that only read (``history``, ``report``, ``status``) open it with ``read_only=True``, so that a full or
read-only state dir does not blind them: SQLite's ``mode=ro`` first, which reads what the WAL holds and shares the
locks of a live writer, but needs the ``-shm`` file (it maps it, creating it when missing); failing that — a full
disk cannot grow the ``-shm``, a read-only one cannot create it — nobody can be writing (a writer needs the same
``-shm``), so when the WAL holds nothing the file alone is the journal and is opened ``immutable`` (no locks, no
``-shm``), and when the WAL holds transactions (a crashed run's) both are copied to a temporary folder and read
there: ``immutable`` would not read the WAL, and so would lose the crashed run's last steps.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import re
import shlex
import shutil
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from golive.errors import ConfigError, JournalError, JournalWriteError, state_write_hint
from golive.secrets import RECORD_SHORTEST, redact

_T = TypeVar("_T")

__all__ = ["KILLED", "SCHEMA_VERSION", "Journal", "RunRow", "StepRow", "Undo", "now_iso", "write_hint"]

SCHEMA_VERSION = 1
UNDOABLE = ("applying", "applied", "undoing", "undo_failed")
KILLED = "killed mid-run: its process ended without finishing (the time is the last it journaled)"

_SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, command TEXT NOT NULL, args TEXT NOT NULL DEFAULT '{}',
    user TEXT, host TEXT, pid INTEGER, parent TEXT,
    status TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, error TEXT
);
CREATE TABLE steps (
    run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL,
    kind TEXT NOT NULL, title TEXT NOT NULL, params TEXT NOT NULL,
    changes TEXT, before TEXT, record TEXT, status TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, undone_at TEXT, error TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, seq INTEGER,
    ts TEXT NOT NULL, kind TEXT NOT NULL, phase TEXT, message TEXT, data TEXT
);
CREATE INDEX events_run ON events(run_id, id);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _id_parts() -> tuple[str, int]:
    """A new run's id before the clash check: the time to the second, and 16 random bits (a test pins them)."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S"), int(uuid.uuid4().hex[:4], 16)


def _mount_point(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def write_hint(folder: Path, started: bool = True) -> str:
    """What to do when the state dir cannot be written: on a read-only file system, say so (free space would not
    help); else where, how much room is left (``state_write_hint``). ``started``: a run may have applied steps."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if not read_only:
        return state_write_hint(folder, started)
    then = ("`golive status` shows where the run stopped and `golive rollback` undoes what it applied" if started else
            "run the command again")
    return (f"{folder} is on a read-only file system: remount it read-write (mount -o remount,rw"
            f" {_mount_point(folder)}) or set [project].state_dir to a folder you may write, then {then}")


def _dump(value: Any) -> str:
    return json.dumps(redact(value, RECORD_SHORTEST), sort_keys=True, default=str)


@dataclass(frozen=True)
class RunRow:
    id: str
    command: str
    args: dict[str, Any]
    user: str
    host: str
    pid: int
    parent: str | None
    status: str
    started_at: str
    finished_at: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StepRow:
    run_id: str
    seq: int
    kind: str
    title: str
    params: dict[str, Any]
    changes: list[dict[str, Any]] | None
    before: dict[str, Any] | None
    record: dict[str, Any] | None
    status: str
    started_at: str | None
    finished_at: str | None
    undone_at: str | None
    error: str | None

    @property
    def undo_record(self) -> dict[str, Any]:
        return self.record if self.record is not None else (self.before or {})

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Undo:
    """One undo a run did, from its undo.* events: a `golive rollback` run's of another run's step, a failed run's
    of its own. ``result``: undone | failed | unfinished (its run was killed or interrupted in the middle of it)."""
    run: str  # the run whose step it undid
    seq: int
    title: str
    result: str
    started_at: str
    finished_at: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Unfinished:
    """A `golive rollback --through RUN` that stopped before its end: ``rollback``, its newest rollback run; ``again``,
    the command as given, which finishes it; ``left``, the runs back to RUN still with applied steps, newest first,
    and ``steps``, how many."""
    rollback: RunRow
    through: str
    again: str
    left: list[RunRow]
    steps: int


def _through_of(again: object) -> str | None:
    """The RUN of ``--through RUN`` in a rollback run's command (its ``again`` arg), if it has one."""
    try:
        words = shlex.split(again) if isinstance(again, str) else []
    except ValueError:
        return None
    return next((words[i + 1] for i, word in enumerate(words[:-1]) if word == "--through"), None)


def _writes(method: Callable[..., _T]) -> Callable[..., _T]:
    """A journal write that SQLite refuses (disk full, I/O error, read-only file) is one line saying where and what
    to do: the run stops there, and what it recorded before is intact (each write is its own transaction)."""

    @functools.wraps(method)
    def write(self: Journal, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            raise JournalWriteError(f"cannot write the journal {self.path}: {exc}",
                                    hint=write_hint(self.path.parent)) from exc

    return write


class Journal:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """``read_only``: for commands that only read; nothing is created, and a full or read-only disk is no
        obstacle (the module's docstring says how). A journal not there yet reads as an empty one."""
        self.path = path
        if read_only:
            self._open_reader()
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # (a path through a file, a folder golive may not write)
            raise ConfigError(f"cannot make the state dir {path.parent}: {exc.strerror or exc}",
                              hint="fix [project].state_dir, or that folder's permissions") from None
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.OperationalError as exc:  # (a full disk, a read-only folder: the journal is not at fault)
            raise JournalWriteError(f"cannot open the journal {path}: {exc}",
                                    hint=write_hint(path.parent, started=False)) from exc
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from exc
        try:
            if path.stat().st_mode & 0o777 != 0o600:
                os.chmod(path, 0o600)
        except OSError as exc:  # (a read-only file system, which SQLite's open may not have noticed)
            self.db.close()
            raise JournalWriteError(f"cannot open the journal {path}: {exc.strerror or exc}",
                                    hint=write_hint(path.parent, started=False)) from None

    def _unreadable(self, exc: Exception) -> JournalError:
        return JournalError(f"journal {self.path} is unreadable: {exc}",
                            hint="move it aside (history is lost) or restore it from a backup")

    def _open_reader(self) -> None:
        try:
            if not self.path.is_file():
                self.db = self._empty()
                return
            try:
                self.db = self._connect("mode=ro")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc):  # (a writer's lock outlasting the timeout: no reason to read around it)
                    raise
                wal = self.path.with_name(self.path.name + "-wal")
                self.db = self._copied() if wal.is_file() and wal.stat().st_size else self._connect("immutable=1")
            self._migrate(write=False)
        except (sqlite3.OperationalError, OSError) as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}",
                               hint=f"check {self.path.parent} (`ls -l`, `df -h`) and its permissions") from exc
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from exc

    def _connect(self, mode: str) -> sqlite3.Connection:
        db = sqlite3.connect(f"{Path(os.path.abspath(self.path)).as_uri()}?{mode}", uri=True, isolation_level=None,
                             timeout=30)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # (opening is lazy: the -shm is mapped here)
        except BaseException:
            db.close()
            raise
        return db

    def _copied(self) -> sqlite3.Connection:
        """The journal and its WAL copied elsewhere and read there into memory (SQLite applies the WAL to the copy)."""
        memory = sqlite3.connect(":memory:", isolation_level=None)
        with tempfile.TemporaryDirectory(prefix="golive-journal-") as folder:
            copy = Path(folder) / self.path.name
            for suffix in ("", "-wal"):
                shutil.copyfile(f"{self.path}{suffix}", f"{copy}{suffix}")
            with closing(sqlite3.connect(copy)) as db:
                db.backup(memory)
        return memory

    @staticmethod
    def _empty() -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.executescript(_SCHEMA)
        return db

    def _migrate(self, write: bool = True) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has schema v{version}, newer than this golive understands (v{SCHEMA_VERSION})",
                hint="upgrade golive (pip install -U golive) to read it",
            )
        if version == 0 and not write:  # (an empty file: no run yet)
            self.db.close()
            self.db = self._empty()
        elif version == 0:
            with self._tx():
                if self.db.execute("PRAGMA user_version").fetchone()[0] == 0:  # another process may have won
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------------
    @_writes
    def start_run(self, command: str, args: dict[str, Any], steps: list[tuple[str, str, dict[str, Any]]],
                  parent: str | None = None) -> str:
        with self._tx():
            run_id = self._free_id()
            self.db.execute(
                "INSERT INTO runs (id, command, args, user, host, pid, parent, status, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (run_id, command, _dump(args), getpass.getuser(), socket.gethostname(), os.getpid(),
                 parent, now_iso()),
            )
            for seq, (kind, title, params) in enumerate(steps, start=1):
                self.db.execute(
                    "INSERT INTO steps (run_id, seq, kind, title, params, status) VALUES (?, ?, ?, ?, ?, 'pending')",
                    (run_id, seq, kind, title, _dump(params)),
                )
        return run_id

    def _free_id(self) -> str:
        """``YYYYmmdd-HHMMSS-xxxx``: the random part, or the next one free that second (``rollback --through`` starts
        several runs a second; a clash was an IntegrityError between two of its undos). Inside the write
        transaction: no other process can take it meanwhile."""
        stamp, first = _id_parts()
        taken = {row[0] for row in self.db.execute("SELECT id FROM runs WHERE id LIKE ?", (f"{stamp}-%",))}
        for n in range(0x10000):
            if (run_id := f"{stamp}-{(first + n) % 0x10000:04x}") not in taken:
                return run_id
        raise JournalError(f"journal {self.path}: every run id of {stamp} is taken", hint="run the command again")

    @_writes
    def claim_run(self, run_id: str) -> None:
        """A resumed run now belongs to this process."""
        self.db.execute("UPDATE runs SET pid = ?, host = ?, status = 'running', finished_at = NULL WHERE id = ?",
                        (os.getpid(), socket.gethostname(), run_id))

    @_writes
    def step_planned(self, run_id: str, seq: int, changes: list[dict[str, Any]]) -> None:
        self.db.execute("UPDATE steps SET changes = ? WHERE run_id = ? AND seq = ?", (_dump(changes), run_id, seq))

    @_writes
    def step_intent(self, run_id: str, seq: int, before: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE steps SET status = 'applying', before = ?, record = NULL, error = NULL, started_at = ?"
            " WHERE run_id = ? AND seq = ?", (_dump(before), now_iso(), run_id, seq))

    @_writes
    def step_applied(self, run_id: str, seq: int, record: dict[str, Any]) -> None:
        self.db.execute("UPDATE steps SET status = 'applied', record = ?, finished_at = ? WHERE run_id = ? AND seq = ?",
                        (_dump(record), now_iso(), run_id, seq))

    @_writes
    def step_status(self, run_id: str, seq: int, status: str, error: str | None = None) -> None:
        """A step's new status. ``finished_at`` and ``error`` are the apply's: an undo starting or failing
        leaves them (its own times and error are the undo.* events of the run that undid it)."""
        if status in ("undoing", "undo_failed"):
            self.db.execute("UPDATE steps SET status = ? WHERE run_id = ? AND seq = ?", (status, run_id, seq))
            return
        column = "undone_at" if status == "undone" else "finished_at"
        self.db.execute(f"UPDATE steps SET status = ?, error = COALESCE(?, error), {column} = ?"
                        " WHERE run_id = ? AND seq = ?", (status, redact(error), now_iso(), run_id, seq))

    @_writes
    def step_error(self, run_id: str, seq: int, error: str) -> None:
        """A step failed inside apply; its status stays undoable until the undo runs."""
        self.db.execute("UPDATE steps SET error = ?, finished_at = ? WHERE run_id = ? AND seq = ?",
                        (redact(error), now_iso(), run_id, seq))

    @_writes
    def finish_run(self, run_id: str, status: str, error: str | None = None, *, rolled_back: bool = False) -> None:
        """``rolled_back``: the run's status after a rollback of it — the time it ended stays (a 02:00 switch
        rolled back at 04:00 took its own seconds, not two hours). A run that never ended (killed) ends at the
        last moment it journaled, and its error says it was killed: the rollback's time made a switch killed
        after 2 s read "took 12.49s, rolled_back", with nothing saying its process had died."""
        if not rolled_back:
            self.db.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                            (status, now_iso(), redact(error), run_id))
            return
        self.db.execute(
            "UPDATE runs SET status = :status,"
            " error = CASE WHEN finished_at IS NULL OR error LIKE :killed || '%' THEN :killed || COALESCE('; ' || :error, '')"
            " ELSE :error END,"
            " finished_at = COALESCE(finished_at, (SELECT max(t) FROM ("
            "  SELECT max(ts) AS t FROM events WHERE run_id = :id"
            "  UNION ALL SELECT max(COALESCE(finished_at, started_at)) FROM steps WHERE run_id = :id"
            "  UNION ALL SELECT started_at FROM runs WHERE id = :id)))"
            " WHERE id = :id", {"status": status, "killed": KILLED, "error": redact(error), "id": run_id})

    @_writes
    def event(self, run_id: str, kind: str, *, seq: int | None = None, phase: str | None = None,
              message: str | None = None, data: dict[str, Any] | None = None, ts: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO events (run_id, seq, ts, kind, phase, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, seq, ts or now_iso(), kind, phase, redact(message), _dump(data or {})),
        )

    # -- reading -------------------------------------------------------------------------------
    def _load(self, table: str, key: str, column: str, text: str | None) -> Any:
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise JournalError(
                f"journal {self.path}: {table} row {key} has a corrupt {column} ({exc.msg})",
                hint=f"inspect it with: sqlite3 {self.path} \"SELECT {column} FROM {table}\"; fix or move the journal aside",
            ) from exc

    def _run(self, row: tuple[Any, ...]) -> RunRow:
        args = self._load("runs", row[0], "args", row[2])
        return RunRow(row[0], row[1], args or {}, *row[3:])

    _RUN_COLS = "id, command, args, user, host, pid, parent, status, started_at, finished_at, error"
    _STEP_COLS = ("run_id, seq, kind, title, params, changes, before, record, status, started_at, finished_at,"
                  " undone_at, error")

    def runs(self, limit: int = 20) -> list[RunRow]:
        rows = self.db.execute(f"SELECT {self._RUN_COLS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?",
                               (limit,)).fetchall()
        return [self._run(r) for r in rows]

    def run(self, run_id: str) -> RunRow | None:
        row = self.db.execute(f"SELECT {self._RUN_COLS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._run(row) if row else None

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self.db.execute(f"SELECT {self._STEP_COLS} FROM steps WHERE run_id = ? ORDER BY seq",
                               (run_id,)).fetchall()
        out = []
        for r in rows:
            key = f"run={r[0]} seq={r[1]}"
            loaded = [self._load("steps", key, col, r[i]) for i, col in
                      ((4, "params"), (5, "changes"), (6, "before"), (7, "record"))]
            for column, value, kind in (("params", loaded[0], dict), ("changes", loaded[1], list),
                                        ("before", loaded[2], dict), ("record", loaded[3], dict)):
                if value is not None and not isinstance(value, kind):  # (valid JSON of the wrong shape: an edit)
                    raise JournalError(
                        f"journal {self.path}: steps row {key} has a corrupt {column} (a JSON {type(value).__name__},"
                        f" not {'an object' if kind is dict else 'a list'})",
                        hint=f"inspect it with: sqlite3 {self.path} \"SELECT {column} FROM steps\"; fix or move the"
                             " journal aside")
            out.append(StepRow(r[0], r[1], r[2], r[3], loaded[0] or {}, loaded[1], loaded[2], loaded[3], *r[8:]))
        return out

    def events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, seq, ts, kind, phase, message, data FROM events WHERE run_id = ? ORDER BY id",
                               (run_id,)).fetchall()
        return [{"seq": r[1], "ts": r[2], "kind": r[3], "phase": r[4], "message": r[5],
                 "data": self._load("events", str(r[0]), "data", r[6])} for r in rows]

    def children(self, run_id: str) -> list[RunRow]:
        """Runs started on behalf of this one (its rollbacks), oldest first."""
        rows = self.db.execute(f"SELECT {self._RUN_COLS} FROM runs WHERE parent = ? ORDER BY started_at, rowid",
                               (run_id,)).fetchall()
        return [self._run(r) for r in rows]

    def needed(self, key: str) -> list[str]:
        """The files steps not yet undone refer to under ``key`` in their records, the newest step's first:
        ``"kept"`` (container specs, ``<state_dir>/containers/<name>``), ``"backup"`` (a sync's dump of the
        target)."""
        pattern = f'%"{key}"%'
        rows = self.db.execute("SELECT before, record FROM steps WHERE status != 'undone'"
                               " AND (before LIKE ? OR record LIKE ?) ORDER BY started_at DESC, rowid DESC",
                               (pattern, pattern)).fetchall()
        found = re.compile(f'"{re.escape(key)}":\\s*"((?:[^"\\\\]|\\\\.)*)"')
        return list(dict.fromkeys(json.loads(f'"{m}"') for row in rows for text in row if text for m in found.findall(text)))

    def newest_step(self, kind_prefix: str, statuses: tuple[str, ...]) -> tuple[RunRow, StepRow] | None:
        """The first step of the newest run that has one of ``kind_prefix`` in one of ``statuses``."""
        marks = ",".join("?" * len(statuses))
        row = self.db.execute(
            f"SELECT s.run_id, s.seq FROM steps s JOIN runs r ON r.id = s.run_id WHERE s.kind LIKE ?"
            f" AND s.status IN ({marks}) ORDER BY r.started_at DESC, r.rowid DESC, s.seq LIMIT 1",
            (f"{kind_prefix}%", *statuses)).fetchone()
        run = self.run(row[0]) if row else None
        if run is None:
            return None
        return run, next(s for s in self.steps(run.id) if s.seq == row[1])

    def latest_undoable_run(self) -> RunRow | None:
        """The most recent run that still has applied (or half-applied) steps."""
        marks = ",".join("?" * len(UNDOABLE))
        row = self.db.execute(
            f"SELECT {', '.join('r.' + c.strip() for c in self._RUN_COLS.split(','))} FROM runs r"
            f" WHERE EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status IN ({marks}))"
            " ORDER BY r.started_at DESC, r.rowid DESC LIMIT 1", UNDOABLE).fetchone()
        return self._run(row) if row else None

    def undos(self, run_id: str) -> list[Undo]:
        """The undos ``run_id`` did, in the order it began them."""
        out: list[Undo] = []
        begun: dict[int, int] = {}
        for event in self.events(run_id):
            data = event["data"] if isinstance(event["data"], dict) else {}
            if event["kind"] == "undo.start":
                begun[event["seq"]] = len(out)
                out.append(Undo(data.get("target_run") or run_id, event["seq"], data.get("title", ""), "unfinished",
                                event["ts"]))
            elif event["kind"] in ("undo.done", "undo.failed") and event["seq"] in begun:
                at = begun.pop(event["seq"])
                out[at] = replace(out[at], result="undone" if event["kind"] == "undo.done" else "failed",
                                  finished_at=event["ts"], error=data.get("error"))
        return out

    def targets(self, run: RunRow) -> list[str]:
        """The runs a `golive rollback` run rolled back (the one it was started for, and any it undid steps of)."""
        named = [run.args["target"]] if isinstance(run.args.get("target"), str) else []
        return list(dict.fromkeys([*named, *(u.run for u in self.undos(run.id))]))

    def unfinished_through(self) -> Unfinished | None:
        """The `rollback --through RUN` that stopped before its end (killed, interrupted, an undo failed), if the
        newest runs are its rollback runs (a run of another command since: its intent no longer holds) and runs
        back to RUN still have applied steps. Its rollback runs journal the command as given (``again``)."""
        runs = self.runs(10_000)  # newest first
        newest = next((r for r in runs if r.command != "rollback" or _through_of(r.args.get("again"))), None)
        through = _through_of(newest.args.get("again")) if newest is not None else None
        if newest is None or through is None or self.run(through) is None:
            return None
        left, steps = [], 0
        for run in runs:
            n = sum(s.status in UNDOABLE for s in self.steps(run.id))
            if n:
                left.append(run)
                steps += n
            if run.id == through:
                return Unfinished(newest, through, str(newest.args["again"]), left, steps) if left else None
        return None
