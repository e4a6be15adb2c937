"""A container's environment, kept beside the journal instead of in it.

Undo must be able to create a container again exactly as it was (the old colour after ``swap
finalize``, an adopted one someone removed), so it needs the container's environment — which for a
real application holds its database URL and secret key. The journal holds no secrets (and masks
URL passwords, which would recreate a container with ``***`` for a password), so the environment
goes to an owner-only file under ``<state_dir>/containers/``, named by the container's id; the
journal's record keeps the variables' names and that file's name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from golive.errors import GoliveError

__all__ = ["env_of", "keep"]


def _folder(state_dir: Path) -> Path:
    folder = state_dir / "containers"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def keep(state_dir: Path, container: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record of ``container`` for the journal, its environment written aside (0600)."""
    if container is None or "env" not in container:
        return container
    record = dict(container)
    env: list[str] = record.pop("env")
    name = f"{record['id']}.json"
    path = _folder(state_dir) / name
    partial = path.with_suffix(".partial")
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        json.dump({"name": record["name"], "env": env}, f)
    partial.replace(path)
    return {**record, "env_names": [item.partition("=")[0] for item in env], "env_kept": name}


def env_of(state_dir: Path, record: dict[str, Any]) -> list[str]:
    """The environment ``record``'s container had, as ``KEY=value`` items."""
    if "env" in record:  # a record made before the environment moved out of the journal
        return list(record["env"])
    path = state_dir / "containers" / str(record["env_kept"])
    try:
        env: list[str] = json.loads(path.read_text(encoding="utf-8"))["env"]
    except (OSError, ValueError, KeyError):
        names = ", ".join(record.get("env_names") or []) or "none"
        raise GoliveError(f"the environment of container {record['name']} kept in {path} cannot be read",
                          hint=f"create {record['name']} from {record['image']} by hand with its variables"
                               f" ({names})") from None
    return env
