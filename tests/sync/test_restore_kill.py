"""A golive killed outright (kill -9) during `rollback --restore-data` takes its restore with it: the psql
running the restore's one transaction does not go on alone (to commit later, behind golive's back), its
session on the server gives up, what the next command says about the target is true, and the restore's
script (a full SQL copy of the target: users' data) is not left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.sync.test_sync import Dir


def _processes_reading(folder: Path) -> list[int]:
    """The processes whose command line names a file in ``folder`` (the restore's psql, pg_restore)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(folder).encode() in a for a in args) and int(cmdline.parent.name) != os.getpid():
            found.append(int(cmdline.parent.name))
    return found


def _until(what: str, test: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not test():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.05)


def _restore_sessions(url: str, waiting: bool = False) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'golive-restore-%%'"
                                + (" AND wait_event_type = 'Lock'" if waiting else "")).fetchone()[0])


def test_a_restore_dies_with_the_golive_killed_during_it(dirfinal: Dir, cli, tmp_path: Path) -> None:
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # a user's write since the sync
        app.execute("INSERT INTO directory_family (id, name) VALUES (800, 'x')")
    backups = dirfinal.project / ".golive" / "backups"
    marker = tmp_path / "held"
    rollback = subprocess.Popen(  # held at the restore: writes held off, what it replaces kept
        [sys.executable, "-m", "golive", "rollback", "--restore-data", "--yes"], cwd=dirfinal.project,
        env={**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "sync.run:restore:hold", "GOLIVE_FAULT_MARKER": str(marker)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _until("the rollback reaches the restore", marker.exists)
        holder = psycopg.connect(dirfinal.target_url, application_name="django-web")  # the new app, mid-transaction
        holder.execute("SELECT count(*) FROM auth_user")
        marker.unlink()
        _until("the restore waits for the lock the app holds",
               lambda: _restore_sessions(dirfinal.target_url, waiting=True) or rollback.poll() is not None)
        assert rollback.poll() is None, rollback.communicate()
        assert _processes_reading(backups)  # (the restore's psql, running its script)
        rollback.kill()  # kill -9
        rollback.communicate(timeout=10)
        _until("no restore process outlives the golive that started it", lambda: not _processes_reading(backups), 5)
        _until("its session on the target gives up", lambda: not _restore_sessions(dirfinal.target_url), 10)
        holder.rollback()  # (the lock it held: a restore left running would now go ahead and commit)
        holder.close()
    finally:
        if rollback.poll() is None:
            rollback.kill()
            rollback.communicate()
        for left in _processes_reading(backups):  # (none, unless this test fails)
            os.kill(left, signal.SIGKILL)
    time.sleep(1)
    assert dirfinal.count("directory_family WHERE id = 800") == 1  # nothing restored behind anyone's back

    plan = cli("rollback", "--dry-run")
    assert "no row written since the sync" not in plan.stdout and "row(s) written since the sync" in plan.stdout
    after = cli("rollback", "--yes")
    assert after.exit_code == 0, after.stderr
    assert "writes are allowed again (its data was not restored)" in after.stdout
    assert dirfinal.count("directory_family WHERE id = 800") == 1  # (which is true)
    assert sorted(p.name for p in backups.iterdir() if not p.name.startswith("target-")) == []  # (no script left)


def test_a_client_golive_starts_does_not_outlive_it(tmp_path: Path) -> None:
    """pg_dump and pg_restore too: a killed golive's pg_dump would go on holding its locks and writing a dump."""
    started = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import os
        from golive.sync import backup
        backup._run(["sh", "-c", "echo $$ > {started}; exec sleep 60"], dict(os.environ), "a client")
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        _until("the client starts", lambda: started.exists() and started.read_text())
        child = int(started.read_text())
        parent.kill()
        parent.wait()
        _until("the client ends with the golive that started it", lambda: not _alive(child), 5)
    finally:
        if parent.poll() is None:
            parent.kill()
        if started.exists() and started.read_text() and _alive(int(started.read_text())):
            os.kill(int(started.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_restore_that_committed_just_before_golive_was_killed_is_said_so(dirfinal: Dir, cli) -> None:
    """Killed between the restore's commit and allowing writes again: the next plain rollback allows them, and
    says the data was restored — not that it was not."""
    from golive.sync.backup import FROZEN_MARK, restore

    assert cli("sync", "--yes").exit_code == 0
    backup = next((dirfinal.project / ".golive" / "backups").glob("target-*.dump"))
    restore(dirfinal.target_url, backup)  # (what the killed rollback had committed, writes still held off)
    name = dirfinal.target_url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(dirfinal.target_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET {FROZEN_MARK} = on')
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    plan = cli("rollback", "--dry-run")
    assert (f"target database: the backup {backup.name}'s data, read-only (an interrupted data rollback had restored"
            f" it) -> the backup {backup.name}'s data, left as it is; writes allowed again") in plan.stdout
    after = cli("rollback", "--yes")
    assert after.exit_code == 0, after.stderr
    assert "its data was not restored" not in after.stdout and "written to the new database since" not in after.stdout
    assert ("an interrupted data rollback had left the target read-only: writes are allowed again (its restore had"
            f" committed: the target holds the data of the backup {backup.name}; what users wrote before it was kept"
            " first, in the newest folder of ") in after.stdout
    assert dirfinal.count("auth_user") == 0


def test_a_golive_killed_while_keeping_what_a_restore_replaces_leaves_no_folder_that_passes_for_kept(
        dirfinal: Dir, cli) -> None:
    """A kill -9 while golive wrote <state_dir>/reconcile/<stamp>/ (what the restore would replace) left a folder
    of the rows written since, with no summary: one an operator would read as what was kept, though nothing was
    restored. It is written as <stamp>.partial now, named once complete, and the next rollback removes it."""
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # a user's write since the sync
        app.execute("INSERT INTO directory_family (id, name) VALUES (801, 'y')")
    reconcile = dirfinal.project / ".golive" / "reconcile"
    killed = subprocess.run([sys.executable, "-m", "golive", "rollback", "--restore-data", "--yes"],
                            cwd=dirfinal.project, env={**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "sync.run:keep:kill"},
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [left] = reconcile.iterdir()  # (the rows written, no summary yet)
    assert left.name.endswith(".partial") and (left / "public.directory_family.ndjson").exists()
    assert not (left / "summary.json").exists()
    assert dirfinal.count("directory_family WHERE id = 801") == 1  # (nothing restored)
    done = cli("rollback", "--restore-data", "--yes")
    assert done.exit_code == 0, done.stderr
    [folder] = reconcile.iterdir()  # (the killed one's half folder gone)
    assert not folder.name.endswith(".partial") and (folder / "summary.json").exists()
    assert '{"id":801,"name":"y"}' in (folder / "public.directory_family.ndjson").read_text()
    assert "kept before the restore: " in done.stdout and str(folder) in done.stdout.replace("\n", "")
    assert dirfinal.count("directory_family WHERE id = 801") == 0  # (restored: the row is in the kept folder)
