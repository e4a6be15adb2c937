"""The one error hierarchy of golive, rendered once by the CLI's ``main()``.

    GoliveError                 exit 1 unless a subclass says otherwise
    ├── UsageError              exit 2  bad flags, missing TTY for a prompt
    ├── ConfigError             exit 2  golive.toml / mapping / secret problems (names key and line)
    ├── JournalError            exit 2  journal unreadable, newer schema, corrupt row
    ├── UnsafePlan              exit 2  a guardrail refused the plan (says how to override)
    ├── CheckFailed             exit 1  a read-only check failed (preflight, verify)
    ├── StepFailed              exit 1  a step failed; the system was left stopped or rolled back
    ├── LockHeld                exit 3  another run holds the lock
    ├── UndoFailed              exit 4  an undo failed: manual action needed
    └── Interrupted             exit 130

Every message is one line that names the thing at fault and says what to do.
"""

from __future__ import annotations

__all__ = [
    "CheckFailed",
    "ConfigError",
    "GoliveError",
    "Interrupted",
    "JournalError",
    "JournalWriteError",
    "LockHeld",
    "StepFailed",
    "UndoFailed",
    "UnsafePlan",
    "UsageError",
    "first_line",
    "state_write_hint",
]


def first_line(exc: BaseException) -> str:
    """An exception as one line for a person (its first line, or its type), secrets redacted."""
    from golive.secrets import REDACTOR  # (secrets imports this module)

    text = str(exc).strip() or type(exc).__name__
    return REDACTOR(text.splitlines()[0])


class GoliveError(Exception):
    """Base class: an expected failure with a one-line message and an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = list(details or [])  # each thing at fault, when the one line names only the first

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, object]:
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint} | \
            ({"details": self.details} if self.details else {})


class UsageError(GoliveError):
    exit_code = 2


class ConfigError(GoliveError):
    exit_code = 2


class JournalError(GoliveError):
    exit_code = 2


class JournalWriteError(JournalError):
    """The state directory could not be written (disk full, I/O error): the run stopped where it was."""

    exit_code = 1


def state_write_hint(folder: object, started: bool = True) -> str:
    """What to do when the state directory cannot be written: where, how much room is left, and what next
    (``started``: a run may have applied steps by then)."""
    import shutil

    try:
        free = f"{shutil.disk_usage(str(folder)).free // 1024} KiB free now"
    except OSError:
        free = "free space unknown"
    then = ("`golive status` shows where the run stopped and `golive rollback` undoes what it applied" if started else
            "run the command again")
    return f"free space in {folder} ({free}), then {then}"


class UnsafePlan(GoliveError):
    exit_code = 2


class CheckFailed(GoliveError):
    exit_code = 1


class StepFailed(GoliveError):
    """A step failed. ``rolled_back`` says whether the applied steps were undone."""

    exit_code = 1

    def __init__(self, step: str, cause: BaseException | str, *, hint: str | None = None,
                 details: list[str] | None = None) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"step {step} failed: {cause}", hint=hint, details=details)


class LockHeld(GoliveError):
    exit_code = 3


class UndoFailed(GoliveError):
    """An undo failed. ``manual`` lists what an operator must now do by hand."""

    exit_code = 4

    def __init__(self, message: str, *, manual: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.manual = manual

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "manual": self.manual}


class Interrupted(GoliveError):
    exit_code = 130
