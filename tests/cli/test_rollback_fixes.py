"""`golive rollback --through` as one rollback: the terminal or the reader of its output going away once it has
started undoing does not leave the older runs applied."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from golive.cli.application import App
from golive.steps.files import WriteFile


def three_runs(project: Path) -> list[str]:
    """A night of three runs, oldest first: `a` and `b` one step each, `c` two (so `2:undo` is only c's)."""
    app = App(project / "golive.toml")
    runs = []
    for name, n in (("a", 1), ("b", 1), ("c", 2)):
        steps = [WriteFile(path=str(project / f"{name}{i}.txt"), content=f"{name}\n") for i in range(1, n + 1)]
        run_id = app.runner().run(name, steps).run_id
        assert run_id is not None
        runs.append(run_id)
    return runs


def written(project: Path) -> list[str]:
    return sorted(p.name for p in project.glob("*.txt"))


def held_env(project: Path) -> dict[str, str]:
    """The first undo (step 2 of run c, the newest) holds until the test removes the marker."""
    return {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "2:undo:hold", "GOLIVE_FAULT_MARKER": str(project / "held")}


def wait_held(project: Path, proc: subprocess.Popen[bytes], master: int | None = None) -> None:
    deadline = time.monotonic() + 30
    while not (project / "held").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the rollback never reached its first undo"
        if master is not None and select.select([master], [], [], 0.05)[0]:
            os.read(master, 4096)  # (the pty is read, so golive never blocks on a full one)
        elif master is None:
            time.sleep(0.02)


def history(golive_proc, project: Path) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]
    return runs


def _in_a_terminal() -> None:  # (the pty is the child's controlling terminal: closing it hangs it up, SIGHUP)
    os.setsid()
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# -- 1. the terminal going away mid --through ------------------------------------------------------------------

def test_the_terminal_hanging_up_during_a_through_rollback_lets_every_run_be_undone(project: Path, golive_proc) -> None:
    """The SSH session dropped during the newest run's undo: only that run was undone, exit 130, and the error said
    "rollback stopped before its run started (the terminal hung up (SIGHUP)); nothing was changed"."""
    runs = three_runs(project)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--through", runs[0], "--yes"], cwd=project,
                            env=held_env(project), stdin=slave, stdout=slave, stderr=slave, preexec_fn=_in_a_terminal)
    os.close(slave)
    wait_held(project, proc, master)
    os.close(master)  # the SSH session drops mid-rollback (SIGHUP, then EIO on every write)
    time.sleep(0.3)
    (project / "held").unlink()
    assert proc.wait(timeout=60) == 0
    assert written(project) == []
    shown = history(golive_proc, project)
    assert [(r["command"], r["status"]) for r in shown] == [("rollback", "succeeded")] * 3 + [
        ("c", "rolled_back"), ("b", "rolled_back"), ("a", "rolled_back")]


def test_the_reader_of_the_json_dying_during_a_through_rollback_lets_every_run_be_undone(
        project: Path, golive_proc) -> None:
    """`golive rollback --through RUN --yes --json | head -1`: head gone after the first line, the rollback stopped
    after the newest run (exit 130, "nothing was changed")."""
    runs = three_runs(project)
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--through", runs[0], "--yes", "--json"],
                            cwd=project, env=held_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_held(project, proc)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone
    (project / "held").unlink()
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (0, "")
    assert written(project) == []
    assert all(r["status"] in ("succeeded", "rolled_back") for r in history(golive_proc, project))
