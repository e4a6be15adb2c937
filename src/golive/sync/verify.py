"""Verification, in the target database: the rows golive staged (the source's rows, transformed,
loaded by COPY into a temporary table shaped like the target) against the target's rows.

Most rows of a table staged (a full sync, ``--verify-only``): both sides are cut into the same key
ranges (every 4096th staged key a boundary), and each range's row count and sum of 64-bit hashes of
its rows' mapped columns (``hash_record_extended``) are compared — two scans, no join, no sort,
nothing per row leaves the server. A range that differs is then compared row by row, which names
the keys. Few rows staged (an incremental sync): the staged rows are compared with their target rows
directly. Target rows golive never synced (made by the new application) are not differences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from golive.sync.digests import Ranges
from golive.sync.mapping import TableMap
from golive.sync.pgtypes import column_types, compared, rows_differ
from golive.sync.source import ident

__all__ = ["RANGE_ROWS", "Verdict", "as_int_key", "canonical", "differing_keys", "key_sql", "range_differences", "range_sums",
           "range_where"]

RANGE_ROWS = 4096


def canonical(value: Any) -> str:
    """One text form per key value: what :func:`key_sql` makes of the target's value (PostgreSQL's ``::text``
    for ints, text, uuid, booleans and dates; date-times in UTC to the microsecond, numbers without trailing
    zeros, bytes in hex). The engine checks each staged table's first keys against the target's reading of
    them, so a type read otherwise stops the sync instead of hiding its deletions."""
    kind = type(value)
    if kind is str:  # the common cases first: this runs for every key
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="microseconds")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "+00:00"
    if isinstance(value, time):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    if isinstance(value, Decimal) and value.is_finite():
        return "0" if value == 0 else format(value.normalize(), "f")  # (trim_scale: 1.50 and 1.5 are one key)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, float | Decimal):
        return format(float(value), ".15g")
    return str(value)


def as_int_key(value: Any) -> Any:
    """A key value of a table keyed by one integer column, as the int the target stores (``"12"`` from a
    SQLite text column is 12, as binary COPY fitting makes it); a value that is no integer stays as its
    canonical text, which matches no key."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return canonical(value)


# a key column's value as :func:`canonical` writes it, by type (any other type: its ``::text``)
_KEY_TEXT = {
    "timestamp": "to_char({v}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",
    "timestamptz": "to_char({v} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')",
    "time": "to_char(date '2000-01-01' + {v}, 'HH24:MI:SS.US')",
    "numeric": "trim_scale({v})::text",
    "bytea": "encode({v}, 'hex')",
}


def key_sql(alias: str, columns: Sequence[str], typnames: Mapping[str, str]) -> str:
    """A row's key as text, the values of a composite key joined by U+001F, each as :func:`canonical` writes it
    (``typnames``: the columns' types)."""
    def text(column: str) -> str:
        value = f"{alias}.{ident(column)}"
        return _KEY_TEXT.get(typnames.get(column, ""), "{v}::text").format(v=value)

    return "concat_ws(E'\\x1f', " + ", ".join(text(c) for c in columns) + ")"


@dataclass
class Verdict:
    found: list[Any]  # keys that differ (at most the limit), in key order
    ranges: Ranges | None = None  # the target's range sums as verified, when the ranges were compared


def differing_keys(conn: Any, table: TableMap, synced: AbstractSet[Any], staged: int, bounds: list[Any] | None,
                   typnames: dict[str, str], limit: int = 20, int_key: bool = False, complete: bool = True) -> Verdict:
    """Staged keys whose target row is missing or differs, and synced keys the target has in a staged
    range but the stage does not (in key order, at most ``limit``). ``bounds``: the range boundaries
    when the engine saw them go by (an integer key read in order), saving a sort. Keys are ints with
    ``int_key`` (one integer key column), else canonical text, as in ``synced``. ``complete``: the stage holds
    every source row (a full read); an incremental stage holds only the rows read, so it is compared row by
    row however many those are (a range would count the rows not read as gone)."""
    # by ranges when most of the table was staged (an incremental sync's few rows: row by row); the synced
    # keys settle it without counting the target when they alone outnumber the staged rows twice
    if complete and len(table.target_key) == 1 and staged >= RANGE_ROWS and 2 * staged >= len(synced) and \
            2 * staged >= conn.execute(f"SELECT count(*) FROM {ident(table.target)}").fetchone()[0]:
        return _by_ranges(conn, table, synced, limit, bounds if bounds and bounds == sorted(bounds) else None, int_key,
                          typnames)
    return Verdict(_rows(conn, table, synced, "", (), limit, typnames, full=False, int_key=int_key))


def _typnames(conn: Any, table: TableMap) -> dict[str, str]:
    return {name: kind.typname for name, kind in column_types(conn, table.target).items()}


def _row_hash(alias: str, table: TableMap, typnames: dict[str, str]) -> str:
    """A row's 64-bit hash over its values as :func:`~golive.sync.pgtypes.rows_differ` compares them (so the
    sums by range and the comparison row by row agree: ``numeric`` 1.5 and 1.50 differ in both)."""
    return f"hash_record_extended(ROW({', '.join(compared(alias, c, typnames) for c in table.target_columns)}), 0)"


def range_sums(conn: Any, table: TableMap, bounds: list[Any], origin: str | None = None,
               typnames: dict[str, str] | None = None, keys: list[Any] | None = None) -> dict[int, tuple[int, int]]:
    """Per key range (``width_bucket`` of the key in ``bounds``; 0 below the first) the rows' count and the
    sum of their 64-bit hashes, over ``origin`` (default: the target table), or only its rows with the
    ``keys`` given: one scan, no text, no sort. The boundaries go as a parameter (not a temporary table)
    so the target's scan can run in parallel workers (its rows, even those written in this transaction,
    are visible to them; a temporary table's are not)."""
    if keys is not None and not keys:
        return {}
    if typnames is None:
        typnames = _typnames(conn, table)
    k = f"x.{ident(table.target_key[0])}"
    bucket = f"width_bucket({k}, %(b)s::{typnames[table.target_key[0]]}[])" if bounds else "0"
    where = f" WHERE {k} = ANY(%(k)s)" if keys is not None else ""
    rows = conn.execute(f"SELECT {bucket}, count(*), coalesce(sum({_row_hash('x', table, typnames)}), 0)"
                        f" FROM {origin or ident(table.target)} x{where} GROUP BY 1", {"b": bounds, "k": keys})
    return {int(b): (int(n), int(total)) for b, n, total in rows}


def range_where(bounds: list[Any], bucket: int, column: str) -> tuple[str, tuple[Any, ...]]:
    """A ``width_bucket`` range as a condition on ``x.<column>``, and its parameters."""
    conditions, params = [], []
    if bucket > 0:
        conditions.append(f" AND x.{column} >= %s")
        params.append(bounds[bucket - 1])
    if bucket < len(bounds):
        conditions.append(f" AND x.{column} < %s")
        params.append(bounds[bucket])
    return "".join(conditions), tuple(params)


def range_differences(conn: Any, table: TableMap, synced: AbstractSet[Any], bounds: list[Any], bucket: int,
                      limit: int, typnames: dict[str, str]) -> list[Any]:
    """Row by row in one ``width_bucket`` range of an integer key (the staging table holding the source's
    rows of that range): the keys that differ, at most ``limit``."""
    where, params = range_where(bounds, bucket, ident(table.target_key[0]))
    return _rows(conn, table, synced, where, params, limit, typnames, full=True, int_key=True)


def _by_ranges(conn: Any, table: TableMap, synced: AbstractSet[Any], limit: int, bounds: list[Any] | None,
               int_key: bool, typnames: dict[str, str]) -> Verdict:
    k = ident(table.target_key[0])
    if bounds is None:
        bounds = conn.execute(f"SELECT array_agg(k ORDER BY k) FROM (SELECT {k} AS k, row_number() OVER (ORDER BY {k})"
                              f" AS n FROM golive_stage) x WHERE n % {RANGE_ROWS} = 1").fetchone()[0]
    source = range_sums(conn, table, bounds, "golive_stage", typnames)
    target = range_sums(conn, table, bounds, None, typnames)
    found: list[Any] = []
    for bucket in sorted(b for b in source.keys() | target.keys() if source.get(b) != target.get(b)):
        where, params = range_where(bounds, bucket, k)
        found += _rows(conn, table, synced, where, params, limit - len(found), typnames, full=True, int_key=int_key)
        if len(found) >= limit:
            break
    return Verdict(found, Ranges.of(bounds, target) if int_key else None)


def _rows(conn: Any, table: TableMap, synced: AbstractSet[Any], where: str, params: tuple[Any, ...], limit: int,
          typnames: dict[str, str], full: bool, int_key: bool = False) -> list[Any]:
    """Row by row within a key range: staged rows missing or different in the target; with ``full``,
    also target rows in the range that were synced by golive but are not staged."""
    same_key = " AND ".join(f"t.{ident(c)} = s.{ident(c)}" for c in table.target_key)
    first = ident(table.target_key[0])
    differs = rows_differ("t", "s", table.target_columns, typnames)
    join = "FULL JOIN" if full else "LEFT JOIN"
    keys = f"s.{first}, t.{first}" if int_key else \
        f"{key_sql('s', table.target_key, typnames)}, {key_sql('t', table.target_key, typnames)}"
    rows = conn.execute(
        f"SELECT {keys}, s.{first} IS NULL"
        f" FROM (SELECT * FROM golive_stage x WHERE true{where}) s {join}"
        f" (SELECT * FROM {ident(table.target)} x WHERE true{where}) t ON {same_key}"
        f" WHERE s.{first} IS NULL OR t.{first} IS NULL OR {differs}"
        f" ORDER BY coalesce(s.{first}, t.{first})", params * 2)
    found = []
    for staged_key, target_key, target_only in rows:
        if target_only and target_key not in synced:
            continue  # a row of the new application
        found.append(target_key if target_only else staged_key)
        if len(found) >= limit:
            break
    return found
