"""The commands of method "command": run each in a process group of its own, bounded by a timeout.

A command that outlives its timeout (or the golive that asked) is ended with its whole process group
(``sh -c`` and whatever it started), so nothing is left running behind golive. ``status`` answers in
three ways: exit 0 = frozen, exit 1 = not frozen, anything else (or no answer in time) = unknown,
which is an error naming the command, its exit code and the last line it printed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Callable

from golive.errors import GoliveError

__all__ = ["SLOW", "StatusUnknown", "ask_status", "run", "shown"]

# a command still running after this many seconds is named in a notice, so a hang is never silent
SLOW = 2.0

Notify = Callable[[str], None]


class StatusUnknown(GoliveError):
    """The status command gave no answer golive can read (an exit code other than 0 or 1, a timeout)."""


def shown(command: list[str]) -> str:
    """The command as a shell would take it (copied into a terminal at 2 a.m., it runs the same)."""
    return shlex.join(command)


def _end_group(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(command: list[str], what: str, timeout: float, notify: Notify | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``what`` command (on, off, status); past SLOW seconds ``notify`` is told what golive waits for."""
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    except OSError as exc:
        raise GoliveError(f"freeze {what} command `{shown(command)}` could not run: {exc.strerror or exc}",
                          hint=f"fix [source.freeze].{what}") from None
    try:
        try:
            out, err = proc.communicate(timeout=min(SLOW, timeout))
        except subprocess.TimeoutExpired:
            if notify is not None:
                notify(f"waiting for the freeze {what} command `{shown(command)}` to finish (up to {timeout:g}s)")
            out, err = proc.communicate(timeout=max(0.0, timeout - SLOW))
    except subprocess.TimeoutExpired:
        _end_group(proc)
        key = "status_timeout" if what == "status" else "timeout"
        raise GoliveError(f"freeze {what} command `{shown(command)}` did not finish within {timeout:g}s (it was"
                          " ended, with every process it started)",
                          hint=f"fix the command, or raise [source.freeze].{key}") from None
    except BaseException:  # (Ctrl-C, or the thread of `golive status` giving up: nothing is left behind)
        _end_group(proc)
        raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or "").strip().splitlines() or (done.stdout or "").strip().splitlines()
    return lines[-1].strip()[:200] if lines else "(no output)"


def ask_status(command: list[str], timeout: float, notify: Notify | None = None) -> bool:
    """Frozen (exit 0) or not (exit 1); anything else is StatusUnknown."""
    try:
        done = run(command, "status", timeout, notify)
    except StatusUnknown:
        raise
    except GoliveError as exc:
        raise StatusUnknown(exc.message, hint=exc.hint) from None
    if done.returncode in (0, 1):
        return done.returncode == 0
    raise StatusUnknown(f"freeze status command `{shown(command)}` exited {done.returncode}: {last_line(done)}",
                        hint="it must exit 0 (frozen) or 1 (not frozen); fix it, or what it checks")
