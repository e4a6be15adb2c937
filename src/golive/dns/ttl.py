"""When a DNS switch is safe to make: a resolver keeps the answer it fetched for the record's TTL.

A switch made while the records still have a long TTL (or less than the old TTL after lowering it)
reaches users only as their resolvers' copies expire — and so would its undo: a cutover that has to
be taken back at 2 a.m. keeps sending some users to the new server for hours. ``dns switch`` (and
anything that switches for it) asks :func:`wait_reason` first; ``--no-ttl-wait`` skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from golive.errors import UnsafePlan

if TYPE_CHECKING:
    from golive.core.journal import Journal

__all__ = ["ALLOWED_TTLS", "DEFAULT_TTL", "Lowered", "TtlWait", "effective", "last_lowered", "ttl_problem",
           "wait_reason"]

DEFAULT_TTL = 86400  # a domain's ttl_sec 0: Linode's default (a record's 0 is the domain's ttl_sec)
# the TTLs Linode keeps; any other value is rounded up to the next (../shared/linode/README.md)
ALLOWED_TTLS = (0, 30, 120, 300, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 345600, 604800, 1209600, 2419200)


def ttl_problem(value: int) -> str | None:
    """Why Linode would not keep ``value`` as a record's TTL (None: it would)."""
    if value in ALLOWED_TTLS[1:]:
        return None
    if value == 0:
        return "0 is the domain's default TTL (a day unless the domain sets its own), not a short one"
    if value < 0:
        return "a TTL is a number of seconds, not a negative one"
    rounded = next((t for t in ALLOWED_TTLS if t >= value), ALLOWED_TTLS[-1])
    return (f"Linode would round {value}s up to {rounded}s; it keeps only "
            + ", ".join(str(t) for t in ALLOWED_TTLS[1:6]) + ", … seconds")


def effective(ttl_sec: int | None, zone_ttl: int | None) -> int:
    """The seconds resolvers keep a record: its ``ttl_sec``; 0 is the domain's ``ttl_sec`` (``zone_ttl``), and 0
    there is Linode's default, a day (../shared/linode/: a domain of 2 days makes its 0-TTL records 2 days)."""
    return ttl_sec or zone_ttl or DEFAULT_TTL


@dataclass(frozen=True)
class Lowered:
    """An applied ``dns lower-ttl``: when it finished, and the longest TTL it replaced."""

    at: datetime
    old_ttl: int

    @property
    def safe_at(self) -> datetime:
        return self.at + timedelta(seconds=self.old_ttl)


def last_lowered(journal: Journal, runs: int = 500) -> Lowered | None:
    """The applied ``dns lower-ttl`` whose replaced answers expire last from resolvers' caches. Not simply the
    newest: lowering a day's TTL to 300 s and then to 30 s leaves the day's copies out there for a day."""
    from golive.core.journal import UNDOABLE

    found: list[Lowered] = []
    for run in journal.runs(runs):
        for step in journal.steps(run.id):
            # applied, or killed after it began changing records ("applying": some may be lowered already)
            at = step.finished_at if step.status == "applied" else step.started_at
            if step.kind == "dns.lower_ttl" and step.status in UNDOABLE and at and step.before:
                zone = step.before.get("zone_ttl")  # (not journaled before golive knew it: Linode's default)
                lowered = [effective(r.get("ttl_sec"), zone) for r in step.before.get("records", [])
                           if effective(r.get("ttl_sec"), zone) > int(step.params.get("ttl", 0))]
                if lowered:  # (one that found every TTL already short changed nothing to wait for)
                    found.append(Lowered(datetime.fromisoformat(at), max(lowered)))
    return max(found, key=lambda lowered: lowered.safe_at, default=None)


class TtlWait(UnsafePlan):
    """A switch refused while resolvers may hold the old answer; ``earliest_switch``: when they no longer may (None:
    not known yet — the TTL is not lowered), in a --json error as ISO UTC."""

    def __init__(self, message: str, *, hint: str, earliest_switch: datetime | None) -> None:
        super().__init__(message, hint=hint)
        self.earliest_switch = earliest_switch

    def to_dict(self) -> dict[str, object]:
        at = self.earliest_switch
        return {**super().to_dict(), "earliest_switch": at.isoformat(timespec="seconds") if at else None}


def wait_reason(records: list[dict[str, Any]], zone_ttl: int, cutover_ttl: int, lowered: Lowered | None,
                now: datetime) -> tuple[str, str] | None:
    """Why the switch should wait (message, hint), or None when every resolver's copy is short-lived.
    ``zone_ttl``: the domain's ``ttl_sec``, which a record's 0 stands for."""
    longest = max((effective(r.get("ttl_sec"), zone_ttl) for r in records), default=0)
    if longest > cutover_ttl:
        return (f"the records' TTL is still {longest}s: resolvers would keep the old answer that long after"
                f" the switch (and the new one after an undo)",
                f"run `golive dns lower-ttl` at least {longest}s before the switch, or pass --no-ttl-wait")
    if lowered is not None and now < lowered.safe_at:
        left = int((lowered.safe_at - now).total_seconds()) + 1
        return (f"the TTL was lowered at {lowered.at:%H:%M:%S} UTC from {lowered.old_ttl}s: resolvers may hold the"
                f" old answer until {lowered.safe_at:%Y-%m-%d %H:%M:%S} UTC ({left}s from now)",
                "wait until then, or pass --no-ttl-wait")
    return None
