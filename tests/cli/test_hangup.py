"""The pipes gone: a closed stdout, a reader that died. The documented exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_cli import applied_run


def golive(args: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "golive", *args], cwd=cwd, env=env, text=True, timeout=60,
                          **kwargs)  # type: ignore[call-overload, no-any-return]


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
