"""File steps: write or remove one file, with an exact undo (content, mode, presence).

The proof steps of the Step/Journal/Runner mechanism, and what ``golive init``-style actions use.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext

__all__ = ["RemoveFile", "WriteFile", "atomic_write"]


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temp file beside ``path``, fsync, rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.golive-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _describe(data: bytes | None) -> str | None:
    if data is None:
        return None
    return f"{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:12]}"


def _read(path: Path) -> Record:
    if not path.exists():
        return {"path": str(path), "exists": False}
    return {"path": str(path), "exists": True, "mode": path.stat().st_mode & 0o7777,
            "content_b64": base64.b64encode(path.read_bytes()).decode()}


def _restore(ctx: StepContext, record: Record) -> None:
    path = Path(record["path"])
    if record["exists"]:
        ctx.log("undo", f"file {path}: restore {len(base64.b64decode(record['content_b64']))} bytes")
        atomic_write(path, base64.b64decode(record["content_b64"]), record["mode"])
    elif path.exists() or path.is_symlink():
        ctx.log("undo", f"file {path}: remove")
        path.unlink()


def _manual(record: Record) -> list[str]:
    path = record["path"]
    if record["exists"]:
        return [f"restore {path} (mode {record['mode']:o}) from the base64 content in this step's undo record"
                f" (`golive history --json` shows it)"]
    return [f"remove {path}"]


class WriteFile(Step):
    """Write ``content`` to ``path``; undo restores the previous content, or removes the file."""

    kind = "files.write"

    def __init__(self, path: str, content: str, mode: int = 0o644, **extra: Any) -> None:
        super().__init__(path=str(path), content=content, mode=mode, **extra)
        self.path = Path(path)

    @property
    def title(self) -> str:
        return f"write {self.path}"

    def plan(self, ctx: StepContext) -> list[Change]:
        old = self.path.read_bytes() if self.path.exists() else None
        return [Change(f"file {self.path}", _describe(old), _describe(self.params["content"].encode()))]

    def snapshot(self, ctx: StepContext) -> Record:
        return _read(self.path)

    def apply(self, ctx: StepContext, before: Record) -> Record:
        ctx.log("apply", f"file {self.path}: write {len(self.params['content'].encode())} bytes")
        ctx.checkpoint("mid")
        atomic_write(self.path, self.params["content"].encode(), self.params["mode"])
        return before

    def undo(self, ctx: StepContext, record: Record) -> None:
        _restore(ctx, record)

    def check(self, ctx: StepContext) -> list[str]:
        if not self.path.exists() or self.path.read_bytes() != self.params["content"].encode():
            return [f"{self.path} does not hold the content written"]
        return []

    def manual_undo(self, record: Record) -> list[str]:
        return _manual(record)


class RemoveFile(Step):
    """Remove ``path``; undo writes it back with its content and mode."""

    kind = "files.remove"

    def __init__(self, path: str, **extra: Any) -> None:
        super().__init__(path=str(path), **extra)
        self.path = Path(path)

    @property
    def title(self) -> str:
        return f"remove {self.path}"

    def plan(self, ctx: StepContext) -> list[Change]:
        old = self.path.read_bytes() if self.path.exists() else None
        return [Change(f"file {self.path}", _describe(old), None)]

    def snapshot(self, ctx: StepContext) -> Record:
        return _read(self.path)

    def apply(self, ctx: StepContext, before: Record) -> Record:
        ctx.log("apply", f"file {self.path}: remove")
        ctx.checkpoint("mid")
        self.path.unlink(missing_ok=True)
        return before

    def undo(self, ctx: StepContext, record: Record) -> None:
        _restore(ctx, record)

    def check(self, ctx: StepContext) -> list[str]:
        return [f"{self.path} still exists"] if self.path.exists() else []

    def manual_undo(self, record: Record) -> list[str]:
        return _manual(record)
