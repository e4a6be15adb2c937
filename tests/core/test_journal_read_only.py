"""A full or read-only state dir does not blind the commands that only read: `history`, `report` and `lock status`
read the journal read-only (SQLite mode=ro; failing that, immutable when the WAL holds nothing, or a copy of
journal and WAL when it does) — on a real 1 MB tmpfs, filled up or remounted read-only. A command that must write
says which it is: a read-only file system is named as such, not "free space"."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from golive.core.journal import Journal
from golive.errors import JournalWriteError
from tests.conftest import require_real

Golive = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def state(project: Path) -> Iterator[Path]:
    """``<project>/state``: a 1 MB tmpfs (root only: CI runs the suite as root), the project's state_dir."""
    folder = project / "state"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    require_real("a tmpfs mount", mounted.returncode == 0, mounted.stderr.strip())
    flag = project / "MAINTENANCE"
    (project / "golive.toml").write_text(f'[project]\nname = "ro"\nstate_dir = "state"\n\n[source]\nurl ='
                                         f' "sqlite:///old.db"\n\n[source.freeze]\nmethod = "file"\nflag_file = "{flag}"\n')
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> None:
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as out:
        while True:
            out.write(b"\0" * 4096)
    assert os.statvfs(folder).f_bavail == 0


def read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def two_runs(project: Path, golive_proc: Golive) -> list[str]:
    """freeze on, freeze off (each a process of its own: the journal closed as an operator's runs leave it)."""
    for what in ("on", "off"):
        assert golive_proc("freeze", what, "--yes", cwd=project).returncode == 0
    assert not (project / "state" / "journal.db-wal").exists()  # (checkpointed and gone: no -wal, no -shm)
    return [r["id"] for r in json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]]


def reads(project: Path, golive_proc: Golive, ids: list[str], crashed: str = "") -> None:
    """Every reading command works and shows what the journal holds."""
    listed = golive_proc("history", cwd=project)
    assert (listed.returncode, listed.stderr) == (0, ""), listed
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ids
    one = golive_proc("history", ids[-1], cwd=project)
    assert (one.returncode, one.stdout.splitlines()[0].split(" (by ")[0]) == (0, f"run {ids[-1]}: freeze on — succeeded")
    report = golive_proc("report", ids[0], "-o", "-", cwd=project)
    assert (report.returncode, report.stdout.splitlines()[0]) == (0, f"# golive run {ids[0]}"), report
    assert ("- status: **crashed" in report.stdout) == bool(crashed)
    lock = golive_proc("lock", "status", cwd=project)
    assert lock.returncode == 0, lock
    if not crashed:
        assert lock.stdout == "lock: free\n"
    else:  # (its holder's record left behind, its flock gone with it)
        assert lock.stdout.startswith("lock: stale — ") and f"running `{crashed}` since" in lock.stdout, lock.stdout


def test_a_full_state_dir_can_still_be_read(project: Path, state: Path, golive_proc: Golive) -> None:
    ids = two_runs(project, golive_proc)
    fill(state)
    reads(project, golive_proc, ids)
    refused = golive_proc("freeze", "on", "--yes", cwd=project)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: cannot write the run lock {state}/lock: No space left on device; nothing"
                                     f" was changed — free space in {state} (0 KiB free now)"), refused.stderr
    (state / "filler").unlink()  # (room again: the reads left nothing in the way of the next run)
    assert golive_proc("freeze", "on", "--yes", cwd=project).returncode == 0


def test_a_read_only_state_dir_can_still_be_read_and_a_run_says_it_is_read_only(
        project: Path, state: Path, golive_proc: Golive) -> None:
    ids = two_runs(project, golive_proc)
    read_only(state)
    reads(project, golive_proc, ids)
    refused = golive_proc("freeze", "on", "--yes", cwd=project)
    assert (refused.returncode, refused.stderr) == (2, (
        f"error: cannot open the run lock {state}/lock: Read-only file system — {state} is on a read-only file"
        f" system: remount it read-write (mount -o remount,rw {state}) or set [project].state_dir to a folder you may"
        " write, then run the command again\n"))
    with pytest.raises(JournalWriteError) as opened:  # (the journal, opened to write, says the same)
        Journal(state / "new.db")
    assert (opened.value.message, opened.value.hint) == (
        f"cannot open the journal {state}/new.db: unable to open database file",
        f"{state} is on a read-only file system: remount it read-write (mount -o remount,rw {state}) or set"
        " [project].state_dir to a folder you may write, then run the command again")


@pytest.mark.parametrize("shm", ["kept", "lost"])
def test_a_crashed_runs_wal_is_read_on_a_read_only_state_dir(project: Path, state: Path, golive_proc: Golive,
                                                            shm: str) -> None:
    """A run killed mid-step leaves its last writes in the WAL only: read with the -shm it left (mode=ro), or, that
    gone, from a copy — never from the main file alone (immutable), which does not hold the killed run at all."""
    ids = two_runs(project, golive_proc)
    killed = golive_proc("freeze", "on", "--yes", cwd=project, env={"GOLIVE_FAULT": "1:after:kill"})
    assert killed.returncode == -9
    assert (state / "journal.db-wal").stat().st_size > 0
    if shm == "lost":
        (state / "journal.db-shm").unlink()
    read_only(state)
    with contextlib.closing(sqlite3.connect(f"file:{state}/journal.db?immutable=1", uri=True)) as main:
        assert main.execute("SELECT count(*) FROM runs").fetchone() == (2,)  # (the killed run: only in the WAL)
    runs = json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]
    assert [(r["command"], r["status"], r["crashed"]) for r in runs] == [
        ("freeze on", "running", True), ("freeze off", "succeeded", False), ("freeze on", "succeeded", False)]
    reads(project, golive_proc, [runs[0]["id"], *ids], crashed="golive freeze on --yes")
    assert sorted(p.name for p in state.iterdir()) == sorted(
        ["journal.db", "journal.db-wal", "lock"] + (["journal.db-shm"] if shm == "kept" else []))
