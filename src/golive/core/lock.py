"""The run lock: one mutating run per state dir.

The lock is an ``flock`` on ``<state_dir>/lock`` held for the life of the process, so the kernel
releases it when the holder dies, however it dies. The file also records the holder (user, host,
pid, command, since); finding a record whose process is gone means the last run crashed: that is
said, and the lock is taken over. A holder on another host cannot be checked from here: it is
refused, and ``golive lock release --force`` clears it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from golive.core.journal import now_iso, write_hint
from golive.errors import ConfigError, JournalWriteError, LockHeld

# how long a run retries a lock that is taken: `status` tests the flock by taking it for a moment, and a run
# starting just then must not be refused as if another run held it
PROBE_GRACE = 0.5

__all__ = ["Holder", "Lock", "LockState"]


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    command: str
    since: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid} running `{self.command}` since {self.since}"

    @classmethod
    def me(cls, command: str) -> Holder:
        return cls(getpass.getuser(), socket.gethostname(), os.getpid(), command, now_iso())


@dataclass(frozen=True)
class LockState:
    state: str  # free | held | stale | foreign
    holder: Holder | None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "holder": asdict(self.holder) if self.holder else None}

    def crashed(self, status: str, host: str, pid: int) -> bool:
        """Whether a run the journal says is still ``status`` "running" (on ``host``, as ``pid``) has died:
        it is not the live holder of the lock (a later run may hold it now)."""
        if status != "running" or (self.state == "foreign" and host != socket.gethostname()):
            return False  # (another host's run cannot be checked from here)
        holds = self.state == "held" and self.holder is not None and (self.holder.host, self.holder.pid) == (host, pid)
        return not holds


class Lock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fh: IO[str] | None = None
        self.took_over: Holder | None = None

    def _read(self, fh: IO[str]) -> Holder | None:
        fh.seek(0)
        text = fh.read().strip()
        if not text:
            return None
        try:
            return Holder(**json.loads(text))
        except (ValueError, TypeError):  # (a write cut short: a full disk). Taken as this host's, so that a
            # free flock makes it stale, never "another host's" that only --force could clear
            return Holder("?", socket.gethostname(), 0, "(unreadable lock record)", "?")

    def _make_dir(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # (a path through a file, a folder golive may not write): as the journal says it
            raise ConfigError(f"cannot make the state dir {self.path.parent}: {exc.strerror or exc}",
                              hint="fix [project].state_dir, or that folder's permissions") from None

    def _open(self, read_only: bool = False) -> IO[str]:
        """``read_only``: to look (``status``), which a read-only file system allows: ``flock`` needs no write access."""
        self._make_dir()
        try:
            fd = os.open(self.path, os.O_RDONLY if read_only else os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            hint = write_hint(self.path.parent, started=False) if exc.errno == errno.EROFS else \
                "fix [project].state_dir, or that folder's permissions"
            raise ConfigError(f"cannot open the run lock {self.path}: {exc.strerror or exc}", hint=hint) from None
        return os.fdopen(fd, "r" if read_only else "r+")

    def acquire(self, command: str) -> None:
        fh = self._open()
        deadline = time.monotonic() + PROBE_GRACE
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:  # (`golive status` may be probing it, for a moment)
                    time.sleep(0.01)
                    continue
                holder = self._read(fh)
                fh.close()
                raise LockHeld(f"another run holds the lock: {holder or 'unknown holder'}",
                               hint="wait for it to finish; `golive lock status` shows it") from None
        previous = self._read(fh)
        if previous and previous.host != socket.gethostname():
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
            raise LockHeld(f"the lock is held by {previous} on another host",
                           hint="if that run is gone, clear it with `golive lock release --force`")
        self.took_over = previous  # same host and we got the flock: that holder died
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(asdict(Holder.me(command))))
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as exc:  # a full disk: nothing has been done yet
            fcntl.flock(fh, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                fh.close()
            raise JournalWriteError(f"cannot write the run lock {self.path}: {exc.strerror or exc}; nothing was"
                                    " changed", hint=write_hint(self.path.parent, started=False)) from None
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.flush()
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def status(self) -> LockState:
        if not self.path.exists():
            self._make_dir()  # (a state dir that cannot exist is no free lock: the run would stop on it)
            return LockState("free", None)
        with self._open(read_only=True) as fh:
            holder = self._read(fh)
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return LockState("held", holder)
            fcntl.flock(fh, fcntl.LOCK_UN)
        if holder is None:
            return LockState("free", None)
        if holder.host != socket.gethostname():
            return LockState("foreign", holder)
        # Nobody holds the flock, yet a record is there: its process died without releasing it.
        return LockState("stale", holder)

    def clear(self, force: bool = False) -> LockState:
        """Clear a stale (or, with force, a foreign) lock record. A live holder is never cleared."""
        state = self.status()
        if state.state == "held":
            raise LockHeld(f"the lock is held by a live run: {state.holder}",
                           hint="stop that run (Ctrl-C) instead of releasing its lock")
        if state.state == "foreign" and not force:
            raise LockHeld(f"the lock is held by {state.holder} on another host",
                           hint="make sure that run is gone, then: golive lock release --force")
        if state.holder is not None:
            with self._open() as fh:
                fh.truncate()
        return state
