"""The commands of method "command": run each in a process group of its own, bounded by a timeout.

A command that outlives its timeout (or the golive that asked) is ended with its whole process group
(``sh -c`` and whatever it started), so nothing is left running behind golive. A golive killed outright
(SIGKILL, the machine's OOM killer) cannot end it: an on or off command's group is written down while it runs
(``<state_dir>/freeze-command.json``), and the next on or off command — a rollback's — ends what is left of it
first, so an ``on`` still running cannot freeze the old application again after the rollback's ``off``.
``status`` answers in
three ways: exit 0 = frozen, exit 1 = not frozen, anything else (or no answer in time) = unknown,
which is an error naming the command, its exit code and the last line it printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from golive.errors import GoliveError

__all__ = ["SLOW", "StatusUnknown", "ask_status", "end_leftover", "left_running", "run", "shown"]

# a command still running after this many seconds is named in a notice, so a hang is never silent
SLOW = 2.0

Notify = Callable[[str], None]

# of what a command prints, golive keeps the end: its last lines are what messages show
KEPT = 64 * 1024
# ESC sequences: OSC (… BEL or ST), CSI (colours, cursor), and two-character ones; then the other control characters
_ESCAPES = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x1b\x9b]\[[0-?]*[ -/]*[@-~]|\x1b[ -/]*[0-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class StatusUnknown(GoliveError):
    """The status command gave no answer golive can read (an exit code other than 0 or 1, a timeout)."""


def shown(command: list[str]) -> str:
    """The command as a shell would take it (copied into a terminal at 2 a.m., it runs the same)."""
    return shlex.join(command)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """End the command and every process of its group: SIGTERM, then SIGKILL until no member is left (one that
    ignores SIGTERM must not finish the command's work after golive said it was ended); the leader collected."""
    _end_members(proc.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)


def _end_members(pgid: int) -> None:
    """SIGTERM to the process group, and after up to 2 s SIGKILL, again until no member is left (at most 5 s)."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        deadline, first = time.monotonic() + wait, True
        while True:
            if first or sig == signal.SIGKILL:  # (SIGTERM once; SIGKILL also to what a member started meanwhile)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, sig)
            first = False
            if not _members(pgid):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)


def _stat(path: Path) -> list[str] | None:
    """A process's /proc/PID/stat fields after its name (state, ppid, pgrp, …), or None: gone."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _started(pid: int) -> str | None:
    """When the process started (clock ticks since boot, /proc/PID/stat's 22nd field), or None: gone."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return fields[19] if fields and len(fields) > 19 else None


def left_running(record: Path) -> tuple[int, str] | None:
    """The process group and kind (on, off) of the command a golive killed outright left running (``record``:
    as :func:`run` wrote it), or None. It counts only while the command itself runs: its process (the group's
    leader) alive, the one that started then, and not a zombie. Once it has exited the command is done, and a
    helper it left running is its own (neither waited for nor ended)."""
    try:
        left = json.loads(record.read_text())
        pgid, started, what = int(left["pgid"]), str(left["started"]), str(left["what"])
    except (OSError, ValueError, KeyError, TypeError):  # (none, or torn by the kill: nothing to go by)
        return None
    # (another start time: the number went to a new process)
    if _started(pgid) == started and _state(pgid) not in (None, "Z"):
        return pgid, what
    return None


def end_leftover(record: Path, notify: Notify | None = None) -> None:
    """End what is left of the on or off command a golive killed outright was running (:func:`left_running`)."""
    left = left_running(record)
    if left is not None:
        pgid, what = left
        if notify is not None:
            notify(f"ending the freeze {what} command a stopped golive left running (process group {pgid}), so it"
                   " cannot finish after this one")
        _end_members(pgid)
    record.unlink(missing_ok=True)


def _state(pid: int) -> str | None:
    """The process's state (R, S, Z: a zombie, …; /proc/PID/stat's 3rd field), or None: gone."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return fields[0] if fields else None


def _members(pgid: int) -> bool:
    """Whether any process of the group is still running (a zombie, ended and not yet collected, is not)."""
    group = str(pgid)
    return any(fields[2] == group and fields[0] != "Z" for fields in map(_stat, Path("/proc").glob("[0-9]*/stat"))
               if fields and len(fields) > 2)


def run(command: list[str], what: str, timeout: float, notify: Notify | None = None,
        record: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``what`` command (on, off, status); past SLOW seconds ``notify`` is told what golive waits for.
    ``record``: where the command's process group is written down while it runs (on and off; see the module).

    The command is done when its process exits, with what it printed by then: its output goes to files, not
    pipes, whose end a background child it leaves running (a helper started with ``&``) would hold open. Such a
    child is the command's own business once it has exited: not ended, and not in the record for the next
    command to end."""
    if record is not None:
        end_leftover(record, notify)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        except OSError as exc:
            raise GoliveError(f"freeze {what} command `{shown(command)}` could not run: {exc.strerror or exc}",
                              hint=f"fix [source.freeze].{what}") from None
        try:
            if record is not None:
                _write_record(record, proc.pid, what)
            returncode = _wait(proc, command, what, timeout, notify)
        finally:
            if record is not None and proc.returncode is not None:  # (it exited, or was ended with its group)
                record.unlink(missing_ok=True)
        return subprocess.CompletedProcess(command, returncode, _read(out), _read(err))


def _read(output: IO[bytes]) -> str:
    """The end of what a command printed (its last KEPT bytes: a command printing megabytes must not fill golive's
    memory), as text whatever its encoding (a "Wartungsmodus f\\xfcr …" in Latin-1) and without control characters
    (colours, a terminal title): the exit code is the answer; the words only go into a message."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - KEPT))
    kept = output.read(KEPT)
    if size > KEPT:  # (not from the middle of a character)
        kept = kept.lstrip(bytes(range(0x80, 0xC0)))
    return _printable(kept.decode("utf-8", errors="replace"))


def _printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (a carriage return ends a line)."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def _write_record(record: Path, pid: int, what: str) -> None:
    from golive.private import open_private

    with contextlib.suppress(OSError):  # (not being able to write it down must not stop the freeze)
        with open_private(record.with_name(record.name + ".tmp"), "w") as out:
            json.dump({"pgid": pid, "started": _started(pid), "what": what}, out)
        os.replace(record.with_name(record.name + ".tmp"), record)


def _wait(proc: subprocess.Popen[bytes], command: list[str], what: str, timeout: float,
          notify: Notify | None) -> int:
    try:
        try:
            return proc.wait(timeout=min(SLOW, timeout))
        except subprocess.TimeoutExpired:
            if notify is not None:
                notify(f"waiting for the freeze {what} command `{shown(command)}` to finish (up to {timeout:g}s)")
            return proc.wait(timeout=max(0.0, timeout - SLOW))
    except subprocess.TimeoutExpired:
        _end_group(proc)
        key = "status_timeout" if what == "status" else "timeout"
        raise GoliveError(f"freeze {what} command `{shown(command)}` did not finish within {timeout:g}s (it was"
                          " ended, with every process it started)",
                          hint=f"fix the command, or raise [source.freeze].{key}") from None
    except BaseException:  # (Ctrl-C, or the thread of `golive status` giving up: nothing is left behind)
        _end_group(proc)
        raise


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
