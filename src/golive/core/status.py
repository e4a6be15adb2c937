"""One part's answer to `golive status`: what its line shows, and the same as typed values for scripts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Part"]


@dataclass
class Part:
    """``shown``: the line's words (``parts`` in ``--json``, as it always was); ``state``: the same as values a
    script reads without parsing prose (``state`` in ``--json``), with ``ok``: the part answered and shows
    nothing to act on."""

    shown: dict[str, str]
    state: dict[str, Any]
