"""What `golive rollback --restore-data` would throw away, kept before it restores the backup.

The restore puts the target back as the dump taken before the sync saw it. Rows written since — by
the new application after the cutover, or by anyone between the dump and the sync — would be lost with
it, so before restoring golive keeps, in ``<state_dir>/reconcile/<stamp>/`` (owner-only):

- ``<schema>.<table>.ndjson``: every row version the backup's dump did not see, in every table of the
  target (golive's own schema aside), except the ones the sync itself wrote, or another of golive's syncs
  and restores (``golive.writers``). PostgreSQL stamps each row version with the transaction that wrote it
  (``xmin``); the dump ran in an exported snapshot whose text the sync's undo record keeps
  (:mod:`golive.sync.backup`), and the sync's own transaction id is kept too. A row is ``row_to_json`` of
  it: inserted or updated since, the file cannot tell which.

  A restore writes every row again, and so takes its rows' history with it: the rows users wrote that it
  carries back (between an older sync and the newer one whose backup it restores) would pass for golive's
  own, and a later restore of the older backup would throw them away unlisted. So the restore first notes,
  in its own transaction, who wrote each row it may carry (``carry``: a digest of the row and the
  transaction that first wrote it, in ``golive.carried``), and a row a restore wrote is kept when its note
  says a user wrote it after the backup.
- ``deleted.ndjson``: keys golive synced that the target no longer holds (deleted in the new application).
- ``before-restore.dump``: the whole target as it was, by pg_dump in the same snapshot as the files.
- ``summary.json``: the counts, the backup, and how the rows were told apart.

Without the sync's transaction id (a crash between its commit and its undo record) its own rows are kept
too; without the backup's snapshot (a backup taken by an older golive) no row can be told apart, and the
dump is all there is. Either way nothing is thrown away that is not in these files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from golive.errors import first_line
from golive.private import open_private
from golive.sync.backup import NoSpace, dump_in, ms_setting, no_space, snapshot
from golive.sync.source import ident

__all__ = ["CARRY", "CARRY_NOTED", "Kept", "carried", "count_written", "keep", "noted"]

# A row version's transaction as a 64-bit id (``xmin`` is its low 32 bits; ``n`` the next id now):
# the latest id at or before ``n`` with those low bits.
_FULL_XID = "({n} - (({n} - t.xmin::text::bigint) %% 4294967296 + 4294967296) %% 4294967296)"  # (%%: a parameter query)
_NEXT = "(SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"

# what a row's digest is taken under: row_to_json's text of a value depends on these, and the digest taken in
# the restore's session is compared in another, later
_PINNED = (("TimeZone", "UTC"), ("IntervalStyle", "postgres"), ("extra_float_digits", "1"), ("bytea_output", "hex"))
_DIGEST = "md5(row_to_json(t)::text)"

# Run in a restore's own transaction before it drops anything (psql, no parameters: plain %): who first wrote
# each row the target holds that golive did not write — a user's transaction, or the one a note of an earlier
# restore names for a row it carried — into a temporary table that CARRY_NOTED then files in golive.carried.
CARRY = ("DO $golive$ DECLARE r record; saved text[]; mine bigint[]; restores bigint[]; noted boolean; BEGIN"
         " CREATE TEMPORARY TABLE golive_carry (tbl text, xact bigint, digest text) ON COMMIT DROP;"
         " IF to_regclass('golive.writers') IS NULL THEN RETURN; END IF;"
         " mine := ARRAY(SELECT xact FROM golive.writers);"
         " restores := ARRAY(SELECT xact FROM golive.writers WHERE what = 'restore');"
         " noted := to_regclass('golive.carried') IS NOT NULL;"
         f" saved := ARRAY[{', '.join(f'current_setting({k!r})' for k, _ in _PINNED)}];"
         + "".join(f" PERFORM set_config({k!r}, {v!r}, true);" for k, v in _PINNED) +
         " FOR r IN SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
         " WHERE c.relkind = 'r' AND n.nspname NOT IN ('information_schema', 'golive') AND n.nspname NOT LIKE 'pg\\_%'"
         " LOOP"
         " EXECUTE format('INSERT INTO pg_temp.golive_carry SELECT %L, f.xact, md5(row_to_json(f.t)::text)"
         f" FROM (SELECT {_FULL_XID.format(n='x.n')} AS xact, t FROM %I.%I t, (SELECT {_NEXT} AS n) x) f"
         " WHERE NOT f.xact = ANY($1)', r.nspname || '.' || r.relname, r.nspname, r.relname) USING mine;"
         " IF noted AND restores <> '{}' THEN"
         " EXECUTE format('INSERT INTO pg_temp.golive_carry SELECT c.tbl, c.xact, c.digest FROM golive.carried c"
         f" WHERE c.tbl = %L AND c.digest IN (SELECT {_DIGEST} FROM %I.%I t, (SELECT {_NEXT} AS n) x"
         f" WHERE {_FULL_XID.format(n='x.n')} = ANY($1))', r.nspname || '.' || r.relname, r.nspname, r.relname)"
         " USING restores; END IF;"
         " END LOOP;"
         + "".join(f" PERFORM set_config({k!r}, saved[{i + 1}], true);" for i, (k, _) in enumerate(_PINNED)) +
         " END $golive$")

# Run in the restore's transaction after the backup's script (which brought golive's schema back as the backup
# had it): the notes filed, for the rows this restore writes again.
CARRY_NOTED = ("DO $golive$ BEGIN IF to_regclass('golive.writers') IS NOT NULL THEN"
               " CREATE TABLE IF NOT EXISTS golive.carried (tbl text NOT NULL, xact bigint NOT NULL, digest text NOT NULL,"
               " PRIMARY KEY (tbl, xact, digest));"
               " INSERT INTO golive.carried SELECT DISTINCT tbl, xact, digest FROM pg_temp.golive_carry"
               " ON CONFLICT DO NOTHING; END IF; END $golive$")


@dataclass
class Kept:
    directory: Path | None  # None: nothing to keep (no dump asked for, no row written or deleted since)
    written: dict[str, int] = field(default_factory=dict)  # "schema.table" -> rows written since the backup
    deleted: dict[str, int] = field(default_factory=dict)  # target table -> synced keys no longer there
    told_apart: bool = True  # False: no backup snapshot; only the dump keeps what was there
    dumped: bool = True

    def describe(self) -> str:
        rows = sum(self.written.values())
        parts = [f"{rows} row(s) written since the backup" + (
            f" ({', '.join(f'{t} {n}' for t, n in sorted(self.written.items()))})" if rows else "")]
        if self.deleted:
            parts.append(f"{sum(self.deleted.values())} synced row(s) deleted since ("
                         + ", ".join(f"{t} {n}" for t, n in sorted(self.deleted.items())) + ")")
        if not self.told_apart:
            parts = ["the backup has no snapshot to tell rows apart (taken by an older golive)" +
                     (": the whole target" if self.dumped else "")]
        if self.directory is None:
            return "; ".join(parts)
        return "; ".join(parts) + (", and the target as it was," if self.dumped else "") + f" kept in {self.directory}"


def keep(url: str, backup_snapshot: str | None, sync_xact: int | None, keys: dict[str, tuple[str, ...]],
         root: Path, lock_timeout: float = 30.0, dump: bool = True, dumps_kept: int | None = None,
         checkpoint: Callable[[], None] = lambda: None) -> Kept:
    """Write what a restore of the backup would lose into a new folder under ``root``. ``keys``: each
    synced target table's key columns (for the deleted synced keys). Without ``dump`` (a rollback that
    leaves the data: the rows only, for reconciliation) no folder is left when there is nothing to keep.
    ``dumps_kept``: only the newest so many ``before-restore.dump`` files stay (drills restore often); the
    row files always do. ``checkpoint``: called with the rows written, before the deleted keys and the summary
    (a drill's fault point). The folder is written as ``<stamp>.partial`` and gets its name once complete: one that a
    killed golive left half written goes with the next call (the run lock is held: no other is being written)."""
    for left in root.glob("*.partial"):
        shutil.rmtree(left, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    directory = root / f"{stamp}.partial"
    kept = Kept(directory, told_apart=backup_snapshot is not None, dumped=dump)
    try:
        directory.mkdir(parents=True, mode=0o700)
        _keep(url, backup_snapshot, sync_xact, keys, kept, directory, lock_timeout, dump, checkpoint)
        if not dump and not kept.written and not kept.deleted:
            shutil.rmtree(directory)
            kept.directory = None
            return kept
        summary = {"backup_snapshot": backup_snapshot, "sync_transaction": sync_xact, "written": kept.written,
                   "deleted": kept.deleted, "sync_rows_included": backup_snapshot is not None and sync_xact is None}
        _write(directory / "summary.json", [json.dumps(summary, indent=2)])
        kept.directory = directory.rename(root / stamp)
    except BaseException as exc:  # (nothing is restored then, the rows stay in the target: a half-written folder misleads)
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, OSError) and no_space(exc):
            raise NoSpace("keeping what the restore replaces", root, first_line(exc)) from None
        raise
    if dump and dumps_kept is not None:
        for old in sorted(root.glob("*/before-restore.dump"))[:-dumps_kept]:
            if _told_apart(old.parent):  # (where rows could not be told apart, the dump is all there is)
                old.unlink()
    return kept


def _told_apart(folder: Path) -> bool:
    try:
        return json.loads((folder / "summary.json").read_text()).get("backup_snapshot") is not None
    except (OSError, ValueError):
        return False


def _keep(url: str, backup_snapshot: str | None, sync_xact: int | None, keys: dict[str, tuple[str, ...]], kept: Kept,
          directory: Path, lock_timeout: float, dump: bool, checkpoint: Callable[[], None]) -> None:
    with snapshot(url, lock_timeout) as (conn, exported, _):
        if dump:
            dump_in(url, exported, directory / "before-restore.dump", lock_timeout, full=directory.parent)
        if backup_snapshot is not None:
            writers = _writers(conn)
            noted_in, restores = noted(conn, backup_snapshot)
            for schema, table in _tables(conn):
                rewritten = carried(conn, schema, table, backup_snapshot, noted_in, restores)
                written = _written(conn, schema, table, backup_snapshot, sync_xact, writers, rewritten, directory)
                if written:
                    kept.written[f"{schema}.{table}"] = written
        checkpoint()
        kept.deleted = _deleted(conn, keys, directory)


def _since(schema: str, table: str, backup_snapshot: str, sync_xact: int | None, writers: list[int],
           rewritten: list[str], after: str | None = None) -> tuple[str, dict[str, Any]]:
    """FROM and WHERE (and their parameters) for the rows of one table whose version the backup's snapshot
    did not see and neither the sync nor another of golive's transactions (``writers``: its syncs, and its
    restores, which write every row) wrote — or that a restore wrote again for a user (``rewritten``: their
    ctids, :func:`carried`). ``after``: only the rows a restore of the backup with that snapshot would bring back
    (a rollback's plan, when a newer sync's data rollback runs first)."""
    full = _FULL_XID.format(n="x.n")
    # cheap tests first, on the 32-bit xid: a row older than the snapshot's xmin was seen by the dump (rows of
    # xmin 1 or 2, bootstrap or frozen before 9.4, are of age INT_MAX: older than any; rows frozen since keep
    # their xmin); the sync's own rows are most of what is left
    own = " AND t.xmin <> (%(own)s::bigint %% 4294967296)::text::xid" if sync_xact is not None else ""
    others = f" AND NOT ({full} = ANY(%(writers)s::bigint[]))" if writers else ""
    written = (f"age(t.xmin) <= age(%(oldest)s::text::xid){own}"
               f" AND NOT pg_visible_in_snapshot({full}::text::xid8, %(snapshot)s::pg_snapshot){others}")
    if rewritten:
        written = f"(({written}) OR t.ctid = ANY(%(carried)s::text[]::tid[]))"
    then = f" AND pg_visible_in_snapshot({full}::text::xid8, %(after)s::pg_snapshot)" if after else ""
    return (f" FROM {ident(schema)}.{ident(table)} t, (SELECT {_NEXT} AS n) x WHERE {written}{then}",
            {"own": sync_xact, "oldest": int(backup_snapshot.split(":")[0]) % 2**32, "snapshot": backup_snapshot,
             "writers": writers, "carried": rewritten, "after": after})


def carried(conn: Any, schema: str, table: str, snapshot: str, noted: set[str], restores: list[int]) -> list[str]:
    """The ctids of the rows of one table a restore wrote again for a user who wrote them after ``snapshot``
    (a backup's, or the one golive keeps track since: its note in ``golive.carried``); ``noted``: the tables
    with such notes (:func:`noted`)."""
    if f"{schema}.{table}" not in noted or not restores:
        return []
    saved = [conn.execute("SELECT current_setting(%s)", (k,)).fetchone()[0] for k, _ in _PINNED]
    for k, v in _PINNED:
        conn.execute("SELECT set_config(%s, %s, false)", (k, v))
    try:
        return [r[0] for r in conn.execute(
            f"SELECT t.ctid::text FROM {ident(schema)}.{ident(table)} t, (SELECT {_NEXT} AS n) x"
            f" WHERE {_FULL_XID.format(n='x.n')} = ANY(%(restores)s::bigint[]) AND {_DIGEST} IN (SELECT c.digest"
            " FROM golive.carried c WHERE c.tbl = %(tbl)s"
            " AND NOT pg_visible_in_snapshot(c.xact::text::xid8, %(snapshot)s::pg_snapshot))",
            {"restores": restores, "tbl": f"{schema}.{table}", "snapshot": snapshot})]
    finally:
        for (k, _), v in zip(_PINNED, saved, strict=True):
            conn.execute("SELECT set_config(%s, %s, false)", (k, v))


def noted(conn: Any, backup_snapshot: str) -> tuple[set[str], list[int]]:
    """The tables with rows a restore carried for a user who wrote them after the backup (or the snapshot
    golive keeps track since), and golive's restores (whose rows those are)."""
    if conn.execute("SELECT to_regclass('golive.carried')").fetchone()[0] is None:
        return set(), []
    tables = {r[0] for r in conn.execute(
        "SELECT DISTINCT tbl FROM golive.carried WHERE NOT pg_visible_in_snapshot(xact::text::xid8, %s::pg_snapshot)",
        (backup_snapshot,))}
    return tables, [int(r[0]) for r in conn.execute("SELECT xact FROM golive.writers WHERE what = 'restore'")]


def _writers(conn: Any) -> list[int]:
    """The transactions golive wrote the target in (:mod:`golive.sync.conflicts`): a restore's rows are golive's
    own, not written by the new application, though the backup being restored did not see them."""
    if conn.execute("SELECT to_regclass('golive.writers')").fetchone()[0] is None:
        return []
    return [int(r[0]) for r in conn.execute("SELECT xact FROM golive.writers")]


def _tables(conn: Any) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname NOT IN ('information_schema', 'golive')"
        " AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2").fetchall()]


def count_written(url: str, backup_snapshot: str, sync_xact: int | None, lock_timeout: float = 30.0,
                  after: str | None = None) -> dict[str, int]:
    """How many rows each table holds that were written since the backup (not by the sync): what a rollback
    would list, counted without writing anything (for its plan). ``after``: the snapshot of a newer sync's
    backup a data rollback restores first — counted then is what that restore brings back."""
    from psycopg import IsolationLevel

    from golive.db import connect

    counts = {}
    with connect(url, what="target database") as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ  # (one snapshot: the ctids found hold)
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (ms_setting(lock_timeout),))
        with conn.transaction():
            writers = _writers(conn)
            noted_in, restores = noted(conn, backup_snapshot)
            for schema, table in _tables(conn):
                rewritten = carried(conn, schema, table, backup_snapshot, noted_in, restores)
                where, params = _since(schema, table, backup_snapshot, sync_xact, writers, rewritten, after)
                found = conn.execute(f"SELECT count(*){where}", params).fetchone()[0]
                if found:
                    counts[f"{schema}.{table}"] = int(found)
    return counts


def _written(conn: Any, schema: str, table: str, backup_snapshot: str, sync_xact: int | None, writers: list[int],
             rewritten: list[str], directory: Path) -> int:
    """Rows of one table written since the backup (``_since``), into ``<schema>.<table>.ndjson``."""
    where, params = _since(schema, table, backup_snapshot, sync_xact, writers, rewritten)
    out, count = None, 0
    with conn.cursor(name="golive_reconcile") as rows:  # (streamed: the table may be large, the rows few)
        rows.execute(f"SELECT row_to_json(t)::text{where}", params)
        try:
            for (line,) in rows:
                if out is None:
                    out = _open(directory / f"{schema}.{table}.ndjson")
                out.write(line + "\n")
                count += 1
        finally:
            if out is not None:
                out.close()
    return count


def _deleted(conn: Any, keys: dict[str, tuple[str, ...]], directory: Path) -> dict[str, int]:
    """Keys golive synced (its state, as the snapshot sees it) that their target table no longer holds."""
    from golive.sync import state
    from golive.sync.pgtypes import column_types
    from golive.sync.verify import key_sql

    if not state.exists(conn):
        return {}
    lines, counts = [], {}
    for target, blob in conn.execute("SELECT target, synced_keys FROM golive.sync_state ORDER BY target").fetchall():
        columns = keys.get(target)
        synced = state.unpack_keys(blob)
        if columns is None or not synced:
            continue  # (a table the mapping no longer names: its key columns are not known)
        ints = isinstance(next(iter(synced)), int)
        key = f"t.{ident(columns[0])}" if ints and len(columns) == 1 else \
            key_sql("t", columns, {c: kind.typname for c, kind in column_types(conn, target).items()})
        present = {r[0] for r in conn.execute(f"SELECT {key} FROM {ident(target)} t")}
        gone = sorted(synced - present, key=str)
        if gone:
            counts[target] = len(gone)
            lines += [json.dumps({"table": target, "key": str(k).replace("\x1f", ",")}) for k in gone]
    if lines:
        _write(directory / "deleted.ndjson", lines)
    return counts


def _open(path: Path) -> IO[str]:
    return open_private(path, exclusive=True)


def _write(path: Path, lines: list[str]) -> None:
    with _open(path) as out:
        out.writelines(line + "\n" for line in lines)
