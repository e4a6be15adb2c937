"""The operator going away mid-run: Ctrl-C, SIGTERM, a hung-up terminal (SIGHUP), or output that fails.

- Inside a run, SIGINT and SIGTERM raise ``KeyboardInterrupt``: the runner stops, journals the run as
  interrupted and exits 130. SIGHUP (the SSH session or VPN dropped) does the same before a step starts (the
  plan, the prompt); inside a step (``stepping``) it is noted as lost output: the step in flight finishes
  and the run stops before the next one (exit 130) — interrupted mid-step, a swap was left with its upstream
  file written and Apache not reloaded. A SIGHUP ignored when golive started (``nohup``) stays ignored: that
  operator asked for the run to outlive the terminal.
- An undo (``golive rollback``, or a failed run undoing itself) is ``finishing``: a hung-up terminal or lost
  output does not stop it — a rollback left half done at 2 a.m. because the VPN dropped is worse than one
  that finished unseen (the journal and ``golive status`` tell what it did). Ctrl-C and SIGTERM still stop it.
- Journal writes are ``shielded``: those signals land right after the write, never inside it.
- Output goes through :class:`GuardedStream`. Once a write fails (EIO on a hung-up terminal, EPIPE when
  the reader of a pipe died) the stream is pointed at ``/dev/null`` and the loss is noted. A mutating
  command (``armed``) carries on silently to the next step boundary, where the runner stops as if
  interrupted (:func:`lost`), so a print inside a step never leaves it half applied; a read-only command
  re-raises, and ends quietly (`golive history | head`).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["GuardedStream", "finishing", "forget", "interrupts", "lost", "note_lost", "shielded", "stepping"]

_STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_lost: list[str] = []  # why the output (or the terminal) went away; empty while it is there
_guard = threading.Lock()
_undoing: list[bool] = []  # non-empty while an undo runs (``finishing``)
_stepping: list[bool] = []  # non-empty while a step's apply runs (``stepping``)


def lost() -> str | None:
    """Why the operator's output went away (``None`` while it is there)."""
    return _lost[0] if _lost else None


def note_lost(why: str) -> None:
    with _guard:
        if not _lost:
            _lost.append(why)


def forget() -> None:
    """A new command in the same process (tests) starts with its output there."""
    with _guard:
        _lost.clear()


@contextmanager
def shielded() -> Iterator[None]:
    """Hold Ctrl-C/SIGTERM/SIGHUP off while a journal write is in progress; they land right after it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _hung_up(signum: int, frame: object) -> None:
    # The shell forwards its own SIGHUP to the job as well: one is news, the next are not. A step in flight
    # (``stepping``) finishes and the runner stops at the next boundary (``lost``); an undo under way
    # (``finishing``) goes on to its end; anything before a step stops now.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    note_lost("the terminal hung up (SIGHUP)")
    if not _undoing and not _stepping:
        raise KeyboardInterrupt


@contextmanager
def stepping() -> Iterator[None]:
    """A step's apply under way: the terminal going away (SIGHUP, lost output) lets it finish; the runner
    stops before the next one."""
    _stepping.append(True)
    try:
        yield
    finally:
        _stepping.pop()


@contextmanager
def finishing() -> Iterator[None]:
    """An undo under way: the terminal going away (SIGHUP, lost output) lets it finish."""
    _undoing.append(True)
    try:
        yield
    finally:
        _undoing.pop()


@contextmanager
def interrupts() -> Iterator[None]:
    """SIGTERM (a supervisor stopping us) and SIGHUP (the terminal gone) are handled like Ctrl-C while a run
    executes: stop cleanly, journal consistent. Outside it the defaults hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt)}
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # (nohup: keep going without a terminal)
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, _hung_up)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _silence(stream: TextIO) -> None:
    """Point the stream's file descriptor at /dev/null: what is still buffered, and Python's flush at exit,
    go nowhere instead of raising again ("Exception ignored … BrokenPipeError")."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # (not a real file: a test's capture)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class GuardedStream:
    """A text stream whose failure to write means the operator went away, not that the step failed.

    ``armed()`` says whether a mutating command is under way: then a failed write is swallowed (and noted
    for the runner); otherwise it is raised, once, after the stream is silenced."""

    def __init__(self, stream: TextIO | None, name: str, armed: Callable[[], bool]) -> None:
        stream = getattr(stream, "rich_proxied_file", stream)  # (made while a rich Live redirects the stream)
        self._stream = stream
        self._name = name
        self._armed = armed
        self.gone = stream is None  # (started with the descriptor closed: `golive … >&-`)

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                assert self._stream is not None
                return self._stream.write(text)
            except OSError as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                assert self._stream is not None
                self._stream.flush()
            except OSError as exc:
                self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        assert self._stream is not None
        self.gone = True
        _silence(self._stream)
        if not self._armed():  # (as a broken pipe: rich and click end quietly on that, EIO or EPIPE alike)
            raise BrokenPipeError(errno.EPIPE, f"{self._name}: {exc.strerror or exc}") from exc
        note_lost(f"{self._name}: {exc.strerror or type(exc).__name__}")

    def isatty(self) -> bool:
        return not self.gone and self._stream is not None and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:  # fileno, encoding … of the stream it guards, nothing else
        if self._stream is None or name not in ("fileno", "encoding", "errors", "name", "mode", "closed"):
            raise AttributeError(name)
        return getattr(self._stream, name)
