"""The freeze line of `golive status`."""

from __future__ import annotations

from typing import Any

from golive.core.status import Part

# at most this long for the status command: under the 10 s `golive status` gives each part, so the command
# is ended (its whole process group) by golive rather than left running when status stops waiting
STATUS_LINE_WAIT = 8.0


def status(config: Any) -> Part | None:
    if config.source is None or config.source.freeze is None:
        return None
    from golive.freeze.steps import frozen

    state = frozen(config, timeout=STATUS_LINE_WAIT)
    method = config.source.freeze.method
    return Part({"frozen": "on" if state else "off", "method": method}, {"ok": True, "frozen": bool(state), "method": method})
