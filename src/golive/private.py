"""Files only their owner may read: what golive keeps aside holds users' rows, their files and container
settings (secrets among them), so each is 0600 from its first byte, in folders made 0700."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Literal, overload

__all__ = ["open_private"]


@overload
def open_private(path: Path, mode: Literal["w"] = "w", *, exclusive: bool = False) -> IO[str]: ...
@overload
def open_private(path: Path, mode: Literal["wb"], *, exclusive: bool = False) -> IO[bytes]: ...


def open_private(path: Path, mode: str = "w", *, exclusive: bool = False) -> IO[Any]:
    """``path`` opened for writing, created 0600 (its folders 0700 when made here); ``exclusive``: an existing
    file is an error rather than truncated."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    return os.fdopen(fd, mode) if mode == "wb" else os.fdopen(fd, mode, encoding="utf-8")
