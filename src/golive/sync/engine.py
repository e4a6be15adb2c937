"""The sync engine: source rows -> transforms -> COPY into a staging table -> merged into the target,
all tables in one target transaction (constraints deferred), pre-checked and verified before commit.

Incremental by default once a table has been synced: rows whose ``changed`` column is at or after
the last watermark (less an overlap window) are read; every source key is read to find deletions.
Rows golive synced are remembered in ``golive.synced_keys``: a key that disappears from the source is
deleted from the target only if golive put it there, so rows created in the new application are
never touched. Changed rows are replaced, unchanged ones left alone, and sequences moved past the
explicit ids. The source is opened read-only (:mod:`golive.sync.source`) and never written.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from golive.errors import GoliveError
from golive.sync.checks import collisions, foreign_rows, orphans
from golive.sync.mapping import Mapping, TableMap
from golive.sync.passwords import hash_format
from golive.sync.source import Source, ident
from golive.sync.transforms import Reject
from golive.sync.verify import canonical, compare, digest

__all__ = ["SyncEngine", "TableResult"]

Progress = Callable[[str, int, int], None]  # (table, done, total)

_STATE = """
CREATE SCHEMA IF NOT EXISTS golive;
CREATE TABLE IF NOT EXISTS golive.synced_keys (target text NOT NULL, key text NOT NULL, PRIMARY KEY (target, key));
CREATE TABLE IF NOT EXISTS golive.sync_state (target text PRIMARY KEY, watermark text, mode text NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now())
"""


@dataclass
class TableResult:
    table: str
    mode: str = "full"
    read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    verified: bool | None = None
    mismatched_keys: list[str] = field(default_factory=list)
    hash_formats: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key_sql(alias: str, columns: tuple[str, ...]) -> str:
    return "concat_ws(E'\\x1f', " + ", ".join(f"{alias}.{ident(c)}::text" for c in columns) + ")"


def _since(watermark: str, overlap: float, pg_source: bool) -> Any:
    """The watermark less the overlap window, in the form the source compares with."""
    try:
        return int(watermark)  # a version counter: no window
    except ValueError:
        pass
    moment = datetime.fromisoformat(watermark) - timedelta(seconds=overlap)
    if pg_source:
        return moment
    return moment.isoformat() if "T" in watermark else str(moment)  # SQLite compares the text


class SyncEngine:
    def __init__(self, source_url: str, target_url: str, mapping: Mapping, *, max_rejects: int = 0,
                 reject_file: Path | None = None, progress: Progress | None = None,
                 media_roots: tuple[Path, ...] = ()) -> None:
        self.source_url, self.target_url, self.mapping = source_url, target_url, mapping
        self.media_roots = media_roots
        self.max_rejects, self.reject_file = max_rejects, reject_file
        self.progress = progress or (lambda table, done, total: None)
        self.rejects: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.expected: dict[str, str] = {}
        self.held_back: Any = None  # the earliest `changed` stamp of a rejected row in the current table

    # -- rows ------------------------------------------------------------------------------------
    def _transform(self, table: TableMap, row: dict[str, Any], record: bool = True) -> list[Any] | None:
        """The target values of one source row, or None when it is rejected (recorded once, with the reason)."""
        out: list[Any] = []
        for column in table.columns:
            try:
                value = column.value(row)
            except Reject as exc:
                self._reject(table, row, column.target, str(exc), record)
                return None
            if isinstance(value, str) and not _storable(value):
                reason = "NUL byte in text" if "\x00" in value else "invalid UTF-8 in text"
                self._reject(table, row, column.target, reason + " (PostgreSQL cannot store it)", record)
                return None
            if record and column.target in table.files and value and self.media_roots \
                    and not any((root / str(value)).is_file() for root in self.media_roots):
                key = ", ".join(f"{k}={row.get(k)!r}" for k in table.key)
                self.problems.append(f"table {table.target}, key {key}, column {column.target}: file {value} is in"
                                     " none of the media folders")
            out.append(value)
        return out + [v for k, v in table.defaults.items() if k not in {c.target for c in table.columns}]

    def _reject(self, table: TableMap, row: dict[str, Any], column: str, reason: str, record: bool) -> None:
        if record:
            key = ", ".join(f"{k}={row.get(k)!r}" for k in table.key)
            self.rejects.append({"table": table.target, "key": key, "column": column, "reason": reason})

    # -- the run ---------------------------------------------------------------------------------
    def run(self, tables: tuple[TableMap, ...], full: bool = False) -> list[TableResult]:
        import psycopg

        source = Source(self.source_url)
        try:
            with psycopg.connect(self.target_url) as target, target.transaction():
                target.execute("SET CONSTRAINTS ALL DEFERRED")
                for statement in filter(str.strip, _STATE.split(";")):
                    target.execute(statement)
                results = [self._table(source, target, t, full) for t in tables]
                self._stop_if_rejected()
                if self.problems:
                    raise GoliveError(f"{len(self.problems)} pre-check problem(s); first: {self.problems[0]}",
                                      hint="fix the source data (or the mapping); nothing was written")
                bad = [r for r in results if not r.verified]
                if bad:
                    raise GoliveError(f"verification failed for {', '.join(r.table for r in bad)} (keys "
                                      f"{'; '.join(', '.join(r.mismatched_keys[:5]) for r in bad)}); nothing was written",
                                      hint="the target was left as it was; check the mapping's transforms")
        finally:
            source.close()
        return results

    def _stop_if_rejected(self) -> None:
        if self.reject_file is not None and self.rejects:
            self.reject_file.parent.mkdir(parents=True, exist_ok=True)
            self.reject_file.write_text("".join(json.dumps(r) + "\n" for r in self.rejects))
        if len(self.rejects) > self.max_rejects:
            first = self.rejects[0]
            raise GoliveError(
                f"{len(self.rejects)} row(s) rejected (max {self.max_rejects}); first: table {first['table']},"
                f" key {first['key']}, column {first['column']}: {first['reason']}",
                hint=f"fix the source or the mapping; all rejects are in {self.reject_file}; nothing was written")

    def _table(self, source: Source, target: Any, table: TableMap, full: bool) -> TableResult:
        started, result = time.monotonic(), TableResult(table.target)
        state = target.execute("SELECT watermark FROM golive.sync_state WHERE target = %s", (table.target,)).fetchone()
        new_watermark = source.max_changed(table) if table.changed else None
        self.held_back = None
        since = None
        if not full and table.changed and state is not None and state[0] is not None:
            result.mode = "incremental"
            since = _since(state[0], self.mapping.options.overlap_seconds, source.pg is not None)
        total = source.count(table)
        self._stage(source, target, table, since, total, result)
        key_s = _key_sql("s", table.target_key)
        self.problems += orphans(target, table, key_s) + collisions(target, table, key_s) + \
            foreign_rows(target, table, key_s)
        self._merge(source, target, table, result, total)
        self._verify(source, target, table, result, staged=since is not None, expected=self.expected)
        if self.held_back is not None:
            new_watermark = self.held_back  # rejected rows (allowed by --max-rejects) are read again next time
        target.execute("INSERT INTO golive.sync_state (target, watermark, mode) VALUES (%s, %s, %s) ON CONFLICT (target)"
                       " DO UPDATE SET watermark = excluded.watermark, mode = excluded.mode, synced_at = now()",
                       (table.target, None if new_watermark is None else canonical(new_watermark).replace("\\N", ""),
                        result.mode))
        target.execute("DROP TABLE golive_stage, golive_gone")
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _stage(self, source: Source, target: Any, table: TableMap, since: Any, total: int, result: TableResult) -> None:
        cols = ", ".join(ident(c) for c in table.target_columns)
        target.execute(f"CREATE TEMP TABLE golive_stage (LIKE {ident(table.target)} INCLUDING DEFAULTS) ON COMMIT DROP")
        hashed = [c for c in table.columns if c.transform_name == "werkzeug_to_django"]
        formats: Counter[str] = Counter()
        self.expected = {}  # key -> digest of the values staged: what verification must find in the target
        with target.cursor().copy(f"COPY golive_stage ({cols}) FROM STDIN") as copy:
            for row in source.rows(table, since):
                result.read += 1
                for column in hashed:
                    formats[hash_format(row[column.sources[0]])] += 1
                values = self._transform(table, row)
                if values is None:
                    result.rejected += 1
                    stamp = row.get(table.changed) if table.changed else None
                    if stamp is not None and (self.held_back is None or stamp < self.held_back):
                        self.held_back = stamp  # the watermark must not pass a row that was not carried over
                else:
                    copy.write_row([_adapt(v) for v in values])
                    self.expected["\x1f".join(canonical(row[k]) for k in table.key)] = digest(values)
                if result.read % 5000 == 0 or result.read == total:
                    self.progress(table.target, result.read, total)  # inside the COPY
        result.hash_formats = dict(formats)
        # keys golive synced earlier that the source no longer has: found in memory, so only they are sent
        synced = {row[0] for row in target.execute("SELECT key FROM golive.synced_keys WHERE target = %s",
                                                   (table.target,))}
        synced.difference_update("\x1f".join(canonical(k) for k in key) for key in source.keys(table))
        target.execute("CREATE TEMP TABLE golive_gone (key text PRIMARY KEY) ON COMMIT DROP")
        with target.cursor().copy("COPY golive_gone (key) FROM STDIN") as copy:
            for key in synced:
                copy.write_row([key])

    def _merge(self, source: Source, target: Any, table: TableMap, result: TableResult, total: int) -> None:
        cols = table.target_columns
        col_list = ", ".join(ident(c) for c in cols)
        tgt = ident(table.target)
        key_t, key_s = _key_sql("t", table.target_key), _key_sql("s", table.target_key)
        same_key = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in table.target_key)
        differs = f"({', '.join('t.' + ident(c) for c in cols)}) IS DISTINCT FROM ({', '.join('s.' + ident(c) for c in cols)})"
        result.deleted = target.execute(
            f"DELETE FROM {tgt} t USING golive_gone g WHERE g.key = {key_t}").rowcount
        result.updated = target.execute(f"DELETE FROM {tgt} t USING golive_stage s WHERE {same_key} AND {differs}").rowcount
        inserted = target.execute(f"INSERT INTO {tgt} ({col_list}) SELECT {col_list} FROM golive_stage s"
                                  f" WHERE NOT EXISTS (SELECT 1 FROM {tgt} t WHERE {same_key})").rowcount
        result.inserted = inserted - result.updated
        result.unchanged = total - result.rejected - inserted
        target.execute("DELETE FROM golive.synced_keys k USING golive_gone g WHERE k.target = %s AND k.key = g.key",
                       (table.target,))
        target.execute(f"INSERT INTO golive.synced_keys SELECT %s, {key_s} FROM golive_stage s ON CONFLICT DO NOTHING",
                       (table.target,))
        for key in table.target_key:
            target.execute(f"SELECT setval(seq, GREATEST((SELECT max({ident(key)}) FROM {tgt}), 1))"
                           " FROM pg_get_serial_sequence(%s, %s) AS seq WHERE seq IS NOT NULL", (table.target, key))

    # -- verification ----------------------------------------------------------------------------
    def _verify(self, source: Source, target: Any, table: TableMap, result: TableResult, staged: bool = False,
                expected: dict[str, str] | None = None) -> None:
        """Digests of the mapped values, source side (transformed) against target side, by key: after a
        load, those computed while staging (after an incremental load, only the staged rows are compared);
        for --verify-only, computed from a fresh read of the source."""
        if expected is None:
            expected = {}
            for row in source.rows(table):
                values = self._transform(table, row, record=False)
                if values is not None:
                    expected["\x1f".join(canonical(row[k]) for k in table.key)] = digest(values)
        key_t = _key_sql("t", table.target_key)
        cols = ", ".join(f"t.{ident(c)}" for c in table.target_columns)
        scope = ""
        if staged:
            scope = f" AND {key_t} IN (SELECT {_key_sql('s', table.target_key)} FROM golive_stage s)"
        rows = target.execute(f"SELECT {key_t}, {cols} FROM {ident(table.target)} t JOIN golive.synced_keys k"
                              f" ON k.target = %s AND k.key = {key_t}{scope}", (table.target,)).fetchall()
        actual = {row[0]: digest(list(row[1:])) for row in rows}
        differing = compare(expected, actual)
        result.verified = not differing
        result.mismatched_keys = [k.replace("\x1f", ",") for k in differing[:20]]

    def verify_only(self, tables: tuple[TableMap, ...]) -> list[TableResult]:
        """Verification without writing: the target as it is against the source now, every synced row."""
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
                    result = TableResult(table.target, mode="verify", read=source.count(table))
                    self._verify(source, target, table, result)
                    results.append(result)
        finally:
            source.close()
        return results


def _storable(text: str) -> bool:
    """No NUL byte, and no lone surrogate (what invalid UTF-8 from SQLite decodes to)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _adapt(value: Any) -> Any:
    if isinstance(value, dict | list):
        from psycopg.types.json import Jsonb

        return Jsonb(value)
    return value
