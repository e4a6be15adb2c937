"""How to create a container again, kept beside the journal instead of in it.

Undo must be able to create a container again exactly as it was (the old colour after ``swap
finalize``, an adopted one someone removed), so it needs the container's whole creation spec: its
environment — which for a real application holds its database URL and secret key — and the Engine
API's Config and HostConfig, whose command, entrypoint or healthcheck may carry a URL with a password
too. The journal holds no secrets, and masks URL passwords (which would recreate a container with
``***`` for a password), so the spec goes to an owner-only file under ``<state_dir>/containers/``,
named by the container's id; the journal's record keeps what golive shows and decides by (name,
image, build, status, labels, ports), the variables' names, and that file's name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from golive.errors import GoliveError
from golive.private import open_private

__all__ = ["SPEC", "keep", "prune", "spec_of"]

SPEC = ("env", "config", "host_config", "networks")  # what only the kept file holds


def _folder(state_dir: Path) -> Path:
    folder = state_dir / "containers"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def keep(state_dir: Path, container: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record of ``container`` for the journal, its creation spec written aside (0600)."""
    if container is None or "env" not in container:
        return container
    record = {k: v for k, v in container.items() if k not in SPEC}
    spec = {k: container[k] for k in SPEC if k in container}
    name = f"{record['id']}.json"
    path = _folder(state_dir) / name
    partial = path.with_suffix(".partial")
    with open_private(partial) as f:
        json.dump({"name": record["name"], **spec}, f)
    partial.replace(path)
    return {**record, "env_names": [item.partition("=")[0] for item in spec["env"]], "kept": name}


def spec_of(state_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """What ``record``'s container was created with: ``env`` (``KEY=value`` items), and for a record of
    this golive also ``config``, ``host_config`` and ``networks``."""
    if "kept" not in record:  # a record made before the spec moved out of the journal: what it has
        return {k: record[k] for k in SPEC if k in record}
    path = state_dir / "containers" / str(record["kept"])
    try:
        spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(spec.get("env"), list):
            raise ValueError("not a spec golive wrote")
    except (OSError, ValueError):
        names = ", ".join(record.get("env_names") or []) or "none"
        raise GoliveError(f"how container {record['name']} was created, kept in {path}, cannot be read",
                          hint=f"create {record['name']} from {record['image']} by hand with its volumes, networks"
                               f" and variables ({names})") from None
    return spec


def prune(state_dir: Path, needed: set[str]) -> None:
    """Remove the specs no step that can still be undone refers to (they hold the applications'
    secrets: kept only as long as an undo may need them)."""
    folder = state_dir / "containers"
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.name not in needed and path.suffix in (".json", ".partial"):
            path.unlink(missing_ok=True)
