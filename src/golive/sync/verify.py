"""Verification: for every synced key, a digest of the mapped target values computed from the
source (after transforms) and read back from the target; any difference names the keys."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["canonical", "compare", "digest"]


def canonical(value: Any) -> str:
    """One text form per value, the same for what the source gave and what PostgreSQL returns."""
    kind = type(value)
    if kind is str:  # the common cases first: this runs for every value of every row
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, float | Decimal):
        return format(float(value), ".15g")
    return str(value)


def digest(values: list[Any]) -> str:
    return hashlib.blake2b("\x1f".join(map(canonical, values)).encode(), digest_size=12).hexdigest()


def compare(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """The keys whose digests differ or that are on one side only, sorted."""
    return sorted(k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k))
