"""A Change is a frozen value: what changes, from what, to what.

Plans are lists of Changes; they are shown by ``--dry-run`` and the confirmation prompt, journaled
as the intent of a step, and hashed to pin a reviewed plan (:func:`plan_checksum`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change", "plan_checksum"]

ABSENT = None  # ``before``/``after`` of None means "does not exist"


def _show(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True, order=True)
class Change:
    """``what`` changes from ``before`` to ``after`` (None = absent). ``detail`` is extra context."""

    what: str
    before: Any = None
    after: Any = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def action(self) -> str:
        if self.before is None and self.after is not None:
            return "create"
        if self.before is not None and self.after is None:
            return "delete"
        return "update" if self.before != self.after else "noop"

    @property
    def data(self) -> dict[str, Any]:
        out = {"what": self.what, "action": self.action, "before": self.before, "after": self.after}
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Change:
        return cls(data["what"], data.get("before"), data.get("after"), data.get("detail") or {})

    def inverse(self) -> Change:
        return Change(self.what, self.after, self.before, self.detail)

    def __str__(self) -> str:
        if self.action == "create":
            return f"{self.what}: create {_show(self.after)}"
        if self.action == "delete":
            return f"{self.what}: delete (was {_show(self.before)})"
        if self.action == "noop":
            return f"{self.what}: absent" if self.after is None else f"{self.what}: unchanged ({_show(self.after)})"
        return f"{self.what}: {_show(self.before)} -> {_show(self.after)}"


def plan_checksum(changes: list[Change]) -> str:
    """A short, stable digest of a plan, to apply only the plan that was reviewed."""
    blob = json.dumps([c.data for c in changes], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
