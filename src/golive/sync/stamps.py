"""The ``changed`` column compared with the watermark by time, not by text.

PostgreSQL compares its typed columns itself. SQLite has no time type: an old application writes
``2024-06-01T09:00:00`` (Python's ``isoformat``) next to ``2024-06-01 10:00:00`` (``datetime('now')``),
with or without fractional seconds or an offset, and compared as text ``' '`` sorts before ``'T'``,
so a later stamp can look older than the watermark and its row would never be read. SQLite's own
``julianday()`` reads every such form (in C, in the scan: no Python work per row); numbers (a version
counter, a unix epoch, a julian day) are compared as numbers. A row whose stamp is of the other kind,
or is no date-time at all, is read and stops the sync naming it, instead of being skipped unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from golive.errors import GoliveError

__all__ = ["SqliteSince", "fold_back", "moment", "number_since", "parse_number", "sqlite_since", "stamp_error", "time_key",
           "unreadable_watermark", "watermark_text"]

JULIAN_DAYS = (1_000_000.0, 5_373_484.5)  # a float in this range is a julian day (4976 BC to 9999 AD)
EPOCH_SECONDS = (1_000_000_000, 253_402_300_799)  # a number in this range is a unix time (2001 to 9999 AD)
EPOCH_MILLIS = (1_000_000_000_000, 253_402_300_799_999)  # … in milliseconds (JavaScript's Date.now())
_OFFSET = "({c} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*[Zz]')"  # a stamp SQLite reads with its offset


@dataclass(frozen=True)
class SqliteSince:
    """A SQLite source's incremental read: ``condition`` (rows changed at or after the watermark less the
    window, never stamped, or whose stamp cannot be compared) and ``flag`` (1: the stamp cannot be compared)."""

    condition: str
    params: tuple[Any, ...]  # "date-time": texts the source turns into julian days (SQLite's own reading)
    flag: str
    kind: str  # "date-time" | "number"


def number_since(value: float, overlap: float) -> float:
    """A numeric watermark less the window: seconds for a unix time, days for a julian day; a version
    counter has no window."""
    if isinstance(value, float) and JULIAN_DAYS[0] <= value <= JULIAN_DAYS[1]:
        return value - overlap / 86400
    if EPOCH_SECONDS[0] <= value <= EPOCH_SECONDS[1]:
        return value - overlap
    if EPOCH_MILLIS[0] <= value <= EPOCH_MILLIS[1]:
        return value - overlap * 1000
    return value


def watermark_text(value: Any) -> str:
    """The watermark as the state keeps it. A float keeps its point ("2460462.0", not "2460462"): read back
    as an int, a whole julian day would lose its overlap window."""
    from golive.sync.verify import canonical

    return repr(value) if isinstance(value, float) else canonical(value)


def parse_number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


def moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None


def in_future(value: Any, zone: tzinfo, now: datetime, slack: timedelta) -> Any:
    """``now`` in the form of the date-time watermark ``value`` when ``value`` is more than ``slack`` later than it
    (naive ones read in ``zone``), else None. Numbers (a version counter) are not times: None. (A stamp ahead by
    less — the old server's clock a little fast — is read again anyway: the next read reaches back by the slack.)"""
    at = value if isinstance(value, datetime) else moment(value) if isinstance(value, str) else None
    if at is None:
        return None
    if at.tzinfo is None:
        local = now.astimezone(zone).replace(tzinfo=None)
        return (local if isinstance(value, datetime) else local.isoformat(sep=" ")) if at > local + slack else None
    return (now if isinstance(value, datetime) else now.isoformat(sep=" ")) if at > now + slack else None


def fold_back(at: datetime, zone: tzinfo) -> timedelta:
    """How much earlier than a naive watermark a row written after it may be stamped: a wall time the zone
    shows twice (the hour the clocks go back) may be the first pass, and a row written minutes later in the
    second pass reads as up to the fold's length (an hour) older. Zero for any other time, and for a stamp
    with an offset."""
    if at.tzinfo is not None:
        return timedelta(0)
    first, second = at.replace(tzinfo=zone, fold=0).utcoffset(), at.replace(tzinfo=zone, fold=1).utcoffset()
    return max(first - second, timedelta(0)) if first is not None and second is not None else timedelta(0)


def unreadable_watermark(table: str, watermark: str) -> GoliveError:
    return GoliveError(f"table {table}: the last sync's watermark {watermark!r} is neither a date-time nor a number,"
                       " so golive cannot tell which rows changed since", hint="fix the `changed` values in the source"
                       f" (or drop `changed` from the table's mapping), then `golive sync --full --tables {table}`")


def sqlite_since(column: str, watermark: str, overlap: float, zone: tzinfo, table: str) -> SqliteSince:
    """``column`` (quoted SQL) at or after ``watermark`` less ``overlap`` seconds, by time or by number."""
    number = parse_number(watermark)
    if number is not None:
        # compared as numbers, also where a TEXT column holds the digits ('1717232400'); a stamp that is no
        # number (text with other characters, a blob) is read, and flagged
        other = f"({column} IS NOT NULL AND typeof({column}) IN ('text', 'blob') AND ({column} = ''" \
                f" OR {column} GLOB '*[^0-9.]*'))"
        return SqliteSince(f"({column} IS NULL OR {other} OR CAST({column} AS REAL) >= ?)",
                           (number_since(number, overlap),), other, "number")
    at = moment(watermark)
    if at is None:
        raise unreadable_watermark(table, watermark)
    at -= timedelta(seconds=overlap) + fold_back(at, zone)
    # SQLite reads a naive stamp as it is and one with an offset in UTC; golive reads naive stamps in the
    # source's zone (to_utc): the watermark is given in both forms, each compared with its kind of stamp.
    # (The source turns them into julian days once: julianday() of a constant is not folded, but run per row.)
    naive = (at.astimezone(zone).replace(tzinfo=None) if at.tzinfo else at).isoformat(" ")
    utc = (at if at.tzinfo else at.replace(tzinfo=zone)).astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    older = f"julianday({column}) < ?"
    params: tuple[str, ...] = (naive,)
    if naive != utc:
        older, params = f"CASE WHEN {_OFFSET.format(c=column)} THEN {older} ELSE {older} END", (utc, naive)
    # read unless provably older: a number (numbers sort before text) or no date-time at all is read, and flagged;
    # a NULL stamp is read too (julianday(NULL) is NULL: "IS NOT TRUE"), with no term of its own (each term is
    # evaluated for every row of the table, and the scan is most of an incremental sync's source time)
    return SqliteSince(f"({column} < '' OR ({older}) IS NOT TRUE)", params,
                       f"({column} IS NOT NULL AND ({column} < '' OR julianday({column}) IS NULL))", "date-time")


def stamp_error(table: str, column: str, kind: str, key: str, value: Any) -> GoliveError:
    what = "a value that is not a date-time" if kind == "date-time" and isinstance(value, str) else \
        f"{'a number' if kind == 'date-time' else 'text'} among {'date-time text' if kind == 'date-time' else 'numbers'}"
    return GoliveError(f"table {table}: the `changed` column {column} holds {what} ({key}: {value!r}), so golive"
                       " cannot tell which rows changed since the last sync; nothing was written",
                       hint="make the column's stamps all date-times (or all numbers) in the source, or drop `changed`"
                            " from the table's mapping (every row is then compared); `golive sync --full` reads every"
                            " row this once")


def time_key(value: Any, zone: tzinfo) -> tuple[int, Any]:
    """An order of ``changed`` stamps by time (numbers by value; naive date-times read in ``zone``; what is
    neither last, by text) — for the few stamps of rejected rows, not for a whole scan."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return 0, value
    at = value if isinstance(value, datetime) else moment(value) if isinstance(value, str) else None
    if at is not None:
        return 1, (at if at.tzinfo else at.replace(tzinfo=zone)).astimezone(UTC)
    return 2, str(value)
