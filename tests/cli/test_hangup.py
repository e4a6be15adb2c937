"""The terminal or the pipes gone: a closed stdin or stdout, a reader that died, a terminal hung up at
the prompt. One line and the documented exit code, never a traceback or a hang."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import applied_run
from tests.cli.test_tty import read_pty


def golive(args: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "golive", *args], cwd=cwd, env=env, text=True, timeout=60,
                          **kwargs)  # type: ignore[call-overload, no-any-return]


def test_a_prompt_with_stdin_closed_is_a_usage_error(project: Path) -> None:
    run_id = applied_run(project)
    result = golive(["rollback"], project, capture_output=True, preexec_fn=lambda: os.close(0))
    assert result.returncode == 2
    assert result.stderr == (f"error: rollback of run {run_id} (test) needs confirmation and there is no terminal"
                             " to ask — review it with --dry-run, then pass --yes\n")
    assert (project / "f1.txt").exists()


def test_stdout_closed_from_the_start_is_no_error(project: Path) -> None:
    applied_run(project)
    result = golive(["history"], project, stdout=None, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert (result.returncode, result.stderr) == (0, "")


def _dead_pipe() -> int:
    """The write end of a pipe whose reader is already gone (`… | head -c1` once head has exited)."""
    read, write = os.pipe()
    os.close(read)
    return write


def test_a_read_only_command_into_a_dead_pipe_ends_quietly(project: Path) -> None:
    applied_run(project)
    dead = _dead_pipe()
    try:
        result = golive(["history"], project, stdout=dead, stderr=subprocess.PIPE)
    finally:
        os.close(dead)
    assert (result.returncode, result.stderr) == (1, "")  # no traceback, no "Exception ignored … BrokenPipeError"


def test_an_error_nobody_can_read_keeps_its_exit_code(project: Path) -> None:
    dead = _dead_pipe()
    try:
        result = golive(["dns", "show"], project, stdout=dead, stderr=dead)  # (no [dns] section: exit 2)
    finally:
        os.close(dead)
    assert result.returncode == 2


def _in_a_terminal() -> None:  # (the pty is the child's controlling terminal: ^C is SIGINT, a hang-up SIGHUP)
    os.setsid()
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def at_the_prompt(args: list[str], cwd: Path, then: bytes | None) -> tuple[int, str]:
    """Run golive in a terminal; at "Proceed?" type ``then`` (``None``: the terminal hangs up)."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm", "COLUMNS": "400"}
    proc = subprocess.Popen([sys.executable, "-m", "golive", *args], cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, env=env, preexec_fn=_in_a_terminal)
    os.close(slave)
    screen, deadline = b"", time.monotonic() + 30
    while b"Proceed?" not in screen and time.monotonic() < deadline and proc.poll() is None:
        if select.select([master], [], [], 0.05)[0]:
            screen += os.read(master, 4096)
    time.sleep(0.2)  # (the prompt is waiting for its answer)
    if then is None:
        os.close(master)
        return proc.wait(timeout=30), screen.decode(errors="replace")
    os.write(master, then)
    screen += read_pty(master, proc)  # (a golive that never ends fails the test, not the suite)
    os.close(master)
    return proc.wait(timeout=30), screen.decode(errors="replace")


@pytest.mark.parametrize(("typed", "code", "said"), [
    (b"\x04", 1, "not confirmed; nothing was changed"),  # Ctrl-D: no answer is a no
    (b"\x03", 130, "interrupted at the prompt; nothing was changed"),  # Ctrl-C: interrupted, as everywhere
])
def test_the_prompt_ends_on_ctrl_d_and_ctrl_c(project: Path, typed: bytes, code: int, said: str) -> None:
    run_id = applied_run(project)
    result, screen = at_the_prompt(["rollback"], project, typed)
    assert result == code, screen
    assert f"error: rollback of run {run_id} (test): {said}" in screen
    assert "Aborted" not in screen
    assert (project / "f1.txt").exists()


def test_the_terminal_hanging_up_at_the_prompt_releases_the_lock(project: Path, golive_proc) -> None:
    applied_run(project)
    result, _ = at_the_prompt(["rollback"], project, None)
    assert result == 130  # not killed by SIGHUP: the lock is released, not left for the next run to find stale
    assert golive_proc("lock", "status", cwd=project).stdout == "lock: free\n"
    assert (project / "f1.txt").exists()


@pytest.mark.parametrize("signum", [15, 1])  # SIGTERM (a supervisor), SIGHUP (the terminal gone)
def test_a_signal_while_the_plan_waits_is_an_interrupt_that_releases_the_lock(project: Path, signum: int) -> None:
    """During the plan (a freeze status command, a slow API) SIGTERM and SIGHUP killed golive silently (exit 143,
    129) and left its lock behind, so the next command warned of a run that might need rolling back."""
    (project / "status.sh").write_text("#!/bin/sh\nsleep 20\n")
    (project / "status.sh").chmod(0o755)
    config = project / "golive.toml"
    config.write_text(config.read_text() + f'\n[source]\nurl = "sqlite:///old.db"\n\n[source.freeze]\nmethod = "command"\n'
                      f'on = ["true"]\noff = ["true"]\nstatus = ["{project}/status.sh"]\n')
    env = {**os.environ, "NO_COLOR": "1"}
    started = subprocess.Popen([sys.executable, "-m", "golive", "freeze", "on", "--yes"], cwd=project, env=env,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 20
    while not list((project / ".golive").glob("*lock*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # (in the plan: the status command runs)
    started.send_signal(signum)
    out, err = started.communicate(timeout=30)
    assert started.returncode == 130, (out, err)
    assert err.startswith("error: interrupted")
    held = golive(["lock", "status"], project, capture_output=True)
    assert held.stdout == "lock: free\n", held.stdout
    assert golive(["history"], project, capture_output=True).stdout.startswith("no runs")
