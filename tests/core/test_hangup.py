"""The operator's terminal goes away mid-run: the SSH session drops (SIGHUP, then EIO on every write),
or the reader of a pipe dies (`golive … | tee log`, tee killed: EPIPE). The run ends in a known state
(the step in flight finished, or stopped for `golive rollback`), the journal says so, and the exit is 130.
An undo under way finishes: a rollback is not left half done because the operator's connection went."""

from __future__ import annotations

import errno
import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from golive.core import interrupts
from golive.core.interrupts import GuardedStream
from golive.core.journal import Journal
from golive.core.runner import Runner
from golive.core.step import StepContext
from golive.errors import Interrupted
from golive.steps.files import WriteFile
from tests.core.test_crash import CRASHRUN, _env, files, seed


def _wait_for(marker: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the run never reached its fault point"
        time.sleep(0.02)


def _runs(golive_proc, project: Path) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]
    return runs


def _steps(golive_proc, project: Path, run_id: str) -> list[str]:
    shown = json.loads(golive_proc("history", run_id, "--json", cwd=project).stdout)
    return [step["status"] for step in shown["steps"]]


def _applied(project: Path) -> dict[str, tuple[bytes, int]]:
    """A five-step run applied in full, for a rollback to undo: the files as they were before it."""
    seed(project)
    initial = files(project)
    assert subprocess.run([sys.executable, str(CRASHRUN), str(project)], env=_env(project, ""),
                          capture_output=True, timeout=60).returncode == 0
    return initial


def _in_a_terminal() -> None:  # (the child's own session, the pty its controlling terminal: as a login shell's job)
    os.setsid()
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_the_terminal_hanging_up_inside_a_step_stops_the_run_after_the_step_in_flight(project: Path, golive_proc
                                                                                      ) -> None:
    """As README promises: the step in flight finishes, the run stops before the next one. SIGHUP interrupted the
    step where it was — a swap with its upstream file written and Apache not reloaded."""
    seed(project)
    initial = files(project)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(CRASHRUN), str(project)], env=_env(project, "2:mid:hold"),
                            stdin=slave, stdout=slave, stderr=slave, preexec_fn=_in_a_terminal)
    os.close(slave)
    deadline = time.monotonic() + 30
    while not (project / "paused").exists():  # (the pty is read, so the run never blocks on a full one)
        assert time.monotonic() < deadline and proc.poll() is None
        if select.select([master], [], [], 0.05)[0]:
            os.read(master, 4096)
    os.close(master)  # the SSH session drops: the kernel hangs the terminal up (SIGHUP, then EIO)
    time.sleep(0.3)
    assert proc.poll() is None  # (the step goes on)
    (project / "paused").unlink()  # and finishes
    assert proc.wait(timeout=30) == 130  # not killed by the signal: stopped before the next step
    (run,) = _runs(golive_proc, project)
    assert (run["status"], run["error"]) == ("interrupted", "interrupted before step 3 (the terminal hung up (SIGHUP))")
    assert _steps(golive_proc, project, str(run["id"])) == ["applied", "applied", "pending", "pending", "pending"]
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    assert files(project) == initial


def test_a_run_under_nohup_outlives_the_terminal(project: Path, golive_proc) -> None:
    seed(project)

    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, str(CRASHRUN), str(project)], env=_env(project, "2:mid:hold"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=nohup)
    _wait_for(project / "paused", proc)
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.2)
    (project / "paused").unlink()
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (0, b"")
    assert _runs(golive_proc, project)[0]["status"] == "succeeded"


def test_the_reader_of_the_output_dying_stops_the_run_after_the_step_in_flight(project: Path, golive_proc) -> None:
    seed(project)
    initial = files(project)
    proc = subprocess.Popen([sys.executable, str(CRASHRUN), str(project)], env=_env(project, "2:mid:hold"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(project / "paused", proc)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `… | tee log`, and tee is killed
    (project / "paused").unlink()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 130
    (run,) = _runs(golive_proc, project)
    assert err == (f"error: interrupted before step 3 (remove {project}/c.txt) of run {run['id']} (stdout: Broken pipe);"
                   " the journal is consistent — undo what was applied with `golive rollback` (`golive status` shows"
                   " the run), then run the command again\n")  # one line: no traceback, no "Exception ignored"
    assert (run["status"], run["error"]) == ("interrupted", "interrupted before step 3 (stdout: Broken pipe)")
    assert _steps(golive_proc, project, str(run["id"])) == ["applied", "applied", "pending", "pending", "pending"]
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    assert files(project) == initial


def test_the_reader_dying_during_a_rollback_lets_the_rollback_finish(project: Path, golive_proc) -> None:
    """A rollback half done because the operator's pipe or VPN went is worse than one finished unseen: the
    undo goes on to the end (the journal and `golive status` tell what it did)."""
    initial = _applied(project)
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--yes"], cwd=project,
                            env=_env(project, "4:undo:hold"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(project / "paused", proc)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    (project / "paused").unlink()
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=30), err) == (0, "")  # (no traceback, no "Exception ignored")
    (rollback, run) = _runs(golive_proc, project)
    assert (rollback["status"], run["status"]) == ("succeeded", "rolled_back")
    assert _steps(golive_proc, project, str(run["id"])) == ["undone"] * 5
    assert files(project) == initial


def test_the_terminal_hanging_up_during_a_rollback_lets_it_finish(project: Path, golive_proc) -> None:
    initial = _applied(project)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--yes"], cwd=project,
                            env=_env(project, "4:undo:hold"), stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=_in_a_terminal)
    os.close(slave)
    deadline = time.monotonic() + 30
    while not (project / "paused").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        if select.select([master], [], [], 0.05)[0]:
            os.read(master, 4096)
    os.close(master)  # the SSH session drops mid-rollback (SIGHUP, then EIO on every write)
    time.sleep(0.2)
    (project / "paused").unlink()
    assert proc.wait(timeout=30) == 0
    (rollback, run) = _runs(golive_proc, project)
    assert (rollback["status"], run["status"]) == ("succeeded", "rolled_back")
    assert files(project) == initial


def test_ctrl_c_still_stops_a_rollback_at_once(project: Path, golive_proc) -> None:
    """What the operator asks for by hand is not what the network does to them: Ctrl-C or SIGTERM stops the
    rollback (the next `golive rollback` finishes it)."""
    initial = _applied(project)
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--yes"], cwd=project,
                            env=_env(project, "4:undo:hold"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(project / "paused", proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    (project / "paused").unlink()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and b"interrupted; the journal is consistent" in err
    (rollback, run) = _runs(golive_proc, project)
    assert rollback["status"] == "interrupted"
    assert _steps(golive_proc, project, str(run["id"])) == ["applied", "applied", "applied", "undoing", "undone"]
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    assert files(project) == initial


class _Hangs(io.StringIO):
    """A terminal that hangs up after ``lines`` writes: every write after raises EIO."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.left = lines

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        self.left -= 1
        return super().write(text)


@pytest.mark.parametrize(("lines", "applied"), [(0, 0), (1, 1), (2, 1), (3, 1)])
def test_a_log_line_that_cannot_be_written_never_fails_the_step(tmp_path: Path, lines: int, applied: int) -> None:
    """Every event and log line (step 1 logs from inside ``apply``) goes to a terminal that hangs up after
    ``lines`` of them (0: at the run's first line): the step in flight finishes, the next one does not start."""
    interrupts.forget()
    out = GuardedStream(_Hangs(lines), "stdout", armed=lambda: True)  # type: ignore[arg-type]
    ctx = StepContext(state_dir=tmp_path)
    runner = Runner(Journal(tmp_path / "journal.db"), ctx, view=lambda event: out.write(f"{event}\n"))
    steps = [WriteFile(path=str(tmp_path / f"f{i}.txt"), content=f"{i}\n") for i in (1, 2)]
    try:
        with pytest.raises(Interrupted, match=rf"interrupted before step {applied + 1} \(write .*\(stdout: Input/output"
                                              r" error\); the journal is consistent"):
            runner.run("t", steps)
    finally:
        interrupts.forget()
    (run,) = runner.journal.runs()
    assert run.status == "interrupted"
    assert [s.status for s in runner.journal.steps(run.id)] == ["applied"] * applied + ["pending"] * (2 - applied)
    assert [p.name for p in sorted(tmp_path.glob("f*.txt"))] == [f"f{i}.txt" for i in range(1, applied + 1)]
