"""The sync engine: source rows -> transforms -> COPY into a staging table -> merged into the target,
all tables in one target transaction (constraints deferred), then verified before commit.

Rows golive synced are remembered in ``golive.synced_keys``: a key that disappears from the source
is deleted from the target only if golive put it there, so rows created in the new application are
never touched. Changed rows are replaced, unchanged rows are left alone, and sequences are moved
past the explicit ids. The source is opened read-only (SQLite ``mode=ro``; PostgreSQL in a
``REPEATABLE READ READ ONLY`` transaction: one consistent snapshot) and never written.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from golive.errors import GoliveError
from golive.sync.mapping import Mapping, TableMap
from golive.sync.transforms import Reject

__all__ = ["SyncEngine", "TableResult"]

Progress = Callable[[str, int, int], None]  # (table, done, total)


@dataclass
class TableResult:
    table: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    verified: bool | None = None
    mismatched_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def canonical(value: Any) -> str:
    """One text form per value, the same for what the source gave and what PostgreSQL returns."""
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
    return hashlib.blake2b("\x1f".join(canonical(v) for v in values).encode(), digest_size=12).hexdigest()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _key_expr(alias: str, columns: tuple[str, ...]) -> str:
    return "concat_ws(E'\\x1f', " + ", ".join(f"{alias}.{_ident(c)}::text" for c in columns) + ")"


class Source:
    """The old database, read-only."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                raise GoliveError(f"source database {path} does not exist", hint="check [source].url")
            self.sqlite: sqlite3.Connection | None = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self.sqlite.row_factory = sqlite3.Row
            self.sqlite.execute("BEGIN")  # one read snapshot for every table
            self.pg = None
        else:
            import psycopg
            from psycopg.rows import dict_row

            self.sqlite = None
            self.pg = psycopg.connect(url, row_factory=dict_row)
            self.pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _select(self, table: TableMap) -> str:
        cols = ", ".join(_ident(c) for c in table.source_columns)
        origin = _ident(table.source) if table.source else f"({table.query}) AS q"
        return f"SELECT {cols} FROM {origin} ORDER BY {', '.join(_ident(k) for k in table.key)}"

    def count(self, table: TableMap) -> int:
        origin = _ident(table.source) if table.source else f"({table.query}) AS q"
        if self.sqlite is not None:
            return int(self.sqlite.execute(f"SELECT count(*) FROM {origin}").fetchone()[0])
        assert self.pg is not None
        row = self.pg.execute(f"SELECT count(*) AS n FROM {origin}").fetchone()
        return int(row["n"]) if row else 0

    def rows(self, table: TableMap) -> Iterator[dict[str, Any]]:
        if self.sqlite is not None:
            for row in self.sqlite.execute(self._select(table)):
                yield dict(row)
        else:
            assert self.pg is not None
            with self.pg.cursor(name=f"golive_{table.target}") as cur:
                cur.itersize = 5000
                cur.execute(self._select(table))
                yield from cur

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            self.pg.close()


class SyncEngine:
    def __init__(self, source_url: str, target_url: str, mapping: Mapping, *, max_rejects: int = 0,
                 reject_file: Path | None = None, progress: Progress | None = None) -> None:
        self.source_url, self.target_url, self.mapping = source_url, target_url, mapping
        self.max_rejects, self.reject_file = max_rejects, reject_file
        self.progress = progress or (lambda table, done, total: None)
        self.rejects: list[dict[str, Any]] = []

    def _transform(self, table: TableMap, row: dict[str, Any], record: bool = True) -> list[Any] | None:
        """The target values of one source row, or None when it is rejected (recorded once, with the reason)."""
        out: list[Any] = []
        for column in table.columns:
            try:
                value = column.value(row)
            except Reject as exc:
                if record:
                    self._reject(table, row, column.target, str(exc))
                return None
            if isinstance(value, str) and "\x00" in value:
                if record:
                    self._reject(table, row, column.target, "NUL byte in text (PostgreSQL cannot store it)")
                return None
            out.append(value)
        return out + [v for k, v in table.defaults.items() if k not in {c.target for c in table.columns}]

    def _reject(self, table: TableMap, row: dict[str, Any], column: str, reason: str) -> None:
        key = ", ".join(f"{k}={row.get(k)!r}" for k in table.key)
        self.rejects.append({"table": table.target, "key": key, "column": column, "reason": reason})

    def run(self, tables: tuple[TableMap, ...]) -> list[TableResult]:
        import psycopg

        source = Source(self.source_url)
        try:
            with psycopg.connect(self.target_url) as target, target.transaction():
                target.execute("SET CONSTRAINTS ALL DEFERRED")
                target.execute("CREATE SCHEMA IF NOT EXISTS golive")
                target.execute("CREATE TABLE IF NOT EXISTS golive.synced_keys"
                               " (target text NOT NULL, key text NOT NULL, PRIMARY KEY (target, key))")
                results = [self._table(source, target, t) for t in tables]
                self._check_rejects()
                for table, result in zip(tables, results, strict=True):
                    self._verify(source, target, table, result)
                bad = [r for r in results if not r.verified]
                if bad:
                    raise GoliveError(f"verification failed for {', '.join(r.table for r in bad)} (keys "
                                      f"{'; '.join(', '.join(r.mismatched_keys[:5]) for r in bad)}); nothing was written",
                                      hint="the target was left as it was; run with -v and check the mapping")
        finally:
            source.close()
        return results

    def _check_rejects(self) -> None:
        if self.reject_file is not None and self.rejects:
            self.reject_file.parent.mkdir(parents=True, exist_ok=True)
            self.reject_file.write_text("".join(json.dumps(r) + "\n" for r in self.rejects))
        if len(self.rejects) > self.max_rejects:
            first = self.rejects[0]
            raise GoliveError(
                f"{len(self.rejects)} row(s) rejected (max {self.max_rejects}); first: table {first['table']},"
                f" key {first['key']}, column {first['column']}: {first['reason']}",
                hint=f"fix the source or the mapping; all rejects are in {self.reject_file}; nothing was written")

    def _table(self, source: Source, target: Any, table: TableMap) -> TableResult:
        started, result = time.monotonic(), TableResult(table.target)
        total = source.count(table)
        cols = table.target_columns
        col_list = ", ".join(_ident(c) for c in cols)
        tgt = _ident(table.target)
        target.execute(f"CREATE TEMP TABLE golive_stage (LIKE {tgt} INCLUDING DEFAULTS) ON COMMIT DROP")
        with target.cursor().copy(f"COPY golive_stage ({col_list}) FROM STDIN") as copy:
            for row in source.rows(table):
                result.read += 1
                values = self._transform(table, row)
                if values is None:
                    result.rejected += 1
                else:
                    copy.write_row([_adapt(v) for v in values])
                if result.read % 5000 == 0 or result.read == total:
                    self.progress(table.target, result.read, total)  # inside the COPY
        key_t, key_s = _key_expr("t", table.target_key), _key_expr("s", table.target_key)
        same_key = " AND ".join(f"t.{_ident(k)} = s.{_ident(k)}" for k in table.target_key)
        differs = f"({', '.join('t.' + _ident(c) for c in cols)}) IS DISTINCT FROM ({', '.join('s.' + _ident(c) for c in cols)})"
        result.deleted = target.execute(
            f"DELETE FROM {tgt} t USING golive.synced_keys k WHERE k.target = %s AND k.key = {key_t}"
            f" AND NOT EXISTS (SELECT 1 FROM golive_stage s WHERE {same_key})", (table.target,)).rowcount
        result.updated = target.execute(f"DELETE FROM {tgt} t USING golive_stage s WHERE {same_key} AND {differs}").rowcount
        inserted = target.execute(f"INSERT INTO {tgt} ({col_list}) SELECT {col_list} FROM golive_stage s"
                                  f" WHERE NOT EXISTS (SELECT 1 FROM {tgt} t WHERE {same_key})").rowcount
        result.inserted = inserted - result.updated
        result.unchanged = result.read - result.rejected - inserted
        target.execute("DELETE FROM golive.synced_keys WHERE target = %s", (table.target,))
        target.execute(f"INSERT INTO golive.synced_keys SELECT %s, {key_s} FROM golive_stage s", (table.target,))
        target.execute("DROP TABLE golive_stage")
        for key in table.target_key:
            target.execute(f"SELECT setval(seq, GREATEST((SELECT max({_ident(key)}) FROM {tgt}), 1))"
                           f" FROM pg_get_serial_sequence(%s, %s) AS seq WHERE seq IS NOT NULL", (table.target, key))
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _verify(self, source: Source, target: Any, table: TableMap, result: TableResult) -> None:
        """Counts and per-row content digests of the mapped columns, both sides; names differing keys."""
        expected: dict[str, str] = {}
        for row in source.rows(table):
            values = self._transform(table, row, record=False)
            if values is not None:
                key = "\x1f".join(canonical(row[k]) for k in table.key)
                expected[key] = digest(values)
        cols = ", ".join(f"t.{_ident(c)}" for c in table.target_columns)
        rows = target.execute(f"SELECT {_key_expr('t', table.target_key)}, {cols} FROM {_ident(table.target)} t"
                              f" JOIN golive.synced_keys k ON k.target = %s AND k.key = {_key_expr('t', table.target_key)}",
                              (table.target,)).fetchall()
        actual = {row[0]: digest(list(row[1:])) for row in rows}
        differing = sorted(k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k))
        result.verified = not differing
        result.mismatched_keys = [k.replace("\x1f", ",") for k in differing[:20]]

    def verify_only(self, tables: tuple[TableMap, ...]) -> list[TableResult]:
        """Verification without writing: the target as it is against the source now."""
        import psycopg

        source = Source(self.source_url)
        try:
            with psycopg.connect(self.target_url) as target, target.transaction():
                target.execute("SET TRANSACTION READ ONLY")
                found = target.execute("SELECT to_regclass('golive.synced_keys')").fetchone()
                if found is None or found[0] is None:
                    raise GoliveError("the target has no sync yet (no golive.synced_keys)", hint="run `golive sync` first")
                results = []
                for table in tables:
                    result = TableResult(table.target, read=source.count(table))
                    self._verify(source, target, table, result)
                    results.append(result)
        finally:
            source.close()
        return results


def _adapt(value: Any) -> Any:
    if isinstance(value, dict | list):
        from psycopg.types.json import Jsonb

        return Jsonb(value)
    return value
