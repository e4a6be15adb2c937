"""The freeze line of `golive status`."""

from __future__ import annotations

from typing import Any


def status(config: Any) -> dict[str, str] | None:
    if config.source is None or config.source.freeze is None:
        return None
    from golive.freeze.steps import frozen

    return {"frozen": "on" if frozen(config) else "off", "method": config.source.freeze.method}
