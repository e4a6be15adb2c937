"""One mutating run at a time per state dir: the second exits 3 naming the holder."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.core.test_crash import CRASHRUN, seed, start_paused


def test_second_run_exits_3_naming_the_holder(project: Path, golive_proc) -> None:
    seed(project)
    first = start_paused(project, "2:mid:pause")
    try:
        second = subprocess.run([sys.executable, str(CRASHRUN), str(project)], capture_output=True, text=True,
                                timeout=60, env={**os.environ, "NO_COLOR": "1"})
        assert second.returncode == 3
        holder = f"{getpass.getuser()}@{socket.gethostname()} pid {first.pid}"
        assert second.stderr.startswith(f"error: another run holds the lock: {holder} running `golive ")
        assert second.stderr.rstrip().endswith("— wait for it to finish; `golive lock status` shows it")
        rollback = golive_proc("rollback", "--yes", cwd=project)
        assert rollback.returncode == 3 and f"pid {first.pid}" in rollback.stderr
        release = golive_proc("lock", "release", cwd=project)
        assert release.returncode == 3
        assert "stop that run (Ctrl-C) instead of releasing its lock" in release.stderr
        assert golive_proc("lock", "status", cwd=project).stdout.startswith(f"lock: held — {holder}")
    finally:
        first.kill()
        first.wait()
    assert golive_proc("lock", "status", cwd=project).stdout.startswith("lock: stale")
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0


def test_foreign_host_lock_needs_force(project: Path, golive_proc) -> None:
    (project / ".golive").mkdir()
    (project / ".golive" / "lock").write_text(
        '{"user": "ops", "host": "other-box", "pid": 1, "command": "golive cutover", "since": "x"}')
    status = golive_proc("lock", "status", cwd=project)
    assert status.stdout.startswith("lock: foreign — ops@other-box pid 1")
    rollback = golive_proc("rollback", "--yes", cwd=project)
    assert rollback.returncode == 3
    assert "on another host — if that run is gone, clear it with `golive lock release --force`" in rollback.stderr
    assert golive_proc("lock", "release", cwd=project).returncode == 3
    assert golive_proc("lock", "release", "--force", cwd=project).returncode == 0
    assert golive_proc("lock", "status", cwd=project).stdout == "lock: free\n"


def test_a_run_starting_while_status_probes_the_lock_is_not_refused(tmp_path: Path) -> None:
    import fcntl
    import threading

    from golive.core.lock import Lock

    (tmp_path / "lock").touch()  # (the lock file exists, with no record: as after any run)
    with open(tmp_path / "lock") as probing:  # what `status` does: takes the flock for a moment to test it
        fcntl.flock(probing, fcntl.LOCK_EX | fcntl.LOCK_NB)
        threading.Timer(0.1, lambda: fcntl.flock(probing, fcntl.LOCK_UN)).start()
        run = Lock(tmp_path)
        run.acquire("golive sync")  # refused at once before ("another run holds the lock: unknown holder", exit 3)
    assert Lock(tmp_path).status().state == "held"
    run.release()


def test_an_unreadable_lock_record_is_stale_and_taken_over(project: Path, golive_proc) -> None:
    (project / ".golive").mkdir()
    (project / ".golive" / "lock").write_text('{"user": "ops", "host": "')  # a write cut short (a full disk)
    status = golive_proc("lock", "status", cwd=project)
    assert status.stdout.startswith(f"lock: stale — ?@{socket.gethostname()} pid 0 running `(unreadable lock record)`")
    rollback = golive_proc("rollback", "--yes", cwd=project)  # it was "another host's": exit 3 until --force
    assert rollback.returncode == 0, rollback.stderr
    assert golive_proc("lock", "status", cwd=project).stdout == "lock: free\n"
