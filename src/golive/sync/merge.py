"""Staged rows into the target table: synced keys that left the source deleted, changed rows updated
in place (the columns the mapping does not feed keep their values), new rows inserted, unchanged
rows not written at all; then the sequences behind the integer columns written moved past their largest
values (whatever the mapping's key)."""

from __future__ import annotations

from typing import Any

from golive.errors import GoliveError
from golive.sync.checks import UNIQUE_INDEXES
from golive.sync.mapping import TableMap
from golive.sync.pgtypes import ColumnType, rows_differ
from golive.sync.source import ident
from golive.sync.verify import key_sql

__all__ = ["merge", "move_sequences"]


def merge(target: Any, table: TableMap, types: dict[str, ColumnType], gone: set[Any], result: Any,
          int_key: bool = False, inserted: list[Any] | None = None) -> None:
    """``gone``: keys to delete, ints with ``int_key`` (one integer key column), else canonical text.
    ``inserted``: given a list, the keys of the rows inserted into a table that held rows are added to it."""
    import psycopg

    cols = table.target_columns
    col_list = ", ".join(ident(c) for c in cols)
    tgt = ident(table.target)
    typnames = {c: kind.typname for c, kind in types.items()}
    same_key = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in table.target_key)
    # a GENERATED ALWAYS identity column takes the source's value only when the insert overrides it, and an update
    # may not set it at all: the row is found by it, so its value is the staged one already
    overriding = " OVERRIDING SYSTEM VALUE" if any(types[c].always for c in cols) else ""
    settable = [c for c in cols if not types[c].always]
    if gone:
        key_t = f"t.{ident(table.target_key[0])}" if int_key else key_sql("t", table.target_key, typnames)
        result.deleted = target.execute(f"DELETE FROM {tgt} t WHERE {key_t} = ANY(%s)", (sorted(gone),)).rowcount
    if target.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {tgt})").fetchone()[0]:
        try:
            result.inserted = target.execute(f"INSERT INTO {tgt} ({col_list}){overriding} SELECT {col_list}"
                                             " FROM golive_stage").rowcount
        except psycopg.errors.UniqueViolation as exc:  # (the table was empty: two source rows hold the value; the
            # pre-check that names their keys costs a pass over every staged row, which only this case needs)
            detail = (exc.diag.message_detail or "").rstrip(".").replace(" already exists", "").removeprefix("Key ")
            raise GoliveError(f"table {table.target}: source rows share {detail}, which the target's unique index"
                              f" {exc.diag.constraint_name} allows once; nothing was written",
                              hint="fix the source data (keep the value in one of those rows), or map the column"
                                   " through a transform that tells them apart") from None
    else:
        differs = rows_differ("t", "s", cols, typnames)
        if settable:
            values = ", ".join("s." + ident(c) for c in settable)
            update = (f"UPDATE {tgt} t SET ({', '.join(map(ident, settable))}) = ROW({values})"
                      f" FROM golive_stage s WHERE {same_key} AND {differs}")
            result.updated = _update(target, table, update, settable, typnames)
        key_r = ident(table.target_key[0]) if int_key else key_sql(tgt, table.target_key, typnames)
        cursor = target.execute(f"INSERT INTO {tgt} ({col_list}){overriding} SELECT {col_list} FROM golive_stage s"
                                f" WHERE NOT EXISTS (SELECT 1 FROM {tgt} t WHERE {same_key})"
                                + (f" RETURNING {key_r}" if inserted is not None else ""))
        result.inserted = cursor.rowcount
        if inserted is not None:
            inserted += [row[0] for row in cursor.fetchall()]
    move_sequences(target, table, types)


def _update(target: Any, table: TableMap, update: str, settable: list[str], typnames: dict[str, str]) -> int:
    """The changed rows updated: in one statement, except rows that take a value of a unique column another row
    holds now (renames in a chain: B gave up "bob", A took it), which go a row at a time after the row they take
    it from. PostgreSQL checks a unique index row by row, not at the statement's end, so the one statement failed
    whenever A's row came first. Rows that exchange values (A and B swap usernames) fit no order: one line naming
    them. (No savepoint tries the statement first: rows written in a subtransaction carry its id, not the sync's,
    and would read as written by someone else.)"""
    from graphlib import CycleError, TopologicalSorter

    tgt, key_s = ident(table.target), key_sql("s", table.target_key, typnames)
    same_key = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in table.target_key)
    after: dict[str, set[str]] = {}  # a row that takes a value: the rows holding it now
    typed: dict[str, tuple[Any, ...]] = {}  # its key's text: the key's values (a row at a time goes by the index)
    key_columns = ", ".join(f"s.{ident(k)}" for k in table.target_key)
    for _, columns, immediate in target.execute(UNIQUE_INDEXES, (tgt,)).fetchall():
        if not immediate or not set(columns) <= set(settable):
            continue  # (a deferrable one is checked at the commit: the sync runs with its constraints deferred)
        new, now, held = (", ".join(f"{alias}.{ident(c)}" for c in columns) for alias in ("s", "t", "o"))
        key_o = key_sql("o", table.target_key, typnames)
        for taker, holder, *values in target.execute(
                f"SELECT {key_s}, {key_o}, {key_columns} FROM {tgt} t JOIN golive_stage s ON {same_key} JOIN {tgt} o ON"
                f" ({held}) = ({new}) WHERE ROW({new}) IS DISTINCT FROM ROW({now}) AND {key_o} <> {key_s}").fetchall():
            after.setdefault(taker, set()).add(holder)
            typed[taker] = tuple(values)
    if not after:
        return int(target.execute(update).rowcount)
    try:
        order = [key for key in TopologicalSorter(after).static_order() if key in after]
    except CycleError as exc:
        keys = sorted(set(exc.args[1]))
        raise GoliveError(
            f"table {table.target}: rows with key {', '.join(k.replace(chr(31), ',') for k in keys[:5])}"
            f"{', …' if len(keys) > 5 else ''} exchange values of a column the target keeps unique; PostgreSQL checks"
            " a unique index row by row, so no order of updates gets there; nothing was written",
            hint="in the new database, give one of those rows a value no other row holds (a placeholder), then run"
                 " `golive sync --source-wins` (that edit is then a change of the new database's, which it overwrites)"
        ) from None
    escaped = update.replace("%", "%%")
    updated = int(target.execute(escaped + f" AND NOT {key_s} = ANY(%s)", (order,)).rowcount)
    # a row at a time, each found by the key's index on both sides (a shift of 20,000 positions scanned the
    # staging table once a row: 46 s)
    target.execute(f"CREATE INDEX ON golive_stage ({', '.join(ident(k) for k in table.target_key)})")
    one = escaped + "".join(f" AND s.{ident(k)} = %s" for k in table.target_key)
    for key in order:
        updated += target.execute(one, typed[key]).rowcount
    return updated


def move_sequences(target: Any, table: TableMap, types: dict[str, ColumnType]) -> None:
    """Every integer column the sync writes (mapped or defaulted) that a sequence feeds — serial or identity,
    key or not — is moved past the column's largest value, so the new application's next row gets a fresh
    value, not a synced row's. Never moved back: a sequence the new application already took further stays."""
    ints = [c for c in table.target_columns if types[c].typname in ("int2", "int4", "int8")]
    if not ints:
        return  # (only integer columns have sequences behind them, and max(text) is no position)
    fed = target.execute("SELECT c, pg_get_serial_sequence(%s, c) FROM unnest(%s::text[]) AS c",
                         (ident(table.target), ints)).fetchall()
    for column, seq in fed:
        if seq is None:
            continue
        # the next value is last_value + 1 once called, else the start: moved only when the column reached it
        target.execute(f"SELECT setval(%(seq)s::regclass, top) FROM (SELECT max({ident(column)}) AS top"
                       f" FROM {ident(table.target)}) AS m WHERE top >= COALESCE("
                       "pg_sequence_last_value(%(seq)s::regclass) + 1,"
                       " (SELECT seqstart FROM pg_sequence WHERE seqrelid = %(seq)s::regclass))", {"seq": seq})
