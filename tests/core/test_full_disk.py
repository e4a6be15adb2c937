"""A state directory that cannot be written (the disk full at 2 a.m.): one line saying where, how much room is
left and what to do — never a traceback — and a journal that still tells what the run did."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest

from golive.core.journal import Journal


def write_freeze_config(project: Path) -> Path:
    flag = project / "MAINTENANCE"
    config = project / "golive.toml"
    config.write_text(f'[project]\nname = "full"\n\n[source]\nurl = "sqlite:///old.db"\n\n'
                      f'[source.freeze]\nmethod = "file"\nflag_file = "{flag}"\n')
    config.chmod(0o600)
    return flag


def test_a_journal_that_fills_up_mid_run_is_one_line_and_the_run_can_be_seen_and_undone(
        project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    flag = write_freeze_config(project)
    opened = Journal.__init__

    class FillsUp:  # the connection, until the disk is full: from the 4th write on, SQLite's own error
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db, self.writes = db, 0

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.lstrip().startswith(("INSERT", "UPDATE")):
                self.writes += 1
                if self.writes >= 4:
                    raise sqlite3.OperationalError("database or disk is full")
            return self.db.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self.db, name)

    def small(self: Journal, path: Path) -> None:
        opened(self, path)
        self.db = FillsUp(self.db)  # type: ignore[assignment]

    monkeypatch.setattr(Journal, "__init__", small)
    full = cli("freeze", "on", "--yes")
    assert full.exit_code == 1
    state = project / ".golive"
    assert full.stderr.startswith(f"error: cannot write the journal {state}/journal.db: database or disk is full —"
                                  f" free space in {state} (")
    assert full.stderr.endswith(" KiB free now), then `golive status` shows where the run stopped and `golive"
                                " rollback` undoes what it applied\n")
    assert "Traceback" not in full.stdout + full.stderr
    monkeypatch.setattr(Journal, "__init__", opened)  # room again
    assert cli("status").exit_code == 0
    if flag.exists():  # (however far it got, a rollback puts the state before back)
        assert cli("rollback", "--yes").exit_code == 0
    assert not flag.exists()


def test_a_lock_that_cannot_be_written_changes_nothing(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    flag = write_freeze_config(project)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    fsync = os.fsync
    monkeypatch.setattr("golive.core.lock.os.fsync", no_space)
    refused = cli("freeze", "on", "--yes")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: cannot write the run lock {project}/.golive/lock: No space left on"
                                     f" device; nothing was changed — free space in {project}/.golive (")
    assert refused.stderr.endswith(" KiB free now), then run the command again\n")
    assert not flag.exists()
    monkeypatch.setattr("golive.core.lock.os.fsync", fsync)
    assert cli("freeze", "on", "--yes").exit_code == 0  # the lock was let go
