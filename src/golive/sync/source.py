"""The old database, opened read-only: SQLite with ``mode=ro``, or PostgreSQL in one
``REPEATABLE READ READ ONLY`` transaction, so every table is read from the same snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from golive.errors import GoliveError, first_line
from golive.sync.mapping import TableMap
from golive.sync.stamps import SqliteSince, stamp_error

__all__ = ["Source", "ident", "unlocked"]

BUSY_SECONDS = 5.0  # how long a SQLite read waits for another process's write lock


@contextmanager
def unlocked(url: str) -> Iterator[None]:
    """A SQLite source another process kept locked past ``BUSY_SECONDS`` (the old application writing):
    one line naming it, not a traceback."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "database is locked" not in str(exc):
            raise
        raise _locked(url) from None


def _locked(url: str) -> GoliveError:
    return GoliveError(f"the source database {url.removeprefix('sqlite:///')} stayed locked by another process for"
                       f" {BUSY_SECONDS:g} s (the old application writing?)",
                       hint="freeze its writes first (`golive freeze on`), or run again when it is quiet")


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_PG_PARAM = "\x00golive-param\x00"  # golive's own placeholder in a PostgreSQL source's statements (see _pg_sql)


def _pg_sql(sql: str) -> str:
    """A statement for a PostgreSQL source as psycopg takes it with parameters (every one goes with them, if only
    ``()``): a ``%`` of the mapping's own — a query's ``LIKE 'a%'``, a column named ``rate%`` — doubled, so it is
    not read as a placeholder; golive's placeholders made ``%s``."""
    return sql.replace("%", "%%").replace(_PG_PARAM, "%s")


def table_ident(name: str) -> str:
    """A PostgreSQL source table's name as SQL: ``schema.table`` is a table in another schema, each part taken as
    written (``Legacy.Items``: "Legacy"."Items")."""
    schema, dot, table = name.partition(".")
    return f"{ident(schema)}.{ident(table)}" if dot and schema and table else ident(name)


def _text(raw: bytes) -> str:
    # invalid UTF-8 survives as surrogates, so the row can be rejected with a reason instead of crashing
    return raw.decode("utf-8", errors="surrogateescape")


def _as_text_if_unreadable(inner: type) -> type:
    """A psycopg text loader: ``inner``'s value, or the text itself when ``inner`` cannot load it."""
    import psycopg
    from psycopg.adapt import Loader

    class AsTextIfUnreadable(Loader):
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._inner = inner(oid, context)

        def load(self, data: Any) -> Any:
            try:
                return self._inner.load(data)
            except psycopg.DataError:
                return bytes(data).decode()

    return AsTextIfUnreadable


# a PostgreSQL source's `changed` column types golive compares with a watermark (date-times, dates, numbers)
_STAMP_TYPES = {1114, 1184, 1082, 20, 21, 23, 1700, 700, 701}


def _wal(path: Path) -> bool:
    """Whether the SQLite file is in WAL mode (its header's read and write versions are 2)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    return head.startswith(b"SQLite format 3\0") and head[18:20] == b"\x02\x02"


def _type_name(conn: Any, oid: int | None) -> str:
    info = conn.adapters.types.get(oid) if oid is not None else None
    return info.name if info is not None else f"oid {oid}"


class Source:
    def __init__(self, url: str) -> None:
        self.url = url
        self.tolerant = False  # reading text that is not valid UTF-8 (see tolerate_invalid_text)
        self.lenient_dates = False  # reading dates Python cannot hold as their text (see tolerate_unreadable_dates)
        self._dotted: dict[str, str] = {}  # a PostgreSQL source's dotted table names as SQL (see _origin)
        self._cursors = 0  # the server-side cursors opened (each named apart)
        self.sqlite: sqlite3.Connection | None = None
        self.pg: Any = None
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                from golive.errors import ConfigError

                raise ConfigError(f"source database {path} does not exist", hint="check [source].url")
            # (a sync reads the rows' digests again in a thread while the server merges: one reader at a time)
            self.sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                                          timeout=BUSY_SECONDS)
            self.sqlite.row_factory = sqlite3.Row
            self.sqlite.execute("BEGIN")  # one read snapshot for every table
            try:
                self.sqlite.execute("SELECT count(*) FROM sqlite_master").fetchone()  # (a file that is no database)
            except sqlite3.DatabaseError as exc:
                self.sqlite.close()
                if "database is locked" in str(exc):
                    raise _locked(url) from None
                if _wal(path) and not path.with_name(path.name + "-shm").exists():
                    # (WAL: even a reader makes the -shm file when none is there: a folder this user may not write
                    # to, or a read-only mount, is "attempt to write a readonly database" or "unable to open")
                    raise GoliveError(f"source database {path} cannot be read: {exc} — it is in WAL mode, and SQLite"
                                      f" must create {path.name}-shm beside it to read it, which it cannot here",
                                      hint=f"run golive as a user that may write to {path.parent} (the old"
                                           " application's), on a writable mount of it") from None
                raise GoliveError(f"source database {path} cannot be read: {exc}",
                                  hint="check [source].url: it must name the old application's SQLite file") from None
        else:
            from psycopg.rows import dict_row
            from psycopg.types.string import TextLoader

            from golive.db import open_connection

            self.pg = open_connection(url, autocommit=False, what="source database", row_factory=dict_row)
            # as written: json/jsonb loaded as Python values made a JSON string "x" arrive as x and 1.00000000000000000001
            # as 1.0; an interval loaded as a timedelta (30-day months, 365-day years) made '1 mon' 30 days
            for name in ("json", "jsonb", "interval"):
                self.pg.adapters.register_loader(name, TextLoader)
            self.pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    @property
    def placeholder(self) -> str:
        return "?" if self.sqlite is not None else _PG_PARAM

    def _origin(self, table: TableMap) -> str:
        if not table.source:
            return f"({table.query}) AS q"
        if self.pg is None or "." not in table.source:  # (SQLite: one file, a dotted name is one table's)
            return ident(table.source)
        # PostgreSQL: "schema.table", unless a table of the search path has the dotted name itself (asked once)
        if table.source not in self._dotted:
            named = self.pg.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (ident(table.source),)).fetchone()
            self._dotted[table.source] = ident(table.source) if named and named["found"] else table_ident(table.source)
        return self._dotted[table.source]

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
        if self.sqlite is not None:
            for row in self.sqlite.execute(sql, params):
                yield dict(row)
        else:
            with self.pg.cursor(name="golive_read") as cur:
                cur.itersize = 5000
                cur.execute(_pg_sql(sql), params)
                yield from cur

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = next(self._query(sql, params), None)
        return next(iter(row.values())) if row else None

    def check(self, table: TableMap) -> None:
        """Every column the mapping reads exists in the source. Needed before any read: SQLite takes a
        double-quoted name that is no column for a string literal, so a column the old application
        renamed would sync its own name into every row, and verification would agree."""
        from golive.errors import ConfigError

        what = f"source table {table.source}" if table.source else f"the query for {table.target}"
        kinds: dict[str, int] = {}  # (a PostgreSQL source's column types)
        try:
            if self.sqlite is not None:
                found = [d[0] for d in self.sqlite.execute(f"SELECT * FROM {self._origin(table)} LIMIT 0").description]
            else:
                with self.pg.transaction(), self.pg.cursor() as cur:  # (a savepoint: an error keeps the snapshot)
                    cur.execute(_pg_sql(f"SELECT * FROM {self._origin(table)} LIMIT 0"), ())
                    found = [d.name for d in cur.description or []]
                    kinds = {d.name: d.type_code for d in cur.description or []}
        except Exception as exc:  # no such table, or a query that does not run
            if "locked" in str(exc):
                raise
            raise ConfigError(f"mapping: {what} cannot be read: {first_line(exc)}",
                              hint="fix mapping.toml, or [source].url if it names the wrong database") from None
        fold: Callable[[str], str] = str.lower if self.sqlite is not None else str  # (SQLite: names ignore case)
        have = {fold(name) for name in found}
        missing = [c for c in table.source_columns if fold(c) not in have]
        if missing:
            raise ConfigError(f"mapping: {what} has no column {', '.join(missing)} (it has: {', '.join(found)})",
                              hint=f"fix [[table]] {table.target} in mapping.toml: the old application's schema"
                                   " differs from the mapping")
        if self.pg is not None and table.changed and kinds.get(table.changed) not in _STAMP_TYPES:
            # (compared with the watermark by PostgreSQL: text against a date-time is an error, and text against
            # text misorders `2024-06-01 10:00` and `2024-06-01T09:00` — which only the next sync would show)
            raise ConfigError(f"mapping: {what}: its `changed` column {table.changed} is of type"
                              f" {_type_name(self.pg, kinds.get(table.changed))}, not a date-time or number",
                              hint=f"in [[table]] {table.target}: name a timestamp column as `changed`, or use a query"
                                   f" that casts it (query = \"SELECT …, {table.changed}::timestamptz AS {table.changed}"
                                   " …\"), or leave `changed` out (every row is then compared)")

    def count(self, table: TableMap) -> int:
        return int(self.scalar(f"SELECT count(*) AS n FROM {self._origin(table)}") or 0)

    def count_and_key_sum(self, table: TableMap) -> tuple[int, int | None]:
        """The row count, and the sum of the (one, integer) key column's values: None when it cannot be summed
        exactly (text keys in PostgreSQL, a sum past 64 bits in SQLite)."""
        sql = f"SELECT count(*) AS n, sum({ident(table.key[0])}) AS s FROM {self._origin(table)}"
        try:
            if self.sqlite is not None:
                row = next(self._query(sql))
            else:
                with self.pg.transaction(), self.pg.cursor() as cur:  # (a savepoint: an error keeps the snapshot)
                    row = dict(cur.execute(_pg_sql(sql), ()).fetchone() or {"n": 0, "s": None})
        except Exception as exc:  # (SQLite: "integer overflow"; PostgreSQL: sum(text) does not exist)
            if "locked" in str(exc) or "interrupt" in str(exc):
                raise
            return self.count(table), None
        total = row["s"]
        exact = isinstance(total, int) or (total is not None and not isinstance(total, float) and total == int(total))
        return int(row["n"] or 0), int(total) if exact else (0 if total is None else None)

    def count_and_max_changed(self, table: TableMap) -> tuple[int, Any]:
        """The row count and the newest ``changed`` stamp (None without one), in one scan."""
        newest = f"max({ident(table.changed)})" if table.changed else "NULL"
        row = next(self._query(f"SELECT count(*) AS n, {newest} AS m FROM {self._origin(table)}"))
        return int(row["n"] or 0), row["m"]

    def batches(self, table: TableMap, since: Any = None, size: int = 5000, columns: str | None = None,
                ordered: bool = True, ranges: list[tuple[Any, Any]] | None = None) -> Iterator[list[tuple[Any, ...]]]:
        """The mapped columns in key order, as lists of tuples in ``table.source_columns`` order; with
        ``since``, only rows changed at or after it (or never stamped); with ``ranges`` (a table keyed by
        one column), only rows whose key is in one of the ``[low, high)`` ranges (None: unbounded)."""
        cols = columns or ", ".join(ident(c) for c in table.source_columns)
        conditions, params = [], list[Any]()
        flagged = isinstance(since, SqliteSince) and table.changed is not None
        if isinstance(since, SqliteSince) and table.changed:  # compared by time (golive.sync.stamps)
            conditions.append(since.condition)
            params += [self.scalar("SELECT julianday(?) AS d", (p,)) for p in since.params] \
                if since.kind == "date-time" else since.params
            cols += f", {since.flag}"
        elif since is not None and table.changed:
            conditions.append(f"({ident(table.changed)} IS NULL OR {ident(table.changed)} >= {self.placeholder})")
            params.append(since)
        if ranges is not None:
            key, either = ident(table.key[0]), []
            for low, high in ranges:
                parts = [f"{key} >= {self.placeholder}"] * (low is not None) + \
                    [f"{key} < {self.placeholder}"] * (high is not None)
                either.append("(" + (" AND ".join(parts) or "true") + ")")
                params += [v for v in (low, high) if v is not None]
            conditions.append("(" + (" OR ".join(either) or "false") + ")")
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        order = ", ".join(ident(k) for k in table.key)
        sql = f"SELECT {cols} FROM {self._origin(table)}{where}" + (f" ORDER BY {order}" if ordered else "")
        if self.sqlite is not None:
            cursor = self.sqlite.cursor()
            cursor.row_factory = None  # plain tuples
            cursor.execute(sql, tuple(params))
            while batch := cursor.fetchmany(size):
                yield self._unflagged(table, since, batch) if flagged else batch
            return
        from psycopg.rows import tuple_row

        self._cursors += 1  # (its own name: a read begun while another is open — the keys read again to name a key
        # the rows had twice — was "cursor golive_batches already exists")
        with self.pg.cursor(name=f"golive_batches_{self._cursors}", row_factory=tuple_row) as cur:
            cur.itersize = size
            cur.execute(_pg_sql(sql), tuple(params))
            while batch := cur.fetchmany(size):
                yield batch

    @staticmethod
    def _unflagged(table: TableMap, since: SqliteSince, batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows without their last column, the flag of a ``changed`` stamp that cannot be compared with the
        watermark (the incremental read's few rows): a flagged one stops the sync, naming it."""
        bad = next((row for row in batch if row[-1]), None)
        if bad is not None:
            assert table.changed is not None
            at = table.source_columns.index
            key = ", ".join(f"{k}={bad[at(k)]!r}" for k in table.key)
            raise stamp_error(table.label(), table.changed, since.kind, key, bad[at(table.changed)])
        return [row[:-1] for row in batch]

    def digest_batches(self, table: TableMap, keys: list[Any] | None = None,
                       size: int = 5000) -> Iterator[list[tuple[Any, int]]]:
        """A PostgreSQL source's rows as (key, 64-bit hash of the row's text), in key order, hashed by the
        source server (all rows, or those with the ``keys`` given): what :mod:`golive.sync.digests` keeps
        for such a source."""
        from psycopg.rows import tuple_row

        key = ident(table.key[0])
        cols = ", ".join(ident(c) for c in table.source_columns)
        where = f" WHERE {key} = ANY({_PG_PARAM})" if keys is not None else ""
        with self.pg.cursor(name="golive_digests", row_factory=tuple_row) as cur:
            cur.itersize = size
            cur.execute(_pg_sql(f"SELECT {key}, hashtextextended(ROW({cols})::text, 0) FROM {self._origin(table)}{where}"
                                f" ORDER BY {key}"), (keys,) if keys is not None else ())
            while batch := cur.fetchmany(size):
                yield batch

    def tolerate_invalid_text(self) -> None:
        """Read text that is not valid UTF-8 (as surrogates, so the row is rejected with a reason) — at the
        cost of a Python call per value, so only once a table was found to need it."""
        if self.sqlite is not None:
            self.tolerant = True
            self.sqlite.text_factory = _text

    def tolerate_unreadable_dates(self) -> None:
        """Read a PostgreSQL source's dates and date-times that Python cannot hold (``infinity``, years past
        9999) as their text, so their rows are rejected naming key and column (or carried over by a custom
        transform) instead of stopping the read — a Python call per value, so only once a table needed it."""
        if self.pg is None or self.lenient_dates:
            return
        from psycopg.pq import Format

        for name in ("date", "timestamp", "timestamptz"):
            oid = self.pg.adapters.types[name].oid
            self.pg.adapters.register_loader(oid, _as_text_if_unreadable(self.pg.adapters.get_loader(oid, Format.TEXT)))
        self.lenient_dates = True

    def keys(self, table: TableMap) -> Iterator[tuple[Any, ...]]:
        cols = ", ".join(ident(k) for k in table.key)
        for batch in self.batches(table, columns=cols, ordered=False):
            yield from batch

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            self.pg.close()
