"""Rows someone else changed in the new database since golive wrote them, which a sync would overwrite.

Once the new application (or a tester, or an admin) has changed a synced row, a sync that copies the
source's version over it loses that write: a table compared by content (no ``changed`` column)
"updates" every such row back, a synced row deleted there is inserted again, and any sync deletes a
synced key the source no longer has. golive tells these rows apart by who wrote them: PostgreSQL stamps
each row version with its transaction (``xmin``), and golive keeps, in ``golive.writers``, the
transaction of every sync and restore it made, and in ``golive.tracking`` the snapshot from which it
began keeping them (rows it saw committed are taken as golive's: the history before is not known). A
synced row whose version was written by none of those transactions was changed by someone else — and so
was one a restore wrote again for someone else (a restore writes every row; it notes who first wrote
each in ``golive.carried``). By default the sync stops before it writes anything and names them; with
``--source-wins`` (before the cutover: testers' edits) it overwrites them and first keeps their versions
in ``<state_dir>/overwritten/<stamp>/<table>.ndjson``. The engine locks each table against other writers
(``SHARE ROW EXCLUSIVE``) before it looks, so no write commits between the look and the merge.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from golive.private import open_private
from golive.sync.mapping import TableMap
from golive.sync.pgtypes import rows_differ
from golive.sync.source import ident
from golive.sync.verify import key_sql

__all__ = ["RESTORE_MARK", "Tracking", "changed_by_others", "describe", "ensure", "keep_versions", "record_writer", "stamp",
           "tracking"]

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS golive.writers (xact bigint PRIMARY KEY, what text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS golive.tracking (since pg_snapshot NOT NULL)",
]

# the row version's transaction as a 64-bit id: the latest id at or before the next one with xmin's low bits
_FULL = "(x.n - ((x.n - t.xmin::text::bigint) %% 4294967296 + 4294967296) %% 4294967296)"  # (%%: with parameters)
_NEXT = "(SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"

# a statement for the restore's own transaction (`psql --single-transaction`): the rows it writes are golive's
RESTORE_MARK = ("DO $$ BEGIN IF to_regclass('golive.writers') IS NOT NULL THEN INSERT INTO golive.writers (xact, what)"
                " VALUES (pg_current_xact_id()::text::bigint, 'restore') ON CONFLICT DO NOTHING; END IF; END $$")


class Tracking:
    """Since when, and by which transactions, golive wrote to the target; and, after a restore, which tables
    hold rows it wrote again for someone else (``noted``, :mod:`golive.sync.reconcile`)."""

    def __init__(self, since: str, writers: list[int], noted: set[str] | None = None,
                 restores: list[int] | None = None) -> None:
        self.since, self.writers = since, writers
        self.noted, self.restores = noted or set(), restores or []

    def carried(self, conn: Any, target: str) -> list[str]:
        """The ctids of the rows of table ``target`` a restore wrote again that someone else had written (since
        golive keeps track): the restore's transaction is golive's, the rows are not."""
        if not self.noted:
            return []
        from golive.sync.reconcile import carried

        found = conn.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                             " WHERE c.oid = to_regclass(%s)", (ident(target),)).fetchone()
        return [] if found is None else carried(conn, found[0], found[1], self.since, self.noted, self.restores)

    def condition(self, carried: list[str] | None = None) -> tuple[str, dict[str, Any]]:
        """FROM … WHERE for a table aliased ``t`` whose row version golive did not write (``x``: the next id);
        ``carried``: the ctids of rows a restore wrote for someone else (:meth:`carried`)."""
        # cheap first: a version older than the snapshot's xmin was committed before golive began keeping track
        oldest = int(self.since.split(":")[0]) % 2**32
        others = (f"age(t.xmin) <= age(%(oldest)s::text::xid)"
                  f" AND NOT ({_FULL} = ANY(%(writers)s::bigint[]))"
                  f" AND NOT pg_visible_in_snapshot({_FULL}::text::xid8, %(since)s::pg_snapshot)")
        if carried:
            others = f"(({others}) OR t.ctid = ANY(%(carried)s::text[]::tid[]))"
        return (f", (SELECT {_NEXT} AS n) x WHERE {others}",
                {"oldest": oldest, "writers": self.writers, "since": self.since, "carried": carried or []})


def ensure(conn: Any) -> None:
    """The two tables; the first time, the snapshot from which golive keeps track (this transaction's)."""
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO golive.tracking (since) SELECT pg_current_snapshot()"
                 " WHERE NOT EXISTS (SELECT 1 FROM golive.tracking)")


def record_writer(conn: Any, what: str) -> None:
    """This transaction writes on golive's behalf (a sync): its rows are not someone else's."""
    conn.execute("INSERT INTO golive.writers (xact, what) VALUES (pg_current_xact_id()::text::bigint, %s)"
                 " ON CONFLICT DO NOTHING", (what,))


def tracking(conn: Any) -> Tracking | None:
    row = conn.execute("SELECT since::text FROM golive.tracking LIMIT 1").fetchone()
    if row is None:
        return None
    from golive.sync.reconcile import noted

    since = str(row[0])
    return Tracking(since, [int(r[0]) for r in conn.execute("SELECT xact FROM golive.writers")], *noted(conn, since))


def changed_by_others(conn: Any, table: TableMap, track: Tracking, gone: set[Any], synced: AbstractSet[Any],
                      int_key: bool, incremental: bool, typnames: dict[str, str], limit: int = 100_000) -> list[Any]:
    """Synced keys whose row someone else changed and this sync would overwrite (its staged version
    differs: ``golive_stage``) or delete (``gone``). An incremental sync
    staged few rows: they are joined first; a full one staged them all: the table is scanned for others'
    versions first (usually none)."""
    tgt, same_key = ident(table.target), " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in table.target_key)
    key_t = f"t.{ident(table.target_key[0])}" if int_key else key_sql("t", table.target_key, typnames)
    where, params = track.condition(track.carried(conn, table.target))
    differs = rows_differ("t", "s", table.target_columns, typnames)
    found: list[Any] = []
    if incremental:
        found += [r[0] for r in conn.execute(
            f"SELECT {key_t} FROM {tgt} t JOIN golive_stage s ON {same_key}{where} AND {differs} LIMIT {limit}",
            params)]
    else:
        others = [r[0] for r in conn.execute(f"SELECT {key_t} FROM {tgt} t{where} LIMIT {limit}", params)]
        if others:
            found += [r[0] for r in conn.execute(
                f"SELECT {key_t} FROM {tgt} t JOIN golive_stage s ON {same_key}"
                f" WHERE {key_t} = ANY(%(others)s) AND {differs}", {"others": others})]
    if gone:
        found += [r[0] for r in conn.execute(
            f"SELECT {key_t} FROM {tgt} t{where} AND {key_t} = ANY(%(gone)s) LIMIT {limit}",
            {**params, "gone": sorted(gone)})]
    # (a synced row deleted there, which the merge would insert again, is found by the merge itself: the keys
    # it inserts come back to the engine, a few on a sync into a table synced before)
    return sorted(k for k in set(found) if k in synced)  # (rows the new app made itself: checks.foreign_rows)


def keep_versions(conn: Any, table: TableMap, keys: list[Any], int_key: bool, folder: Path,
                  typnames: dict[str, str]) -> Path:
    """The target's versions of ``keys`` (row_to_json), before a --source-wins sync overwrites them."""
    path = folder / f"{table.target}.ndjson"
    key_t = f"t.{ident(table.target_key[0])}" if int_key else key_sql("t", table.target_key, typnames)
    with open_private(path) as out:
        for (row,) in conn.execute(f"SELECT row_to_json(t)::text FROM {ident(table.target)} t"
                                   f" WHERE {key_t} = ANY(%s) ORDER BY 1", (keys,)):
            out.write(row + "\n")
    return path


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def describe(keys: list[Any]) -> str:
    shown = ", ".join(str(k).replace("\x1f", ",") for k in keys[:5])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > 5 else "")
