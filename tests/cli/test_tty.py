"""At a real terminal (a pty): the plan is shown, the prompt asks, and the answer decides."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.test_cli import applied_run


def read_pty(master: int, proc: subprocess.Popen[bytes], seconds: float = 30, answer: bytes | None = None) -> bytes:
    """What golive writes to the terminal until it ends (at most ``seconds``, never a blocking read); ``answer``
    is typed at its "Proceed?"."""
    out, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if answer is not None and b"Proceed?" in out:
            os.write(master, answer)
            answer = None
        if proc.poll() is not None and not ready:
            break
    return out


def run_in_pty(args: list[str], cwd: Path, answer: str, columns: int = 120) -> tuple[int, str]:
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm", "COLUMNS": str(columns)}
    proc = subprocess.Popen([sys.executable, "-m", "golive", *args], cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = read_pty(master, proc, answer=answer.encode() + b"\n")
    os.close(master)
    return proc.wait(timeout=10), out.decode(errors="replace")


def test_prompt_yes_rolls_back(project: Path) -> None:
    run_id = applied_run(project)
    code, screen = run_in_pty(["rollback"], project, "y")
    assert code == 0, screen
    assert f"Plan: rollback of run {run_id} (test) — 2 step(s), 2 change(s)" in screen
    assert "Proceed? [y/N]" in screen
    assert f"rolled back 2 step(s) of run {run_id}" in screen
    assert not (project / "f1.txt").exists()


def test_prompt_no_changes_nothing(project: Path) -> None:
    applied_run(project)
    code, screen = run_in_pty(["rollback"], project, "n")
    assert code == 1
    assert "not confirmed; nothing was changed" in screen
    assert (project / "f1.txt").exists() and (project / "f2.txt").exists()


def test_a_narrow_terminal_shows_every_value_whole(project: Path) -> None:
    run_id = applied_run(project)
    code, out = run_in_pty(["history"], project, "", columns=40)
    assert code == 0
    import re

    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out).replace("\r", "")
    assert f"RUN: {run_id}" in plain.splitlines(), plain  # not "2026…": the id `rollback --run` needs
    assert "STATUS: succeeded" in plain.splitlines()
    assert "…" not in plain
