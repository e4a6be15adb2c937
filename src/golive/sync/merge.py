"""Staged rows into the target table: synced keys that left the source deleted, changed rows updated
in place (the columns the mapping does not feed keep their values), new rows inserted, unchanged
rows not written at all; then the sequences behind the integer columns written moved past their largest
values (whatever the mapping's key)."""

from __future__ import annotations

from typing import Any

from golive.sync.mapping import TableMap
from golive.sync.pgtypes import ColumnType, rows_differ
from golive.sync.source import ident
from golive.sync.verify import key_sql

__all__ = ["merge", "move_sequences"]


def merge(target: Any, table: TableMap, types: dict[str, ColumnType], gone: set[Any], result: Any,
          int_key: bool = False, inserted: list[Any] | None = None) -> None:
    """``gone``: keys to delete, ints with ``int_key`` (one integer key column), else canonical text.
    ``inserted``: given a list, the keys of the rows inserted into a table that held rows are added to it."""
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
        result.inserted = target.execute(f"INSERT INTO {tgt} ({col_list}){overriding} SELECT {col_list} FROM golive_stage"
                                         ).rowcount
    else:
        differs = rows_differ("t", "s", cols, typnames)
        if settable:
            result.updated = target.execute(
                f"UPDATE {tgt} t SET ({', '.join(map(ident, settable))}) = ROW({', '.join('s.' + ident(c) for c in settable)})"
                f" FROM golive_stage s WHERE {same_key} AND {differs}").rowcount
        key_r = ident(table.target_key[0]) if int_key else key_sql(tgt, table.target_key, typnames)
        cursor = target.execute(f"INSERT INTO {tgt} ({col_list}){overriding} SELECT {col_list} FROM golive_stage s"
                                f" WHERE NOT EXISTS (SELECT 1 FROM {tgt} t WHERE {same_key})"
                                + (f" RETURNING {key_r}" if inserted is not None else ""))
        result.inserted = cursor.rowcount
        if inserted is not None:
            inserted += [row[0] for row in cursor.fetchall()]
    move_sequences(target, table, types)


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
