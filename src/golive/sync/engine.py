"""The sync engine: source rows -> transforms -> COPY into a staging table -> merged into the target,
all tables in one target transaction (constraints deferred), pre-checked and verified before commit.

Rows move in batches, column by column (:mod:`golive.sync.rows`), into a temporary staging table by
binary COPY when every column's type allows (text COPY otherwise). Incremental by default once a
table has been synced: rows whose ``changed`` column is at or after the last watermark (less an
overlap window) are read; every source key is read to find deletions. The keys golive synced are
kept with the table's state (:mod:`golive.sync.state`): a key that disappears from the source is
deleted from the target only if golive put it there, so rows created in the new application are
never touched. Changed rows are updated in place (columns the mapping does not feed keep their
values), unchanged ones left alone, and sequences moved past the explicit ids. Verification then
compares the staged rows with the target's in SQL (:mod:`golive.sync.verify`), and a verified table
keyed by one integer column gets a record of its rows' digests and its target's range sums, which
makes ``--verify-only`` quick (:mod:`golive.sync.digests`). The source is opened read-only
(:mod:`golive.sync.source`) and never written.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from golive.db import open_connection
from golive.errors import ConfigError, GoliveError, first_line
from golive.private import open_private
from golive.sync import conflicts, digests, stamps, state
from golive.sync.backup import held_error, ms_setting, read_only, read_only_error, writes_are_held
from golive.sync.checks import check_violations, collisions, foreign_rows, orphans, parents_first, unique_clashes
from golive.sync.keyset import Keys, SortedKeys
from golive.sync.mapping import Mapping, TableMap, check_defaults
from golive.sync.merge import merge
from golive.sync.pgtypes import ColumnType, column_types, fit_column
from golive.sync.rows import RowPipe, encodes
from golive.sync.source import Source, ident, unlocked
from golive.sync.verify import (
    RANGE_ROWS,
    as_int_key,
    canonical,
    differing_keys,
    key_sql,
    range_differences,
    range_sums,
)

__all__ = ["SyncEngine", "TableResult"]

Progress = Callable[[str, int, int, str], None]  # (table, rows done, rows in all, phase: copy | merge | verify)


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
    copy_format: str = "binary"
    checked: str = ""  # --verify-only: how ("digests", "digests, N range(s) row by row", "every row")
    overwritten: int = 0  # --source-wins: rows changed in the new database that this sync overwrote
    note: str = ""  # what the operator should know about how the table was synced

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Staged:
    keys: set[Any]  # keys of the rows staged: ints for a table keyed by one integer column, else canonical text
    rejected: set[Any]  # keys of rows read but rejected (still in the source: not to be deleted)
    total: int = 0  # rows in the source table
    earliest_rejected: Any = None
    newest: Any = None  # the largest `changed` stamp read
    newest_known: bool = True  # False: the stamps do not compare in Python; the source is asked instead
    count: int = 0  # rows staged
    bounds: list[Any] | None = None  # every RANGE_ROWS-th staged key, for an integer key read in key order
    # for the digest record (an integer key): every row read, its key and digest (UNVERIFIED if rejected);
    # digestible goes False when a key read was not an int (the record is then not kept)
    read_keys: array[int] = field(default_factory=lambda: array("q"))
    read_digests: array[int] = field(default_factory=lambda: array("Q"))
    digestible: bool = True

    def digest(self, raw: list[tuple[Any, ...]], key_at: int, batch: Any, source: Source, table: TableMap) -> None:
        rejected = batch.rejected_keys
        # every row staged: its key fitted to the integer column is the one read, as an int
        keys = batch.keys if not rejected and len(batch.keys) == len(raw) else digests.int_keys(raw, key_at)
        if keys is None:
            self.digestible = False
        if keys is None or not self.digestible:
            return
        if source.pg is not None:  # hashed by the source server, as _read_digests reads them
            hashes = dict(pair for part in source.digest_batches(table, list(keys)) for pair in part)
            found = digests.server_digests([hashes.get(k, 0) for k in keys])
        else:
            found = digests.row_digests(raw)
        if rejected:
            out = set(rejected)
            found = [digests.UNVERIFIED if k in out else d for k, d in zip(keys, found, strict=True)]
        self.read_keys.extend(keys)
        self.read_digests.extend(found)

    def see_newest(self, batch: Any) -> None:
        if not batch.newest_known:
            self.newest_known = False
        elif batch.newest is not None and self.newest_known:
            try:
                self.newest = batch.newest if self.newest is None else max(self.newest, batch.newest)
            except TypeError:
                self.newest_known = False

    def add(self, rows: list[tuple[Any, ...]], key_at: int | None) -> None:
        if self.bounds is not None and key_at is not None:
            self.bounds += [rows[i][key_at] for i in range(-self.count % RANGE_ROWS, len(rows), RANGE_ROWS)]
        self.count += len(rows)


def _since(table: TableMap, watermark: str, overlap: float, source: Source, zone: ZoneInfo) -> Any:
    """The watermark less the overlap window, in the form the source compares with: typed values for
    PostgreSQL, a comparison by time (or number) for SQLite (:mod:`golive.sync.stamps`)."""
    assert table.changed is not None
    if source.pg is None:
        return stamps.sqlite_since(ident(table.changed), watermark, overlap, zone, table.target)
    number = stamps.parse_number(watermark)
    if number is not None:
        return stamps.number_since(number, overlap)
    moment = stamps.moment(watermark)
    if moment is None:
        raise stamps.unreadable_watermark(table.target, watermark)
    return moment - timedelta(seconds=overlap) - stamps.fold_back(moment, zone)


class SyncEngine:
    def __init__(self, source_url: str, target_url: str, mapping: Mapping, *, max_rejects: int = 0,
                 reject_file: Path | None = None, progress: Progress | None = None,
                 media_roots: tuple[tuple[Path, Path], ...] = (), lock_timeout: float = 30.0, source_wins: bool = False,
                 overwritten_dir: Path | None = None) -> None:
        self.source_url, self.target_url, self.mapping = source_url, target_url, mapping
        # rows someone else changed since golive wrote them (golive.sync.conflicts): stop, or overwrite them
        # (--source-wins) after keeping their versions under overwritten_dir
        self.source_wins, self.overwritten_dir = source_wins, overwritten_dir
        self.conflicts: list[tuple[str, list[Any]]] = []
        self.overwritten: dict[str, Path] = {}
        self._tracking: Any = None
        self._run_tables: tuple[TableMap, ...] = ()
        self.lock_timeout = lock_timeout  # s a statement waits for a lock another session holds, then the run stops
        self._at = "golive's state"  # what the run works on now (named when a lock wait stops it)
        self.media_roots = media_roots
        self.max_rejects, self.reject_file = max_rejects, reject_file
        self.progress = progress or (lambda table, done, total, phase: None)
        self.zone = ZoneInfo(mapping.options.source_timezone)
        self.rejects: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.xact: int | None = None  # the last run's target transaction id (its rows' xmin), once it began
        self._began = datetime.now(UTC)

    # -- the run ---------------------------------------------------------------------------------
    def run(self, tables: tuple[TableMap, ...], full: bool = False) -> list[TableResult]:
        self.conflicts, self.overwritten, self._run_tables = [], {}, tables
        self._began = datetime.now(UTC)  # (before the source's snapshot: a watermark is never later than this)
        source = Source(self.source_url)
        try:
            with unlocked(self.source_url), _undecodable(), self._lost(source, "sync"), self._lock_waits("sync"), \
                    open_connection(self.target_url, autocommit=False, what="target database") as target, target.transaction():
                if writes_are_held(target):  # (the sync step's plan says so first)
                    raise held_error()
                if read_only(target):
                    raise read_only_error()
                self._session(target)
                self.xact = int(target.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
                state.ensure(target)
                conflicts.ensure(target)
                self._tracking = conflicts.tracking(target)
                types = {t.target: self.target_types(target, t) for t in tables}  # every table checked before a row moves
                parents_first(target, tables)
                for t in tables:
                    source.check(t)
                results = []
                for t in tables:
                    self._at = f"table {t.target}"
                    results.append(self._table(source, target, t, types[t.target], full))
                self._stop_if_rejected()
                if self.conflicts:
                    raise GoliveError(
                        f"{sum(len(k) for _, k in self.conflicts)} row(s) changed in the new database since golive"
                        " wrote them would be overwritten: " + "; ".join(f"table {t}, keys {conflicts.describe(k)}"
                                                                          for t, k in self.conflicts)
                        + "; nothing was written",
                        hint="after the cutover the new database is the truth: do not sync into it again; before it"
                             " (testers' edits), `golive sync --source-wins` overwrites them, keeping their versions in"
                             " <state_dir>/overwritten/")
                if self.problems:
                    raise self._problems_error()
                conflicts.record_writer(target, "sync")  # (this run's rows are golive's, not someone else's)
                bad = [r for r in results if not r.verified]
                if bad:
                    raise GoliveError(f"verification failed for {', '.join(r.table for r in bad)} (keys "
                                      f"{'; '.join(', '.join(r.mismatched_keys[:5]) for r in bad)}); nothing was written",
                                      hint="the target was left as it was; check the mapping's transforms")
                self._at = "the commit"
        except BaseException:
            for path in self.overwritten.values():  # (nothing was overwritten after all: the versions are still there)
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()
            self.overwritten = {}
            raise
        finally:
            source.close()
        return results

    @contextmanager
    def _lock_waits(self, what: str) -> Iterator[None]:
        """A lock another session holds (the new application writing, a migration) waited for longer than
        ``lock_timeout``: one line naming what was being done, the transaction rolled back."""
        import psycopg

        self._at = "golive's state"
        try:
            yield
        except psycopg.errors.LockNotAvailable:
            raise GoliveError(f"the {what} of {self._at} waited {self.lock_timeout:g} s for a lock another session holds"
                              " on the target (the new application writing, or a migration) and stopped; nothing was"
                              " written", hint="stop what writes to the target (or let it finish), then run again;"
                              " [target].lock_timeout sets the wait") from None
        except psycopg.errors.ForeignKeyViolation as exc:  # at commit (constraints deferred): a parent row deleted
            detail = (exc.diag.message_detail or "").rstrip(".")  # that a row this sync did not read still refers to
            raise GoliveError(f"the sync would delete a row other rows still refer to ({exc.diag.message_primary}:"
                              f" {detail}); nothing was written",
                              hint="if the old database changed those rows without moving their `changed` column (an ON"
                                   " DELETE cascade or SET NULL does not), `golive sync --full` compares every row; if"
                                   " the new application made them, the row they refer to must stay: change or delete"
                                   " them in the new database first") from None
        except psycopg.errors.UniqueViolation as exc:  # a row golive did not sync holds a value a synced one brings
            detail = (exc.diag.message_detail or "").rstrip(".")
            raise GoliveError(f"{self._at}: a synced row would take a value another row of the target already holds"
                              f" ({detail}: {exc.diag.constraint_name}); nothing was written",
                              hint="a row made in the new application has it (golive never overwrites those), or —"
                                   " under a unique index on an expression or with a WHERE (Django's"
                                   " UniqueConstraint(Lower(…)) or a conditional one), which golive's checks do not"
                                   " read — another synced row gives it up in this same sync (renames in a chain):"
                                   " change or delete that row in the new database, or the source row, then run"
                                   " again") from None
        except psycopg.errors.CheckViolation as exc:  # a check on a column the sync does not write (the pre-check's
            # are found by row before the merge): the row's value there is the target's own
            raise GoliveError(f"{self._at}: the target refused a synced row: {exc.diag.message_primary}; nothing was"
                              " written", hint=f"the constraint {exc.diag.constraint_name} also reads a column the"
                              " mapping does not write: map that column (or give it a default), or fix the rows in the"
                              " new database, then run again") from None
        except psycopg.errors.DeadlockDetected:
            raise GoliveError(f"the {what} of {self._at} and another session on the target (the new application) each"
                              f" waited for a lock the other held; PostgreSQL stopped the {what} and nothing was written",
                              hint="stop what writes to the target during the sync (the write freeze), then run again")\
                from None

    @contextmanager
    def _lost(self, source: Source, what: str) -> Iterator[None]:
        """A database that closed the connection (restarted, its session ended by an administrator, the network):
        one line naming which — libpq says only "server closed the connection unexpectedly" — and what it means
        for the target: nothing written (the transaction never committed). Lost during the commit, PostgreSQL is
        asked what became of the transaction: committed is a sync that succeeded; no answer is "not known"."""
        import psycopg

        self._at = "golive's state"
        try:
            yield
        except psycopg.OperationalError as exc:
            if exc.sqlstate is not None and not exc.sqlstate.startswith("57P"):  # (a server's answer: not a lost link)
                raise
            side = "source" if source.pg is not None and source.pg.broken else "target"
            where = f" during {self._at}" if self._at != "golive's state" else ""
            if side == "target" and self._at == "the commit":
                outcome = self._commit_outcome()  # (asked again on a new connection: the transaction's own status)
                if outcome == "committed":
                    return  # (it was written: a commit that waited on a synchronous standby, ended after it took)
                if outcome != "aborted":
                    raise GoliveError(f"the target database closed the connection during the commit"
                                      f" ({first_line(exc)}): whether the sync was written is not known",
                                      hint="`golive sync --verify-only` tells; then run `golive sync` again") from None
            written = "; nothing was written" if what == "sync" else ""
            raise GoliveError(f"the {side} database closed the connection{where} of the {what} ({first_line(exc)})"
                              f"{written}", hint=f"check that the {side} database is up and that nothing ends golive's sessions,"
                                   " then run again") from None

    def _commit_outcome(self, wait: float = 5.0) -> str | None:
        """What became of this sync's transaction after the connection was lost during its commit, asked on a new
        connection: "committed", "aborted", or None (not known: the target unreachable, or still committing after
        ``wait`` seconds)."""
        import psycopg

        deadline = time.monotonic() + wait
        try:
            with open_connection(self.target_url, autocommit=True, what="target database") as conn:
                while True:
                    row = conn.execute("SELECT pg_xact_status(%s::text::xid8)", (str(self.xact),)).fetchone()
                    status = row[0] if row else None
                    if status != "in progress" or time.monotonic() >= deadline:
                        return status if status in ("committed", "aborted") else None
                    time.sleep(0.2)
        except (psycopg.Error, GoliveError):
            return None

    def _session(self, target: Any) -> None:
        from golive.db import require_version

        require_version(target, 14, "target database")  # (hash_record_extended, pg_snapshot)
        target.execute("SELECT set_config('lock_timeout', %s, true)", (ms_setting(self.lock_timeout),))
        target.execute("SET CONSTRAINTS ALL DEFERRED")
        # a few big scans and joins per table: compiling them costs more than it saves (-0.2 s a 1M-row table)
        target.execute("SET LOCAL jit = off")
        # naive time stamps that reach PostgreSQL as text are read in the source's zone, as to_utc reads them
        target.execute("SELECT set_config('TimeZone', %s, true)", (self.mapping.options.source_timezone,))

    def target_types(self, target: Any, table: TableMap) -> dict[str, ColumnType]:
        """The target columns' types; a missing table or column, or a NOT NULL column nothing feeds, is a
        config error (the plan checks it too, before any prompt)."""
        types = column_types(target, table.target)
        unknown = [c for c in table.target_columns if c not in types]
        if unknown:
            raise ConfigError(f"mapping: table {table.target} has no column {', '.join(unknown)}",
                              hint="fix the mapping, or migrate the target first")
        unfed = [c for c, kind in types.items() if kind.required and c not in table.target_columns]
        if unfed:
            raise ConfigError(f"mapping: table {table.target}, column {unfed[0]} is NOT NULL and nothing feeds it",
                              hint=f"map a source column to it, or give it a value under [table.defaults]: {unfed[0]} = …")
        check_defaults(table, types)
        return types

    def _problems_error(self) -> GoliveError:
        """Every problem found (listed under the line): on the night, each one shown only after the one before it
        was fixed would cost a sync attempt — and a backup — apiece."""
        count = len(self.problems)
        return GoliveError(f"{count} pre-check problem(s); first: {self.problems[0]}" + (" (all listed below)" if count > 1
                                                                                         else ""),
                           hint="fix each where it says: the source data, the mapping, or rows made in the new"
                                " database; nothing was written", details=self.problems if count > 1 else None)

    def _stop_if_rejected(self) -> None:
        if self.reject_file is not None and self.rejects:
            with open_private(self.reject_file) as out:  # (the rows' values: users' data)
                out.writelines(json.dumps(r) + "\n" for r in self.rejects)
        if len(self.rejects) > self.max_rejects:
            first = self.rejects[0]
            raise GoliveError(
                f"{len(self.rejects)} row(s) rejected (max {self.max_rejects}); first: table {first['table']},"
                f" key {first['key']}, column {first['column']}: {first['reason']}",
                hint=f"fix the source or the mapping; all rejects are in {self.reject_file}; nothing was written")

    def _table(self, source: Source, target: Any, table: TableMap, types: dict[str, ColumnType],
               full: bool) -> TableResult:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        stop = threading.Event()
        marks = len(self.rejects), len(self.problems)
        with ThreadPoolExecutor(1, thread_name_prefix="golive-digests") as pool:  # (waits for its work on the way out)
            try:
                try:
                    return self._sync_table(source, target, table, types, full, pool, stop)
                except _Unread as unread:  # (found before anything was written: only the staging table to drop)
                    target.execute("DROP TABLE golive_stage")
                    del self.rejects[marks[0]:], self.problems[marks[1]:]
                    result = self._sync_table(source, target, table, types, True, pool, stop)
                    result.note = f"read in full: {unread}"
                    return result
            finally:
                stop.set()  # a sync that failed or was interrupted does not wait for the rest of the digests

    def _sync_table(self, source: Source, target: Any, table: TableMap, types: dict[str, ColumnType],
                    full: bool, pool: Any, stop: Any) -> TableResult:
        started, result = time.monotonic(), TableResult(table.target)
        int_key = _int_key(table, types)
        before = state.load(target, table.target, int_key)
        watermark = before.watermark if not full and table.changed and before is not None else None
        total, key_sum = source.count_and_key_sum(table) if watermark is not None and int_key else \
            (source.count(table), None)
        since = None
        if watermark is not None:
            result.mode = "incremental"
            since = _since(table, watermark, self.mapping.options.overlap_seconds, source, self.zone)
        # an incremental sync digests the few rows it reads as it stages them; a full read digests them all
        # again from the same snapshot in a thread, while the server merges and verifies (below)
        staged = self._stage_once(source, target, table, types, since, result, total, digest=since is not None)
        new_watermark = staged.newest
        if table.changed and (not staged.newest_known or (since is not None and staged.newest is None)):
            # (an incremental read that found no stamp at all: the newest may now be older than the window)
            new_watermark = source.count_and_max_changed(table)[1]
        background = pool.submit(self._read_digests, source, table, TableResult(table.target), 0, False, stop) \
            if since is None and int_key else None
        if isinstance(new_watermark, str) and not new_watermark.isascii() and not encodes(new_watermark):
            raise _not_utf8(f"the newest `{table.changed}` stamp of {table.label()}")
        synced = before.keys if before is not None else set()
        added = staged.keys - synced
        gone = synced - (staged.keys | staged.rejected) if since is None else \
            self._gone_since(source, table, synced, staged, added, int_key, key_sum, types)
        self.progress(table.target, result.read, max(total, result.read), "merge")
        # From here to the commit no other session writes this table (reads go on; writers wait for the commit):
        # a row the new application changed after the checks below would be overwritten by the merge unseen.
        target.execute(f"LOCK TABLE {ident(table.target)} IN SHARE ROW EXCLUSIVE MODE")
        typnames = {c: kind.typname for c, kind in types.items()}
        key_s = key_sql("s", table.target_key, typnames)
        left_out = frozenset(t.target for t in self.mapping.tables) - {t.target for t in self._run_tables}
        clashes = collisions(target, table, key_s, gone, int_key, synced) + \
            unique_clashes(target, table, key_s, gone, int_key, synced)
        self.problems += orphans(target, table, key_s, left_out) + clashes + check_violations(target, table, key_s) + \
            foreign_rows(target, table, added, int_key, typnames)
        if clashes:  # (the merge would fail on them with PostgreSQL's bare "already exists": said here, by row)
            raise self._problems_error()
        if before is not None and self._tracking is not None:
            self._check_conflicts(target, table, gone, synced, int_key, since is not None, result, before, types)
        carried = self._carried(target, table, types, before, since, staged)
        touched = sorted(staged.keys | gone) if carried is not None else []
        written_before = range_sums(target, table, carried.ranges.bounds, None, typnames, touched) \
            if carried is not None else {}
        inserted: list[Any] | None = [] if before is not None and self._tracking is not None else None
        merge(target, table, types, gone, result, int_key, inserted)
        if inserted:  # synced rows the target no longer held: deleted there, and inserted again just now
            self._conflict(target, table, sorted(k for k in inserted if k in synced), int_key, result, kept=None)
        result.unchanged = staged.total - result.rejected - result.inserted - result.updated  # read or not
        changed_keys = bool(added or gone) or before is None
        if changed_keys:
            synced -= gone
            synced |= added  # (the loaded set is this run's own: changed in place)
        self.progress(table.target, result.read, max(total, result.read), "verify")
        # a synced row rejected this time (allowed by --max-rejects) keeps its old version: not a difference
        expected = synced - staged.rejected if staged.rejected else synced
        verdict = differing_keys(target, table, expected, staged.count, staged.bounds, typnames, int_key=int_key,
                                 complete=since is None)
        differing = verdict.found
        result.verified, result.mismatched_keys = not differing, [str(k).replace("\x1f", ",") for k in differing]
        if staged.earliest_rejected is not None:
            new_watermark = staged.earliest_rejected  # rejected rows (allowed by --max-rejects) are read again next time
        ahead = stamps.in_future(new_watermark, self.zone, self._began,
                                 timedelta(seconds=self.mapping.options.overlap_seconds))
        if ahead is not None:  # one row stamped ahead (a clock, a typo) would hide every change made until then
            result.note = (f"{result.note}; " if result.note else "") + \
                f"its newest `{table.changed}` stamp ({stamps.watermark_text(new_watermark)}) is in the future: the" \
                " next sync reads from now on, and reads that row again each time"
            new_watermark = ahead
        record = None
        if int_key and staged.digestible and not differing:
            read = background.result() if background is not None else None
            if since is None and read is not None:  # every row read: a new record, its base the digests read
                ordered = state.sorted_ints(synced)
                if ordered is not None:
                    keys, found = read
                    for key in staged.rejected:  # (allowed by --max-rejects) the target does not hold them
                        at = bisect_left(keys, key)
                        if at < len(keys) and keys[at] == key:
                            found[at] = digests.UNVERIFIED
                    sums = verdict.ranges or digests.Ranges.of(
                        staged.bounds or [], range_sums(target, table, staged.bounds or [], None, typnames))
                    record = digests.Record(self._fingerprint(table, types), sums, {}, ordered,
                                            digests.aligned(ordered, keys, found), base_changed=True)
            elif carried is not None:
                # the rows written: the target's now equal the staged ones (verified), whose sums come cheaper
                carried.ranges.move(written_before, range_sums(target, table, carried.ranges.bounds, "golive_stage",
                                                               typnames))
                carried.patch.update(zip(staged.read_keys, staged.read_digests, strict=True))
                record = self._folded(target, table, carried, synced)
        state.save(target, table.target, None if new_watermark is None else stamps.watermark_text(new_watermark), result.mode,
                   synced if changed_keys else None, record)
        target.execute("DROP TABLE golive_stage")
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _check_conflicts(self, target: Any, table: TableMap, gone: set[Any], synced: Keys, int_key: bool,
                         incremental: bool, result: TableResult, before: state.TableState,
                         types: dict[str, ColumnType]) -> None:
        """Rows someone else changed that this sync would overwrite: noted (the run stops before commit), or
        with --source-wins their versions kept first."""
        typnames = {c: kind.typname for c, kind in types.items()}
        found = conflicts.changed_by_others(target, table, self._tracking, gone, synced, int_key, incremental, typnames)
        self._conflict(target, table, self._mapped_columns_changed(target, table, found, before, types, synced),
                       int_key, result, kept=typnames)

    def _mapped_columns_changed(self, target: Any, table: TableMap, found: list[Any], before: state.TableState,
                                types: dict[str, ColumnType], synced: Keys) -> list[Any]:
        """Of the rows someone else wrote, those whose *mapped* columns they changed. A version golive did not
        write may have changed only columns the mapping does not feed (Django sets ``last_login`` at every
        login): overwriting such a row loses nothing. The digest record holds, per key range, the count and
        hash sum of the target's mapped columns as golive's last sync left them; a range whose sum is the same
        now, over the rows golive synced, had no mapped column changed, so its rows are dropped. (A range where
        another row really changed keeps all of its rows, as does one whose record a full sync made while the
        new application's own rows were in it: the check only ever errs towards stopping.)"""
        record = before.record
        if not found or record is None or record.fingerprint != self._fingerprint(table, types):
            return found
        ranges = record.ranges
        buckets = {ranges.bucket(k) for k in found}
        # over golive's own rows only: rows the new application added since (new users, in the last range) are
        # not in the sums an incremental sync carries forward, so they must not make a range look changed
        now = range_sums(target, table, ranges.bounds, None, {c: kind.typname for c, kind in types.items()},
                         sorted(k for k in synced if ranges.bucket(k) in buckets))
        unchanged = {b for b in buckets if now.get(b, (0, 0)) == (ranges.counts[b], ranges.sums[b])}
        return [k for k in found if ranges.bucket(k) not in unchanged]

    def _conflict(self, target: Any, table: TableMap, found: list[Any], int_key: bool, result: TableResult,
                  kept: dict[str, str] | None) -> None:
        """``found``: keys of rows someone else changed (``kept``: their versions are still there to keep, and
        the table's column types to find them by)."""
        if not found:
            return
        result.overwritten += len(found) if self.source_wins else 0
        if not self.source_wins:
            for at, (name, keys) in enumerate(self.conflicts):
                if name == table.target:
                    self.conflicts[at] = (name, sorted(set(keys) | set(found)))
                    return
            self.conflicts.append((table.target, found))
            return
        if kept is not None:
            folder = (self.overwritten_dir or Path("overwritten")) / self._stamp
            self.overwritten[table.target] = conflicts.keep_versions(target, table, found, int_key, folder, kept)

    @cached_property
    def _stamp(self) -> str:
        return conflicts.stamp()

    def _fingerprint(self, table: TableMap, types: dict[str, ColumnType]) -> str:
        return digests.fingerprint(table, self.mapping.options, {c: types[c].typname for c in table.target_columns},
                                   {c: types[c].length for c in table.target_columns})

    def _carried(self, target: Any, table: TableMap, types: dict[str, ColumnType], before: state.TableState | None,
                 since: Any, staged: _Staged) -> digests.Record | None:
        """The record an incremental sync carries forward: the last one, when it was made under this mapping."""
        if since is None or before is None or before.record is None or not staged.digestible:
            return None
        return before.record if before.record.fingerprint == self._fingerprint(table, types) else None

    @staticmethod
    def _folded(target: Any, table: TableMap, record: digests.Record, synced: Keys) -> digests.Record | None:
        """The record, its patch folded into a new base once it holds a quarter of the table's rows (so the
        patch an incremental sync reads and writes stays small)."""
        if len(record.patch) <= max(RANGE_ROWS, len(synced) // 4):
            return record
        ordered = state.sorted_ints(synced)
        if ordered is None or not state.load_base(target, table.target, record):
            return None
        current = record.current(ordered)
        if current is None:
            return None
        record.base_keys, record.base_digests, record.patch, record.base_changed = ordered, current, {}, True
        return record

    def _gone_since(self, source: Source, table: TableMap, synced: Keys, staged: _Staged, added: set[Any],
                    int_key: bool, key_sum: int | None, types: dict[str, ColumnType]) -> set[Any]:
        """Synced keys the source no longer has, for an incremental sync: every source key is read, unless the
        table is keyed by one integer column and the source holds exactly the synced keys plus the new rows just
        read — the same count and the same sum of keys (a count alone lets a deleted row and a new row that was
        not read cancel out, so other keys are always read). A source key that is neither synced nor read (a row
        inserted with a stamp older than the watermark: an import, an undelete, a long transaction) raises
        ``_Unread``: the table is then read in full."""
        new = added | (staged.rejected - synced)  # (added: the staged keys not synced before)
        if int_key and key_sum is not None and staged.total - len(new) == len(synced) and \
                key_sum - sum(new) == _key_sum(synced):
            return set()
        read = 0  # (a key read twice — a query that repeats rows — is said here too: the rows read were not all)
        if int_key:
            listed = [as_int_key(key[0]) for key in source.keys(table)]
            keys: set[Any] = set(listed)
            read = len(listed)
        else:  # (as the target's types read them, as staged keys are: a date-time's text is not its key)
            kinds = [types[c] for c in table.target_key]
            keys = set()
            for batch in source.batches(table, columns=", ".join(ident(k) for k in table.key), ordered=False):
                fitted = [fit_column(list(values), kind, self.zone, lambda row, reason: None) if kind.binary
                          else list(values) for values, kind in zip(zip(*batch, strict=True), kinds, strict=True)]
                keys.update("\x1f".join(map(canonical, parts)) for parts in zip(*fitted, strict=True))
                read += len(batch)
        if read != len(keys):
            raise _twice(table, source)
        unread = keys.difference(synced) - new
        if unread:
            raise _Unread(table, sorted(unread))
        return synced - keys

    def _stage_once(self, source: Source, target: Any, table: TableMap, types: dict[str, ColumnType], since: Any,
                    result: TableResult, total: int, ranges: list[tuple[Any, Any]] | None = None,
                    digest: bool = True) -> _Staged:
        """Stage the table; if SQLite turns out to hold text that is not valid UTF-8, or PostgreSQL a date Python
        cannot hold (``infinity``), stage it again reading such values as their text, so those rows are
        rejected with a reason (a savepoint undoes the first try)."""
        import sqlite3

        import psycopg

        marks = len(self.rejects), len(self.problems)
        try:
            with target.transaction():
                return self._stage(source, target, table, types, since, result, total, ranges, digest)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc) or source.tolerant:
                raise
            source.tolerate_invalid_text()
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            if exc.sqlstate is not None:  # the target refused a staged value the checks did not foresee
                context = (exc.diag.context or "").strip().splitlines()
                raise GoliveError(f"table {table.target}: the target refused a row: {exc.diag.message_primary}"
                                  + (f" ({context[0]})" if context else "") + "; nothing was written",
                                  hint="fix the mapping (a transform, or the target column's type) or the source value"
                                  ) from None
            if source.pg is None or source.lenient_dates:  # (no SQLSTATE: psycopg could not load a source value)
                raise
            source.tolerate_unreadable_dates()
        del self.rejects[marks[0]:], self.problems[marks[1]:]
        result.read = result.rejected = 0
        return self._stage(source, target, table, types, since, result, total, ranges, digest)

    def _stage(self, source: Source, target: Any, table: TableMap, types: dict[str, ColumnType], since: Any,
               result: TableResult, total: int, ranges: list[tuple[Any, Any]] | None = None,
               digest: bool = True) -> _Staged:
        """COPY the source rows (all, those changed since, or those in key ``ranges``) into ``golive_stage``,
        shaped like the target; with ``digest``, an integer-keyed table's rows read are digested for the
        record as they go (an incremental sync's few rows; a full read digests them in a thread)."""
        binary = all(types[c].binary for c in table.target_columns)
        result.copy_format = "binary" if binary else "text"
        pipe = RowPipe(table, types, self.zone, self.media_roots, _int_key(table, types), binary)
        staged = _Staged(set(), set(), total)
        key_at, first_keys = None, list[Any]()
        if _int_key(table, types):
            key_at, staged.bounds = table.target_columns.index(table.target_key[0]), []
        cols = ", ".join(ident(c) for c in table.target_columns)
        arrays = frozenset(at for at, c in enumerate(table.target_columns) if types[c].typname.startswith("_"))
        # shaped like the target, without its defaults (a serial's nextval() would take the target's sequence values
        # for staged rows) and NOT NULL only where the sync writes: a column it leaves to the target (Django's `id`
        # when the mapping keys on username: an identity or serial the new rows get from the target) stays NULL here
        target.execute(f"CREATE TEMP TABLE golive_stage (LIKE {ident(table.target)}) ON COMMIT DROP")
        unwritten = [c for c, kind in types.items() if kind.not_null and c not in table.target_columns]
        if unwritten:
            target.execute("ALTER TABLE golive_stage " + ", ".join(f"ALTER COLUMN {ident(c)} DROP NOT NULL" for c in unwritten))
        with target.cursor().copy(f"COPY golive_stage ({cols}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")) as copy, \
                _no_gc():
            if binary:  # (char(n) goes as text: the same bytes, and psycopg has no binary dumper for bpchar)
                copy.set_types(["text" if types[c].typname == "bpchar" else types[c].typname for c in table.target_columns])
            for raw in source.batches(table, since, ranges=ranges):
                batch = pipe.process(raw)
                if key_at is not None and digest:
                    staged.digest(raw, pipe.key_index[0], batch, source, table)
                for row in batch.rows if binary else (_adapt_row(row, arrays) for row in batch.rows):
                    copy.write_row(row)
                result.read += len(raw)
                result.rejected += len(batch.rejects)
                known = len(staged.keys)
                staged.keys.update(batch.keys)
                if len(staged.keys) - known != len(batch.keys):  # (the merge would fail, or write one of them)
                    raise _twice(table, source)
                if key_at is None and not first_keys:
                    first_keys = batch.keys
                staged.add(batch.rows, key_at)
                staged.rejected.update(batch.rejected_keys)
                staged.see_newest(batch)
                self.rejects += batch.rejects
                self.problems += batch.problems
                if batch.earliest_rejected is not None and (staged.earliest_rejected is None or stamps.time_key(
                        batch.earliest_rejected, self.zone) < stamps.time_key(staged.earliest_rejected, self.zone)):
                    staged.earliest_rejected = batch.earliest_rejected
                self.progress(table.target, result.read, max(total, result.read), "copy")  # inside the COPY
        result.hash_formats = dict(pipe.formats)
        if first_keys:
            _same_keys(target, table, types, first_keys)
        return staged

    # -- verification alone ----------------------------------------------------------------------
    def verify_only(self, tables: tuple[TableMap, ...], deep: bool = False) -> list[TableResult]:
        """The target as it is against the source now, every synced row; in a transaction that is always
        rolled back (the staging table is temporary), so nothing is written. Quick where the last sync
        left a record (:mod:`golive.sync.digests`) unless ``deep``: every row transformed and compared."""
        source = Source(self.source_url)
        try:
            with unlocked(self.source_url), _undecodable(), self._lost(source, "verification"), \
                    self._lock_waits("verification"), \
                    open_connection(self.target_url, autocommit=False, what="target database") as target, \
                    target.transaction(force_rollback=True):
                if not state.exists(target):
                    raise GoliveError("the target has no sync yet (no golive.sync_state)", hint="run `golive sync` first")
                if writes_are_held(target):  # (its staging table could not even be made)
                    raise held_error()
                self._session(target)
                state.ensure(target)  # (a state kept by an older golive: the record's columns, rolled back after)
                for t in tables:
                    source.check(t)
                results = []
                for t in tables:
                    self._at = f"table {t.target}"
                    results.append(self._verify_table(source, target, t, deep))
                return results
        finally:
            source.close()

    def _verify_table(self, source: Source, target: Any, table: TableMap, deep: bool = False) -> TableResult:
        started, result = time.monotonic(), TableResult(table.target, mode="verify")
        types = self.target_types(target, table)
        int_key = _int_key(table, types)
        before = state.load(target, table.target, int_key)
        marks = len(self.rejects)
        if not deep and before is not None and before.record is not None and \
                before.record.fingerprint == self._fingerprint(table, types) and self._verify_quick(
                    source, target, table, types, before, result):
            result.seconds = round(time.monotonic() - started, 3)
            return result
        del self.rejects[marks:]  # (a quick try that gave up: its rejects are found again below)
        result = TableResult(table.target, mode="verify", checked="every row")
        synced = before.keys if before is not None else set()
        staged = self._stage_once(source, target, table, types, None, result, source.count(table), digest=False)
        self.progress(table.target, result.read, max(staged.total, result.read), "verify")
        differing = differing_keys(target, table, synced, staged.count, staged.bounds,
                                   {c: kind.typname for c, kind in types.items()}, int_key=int_key).found
        gone = sorted(synced - staged.keys - staged.rejected)
        if gone:  # synced rows the source no longer has: a difference if the target still holds them
            key_t = f"t.{ident(table.target_key[0])}" if int_key else \
                key_sql("t", table.target_key, {c: kind.typname for c, kind in types.items()})
            differing += [r[0] for r in target.execute(f"SELECT {key_t} FROM {ident(table.target)} t"
                                                       f" WHERE {key_t} = ANY(%s) LIMIT 20", (gone,))]
        self._verdict(result, differing, staged.rejected, self.rejects[marks:])
        target.execute("DROP TABLE golive_stage")
        result.seconds = round(time.monotonic() - started, 3)
        return result

    @staticmethod
    def _verdict(result: TableResult, differing: list[Any], rejected: set[Any], rejects: list[dict[str, Any]]) -> None:
        """The keys that differ, then those of source rows that cannot be carried over (a transform or the
        target's type rejects them: the target cannot hold them as the source has them), with the reason — the
        real differences first: rejects are often known and allowed (--max-rejects), and listed first they hid them."""
        shown = [str(k).replace("\x1f", ",") for k in differing]
        if rejects:
            out = {str(k).replace("\x1f", ",") for k in rejected}
            shown = [k for k in shown if k not in out] + [f"{r['key']} ({r['column']}: {r['reason']})" for r in rejects]
        result.rejected = len(rejects)
        result.verified, result.mismatched_keys = not shown, shown[:20]

    def _verify_quick(self, source: Source, target: Any, table: TableMap, types: dict[str, ColumnType],
                      before: state.TableState, result: TableResult) -> bool:
        """Both sides against the last sync's record: the target's range sums (one scan) and the source rows'
        digests (read, not transformed). Ranges where either differs are staged and compared row by row.
        False when the record cannot settle it (keys that are not ints, or too many ranges differ)."""
        record, keys_now = before.record, before.sorted_keys
        assert record is not None and keys_now is not None
        if not state.load_base(target, table.target, record):
            return False
        recorded = record.current(keys_now)  # the digests of the synced rows as last verified
        if recorded is None:
            return False
        from concurrent.futures import ThreadPoolExecutor

        bounds = record.ranges.bounds
        typnames = {c: kind.typname for c, kind in types.items()}
        # the target's scan runs on the server while this thread reads the source (the wait releases the GIL)
        with ThreadPoolExecutor(1, thread_name_prefix="golive-sums") as pool:
            sums = pool.submit(range_sums, target, table, bounds, None, typnames)
            read = self._read_digests(source, table, result, len(keys_now))
            dirty = record.ranges.differing(sums.result())
        if read is None:
            return False
        keys, found = read
        if keys != keys_now or found != recorded:
            dirty |= _dirty_ranges(bounds, keys_now, recorded, keys, found)
        if len(dirty) > max(4, (len(bounds) + 1) // 4):
            return False  # much has changed: every row, the ordinary way
        differing: list[Any] = []
        rejected, marks = set[Any](), len(self.rejects)
        if dirty:
            self.progress(table.target, result.read, max(len(keys_now), result.read), "verify")
            ranges = [(bounds[b - 1] if b > 0 else None, bounds[b] if b < len(bounds) else None) for b in sorted(dirty)]
            rejected = self._stage_once(source, target, table, types, None, TableResult(table.target), result.read,
                                        ranges, digest=False).rejected
            for bucket in sorted(dirty):
                differing += range_differences(target, table, before.keys, bounds, bucket, 20 - len(differing),
                                               typnames)
                if len(differing) >= 20:
                    break
            target.execute("DROP TABLE golive_stage")
        self._verdict(result, differing, rejected, self.rejects[marks:])
        result.checked = f"digests, {len(dirty)} range(s) row by row" if dirty else "digests"
        return True

    def _read_digests(self, source: Source, table: TableMap, result: TableResult, expected: int,
                      progress: bool = True, stop: Any = None) -> tuple[array[int], array[int]] | None:
        """Every source row's key and digest, in key order (None: a key that is not an int, or keys that do
        not strictly increase, or ``stop`` was set). Text that is not UTF-8 is read as the sync read it
        (surrogates; such rows were rejected, so their ranges differ)."""
        import sqlite3

        key_at = table.source_columns.index(table.key[0])
        while True:
            keys, found = array("q"), array("Q")
            result.read = 0
            try:
                pg = source.pg is not None  # (a PostgreSQL source hashes its rows itself: the hashes come, not rows)
                for raw in source.digest_batches(table) if pg else source.batches(table):
                    batch_keys = digests.int_keys(raw, 0 if pg else key_at)
                    if batch_keys is None or not _increasing(batch_keys, keys[-1] if keys else None) or \
                            (stop is not None and stop.is_set()):
                        return None
                    keys.extend(batch_keys)
                    found.extend(digests.server_digests([r[1] for r in raw]) if pg else digests.row_digests(raw))
                    result.read += len(raw)
                    if progress:
                        self.progress(table.target, result.read, max(expected, result.read), "read")
                return keys, found
            except sqlite3.OperationalError as exc:
                if "decode" not in str(exc) or source.tolerant:
                    raise
                source.tolerate_invalid_text()


def _same_keys(target: Any, table: TableMap, types: dict[str, ColumnType], first: list[Any]) -> None:
    """The keys golive made of the first rows staged are the target's reading of them (:func:`key_sql`). Keys
    are compared as text with what the target holds (deletions, verification, rows of the new application), so
    a key column of a type read otherwise would hide deletions and pass verification: it stops the sync."""
    key_s = key_sql("s", table.target_key, {c: kind.typname for c, kind in types.items()})
    theirs = [row[0] for row in target.execute(f"SELECT {key_s} FROM golive_stage s WHERE s.ctid < '(2,0)'::tid"
                                               " ORDER BY s.ctid")]
    known = set(first)
    odd = next((key for key in theirs if key not in known), None)
    if odd is not None:
        columns = ", ".join(f"{c} ({types[c].typname})" for c in table.target_key)
        raise GoliveError(f"table {table.target}: golive reads the key of its first row as {first[0]!r}, the target"
                          f" as {theirs[0]!r}; keys of this kind ({columns}) cannot be matched; nothing was written",
                          hint="key the table by integer, text, uuid, date or date-time columns (`key` in"
                               " mapping.toml), or report the column types")


def _twice(table: TableMap, source: Source) -> GoliveError:
    """A key the source has more than once (a `key` that is not unique there, or a `query` that repeats rows)."""
    from collections import Counter

    seen = Counter(source.keys(table))
    twice = sorted((k for k, n in seen.items() if n > 1), key=str)[:3]
    shown = "; ".join(",".join(map(str, k)) for k in twice) or "(a key that reads as another once fitted)"
    return GoliveError(f"table {table.label()}: the source has key {', '.join(table.key)} = {shown} more than once;"
                       " nothing was written",
                       hint="a [[table]] key must name each source row once: fix `key` in mapping.toml (or the query)")


def _increasing(keys: list[int], last: int | None) -> bool:
    """Whether the keys strictly increase (after ``last``), checked at C speed."""
    return (last is None or not keys or keys[0] > last) and keys == sorted(keys) and len(set(keys)) == len(keys)


def _dirty_ranges(bounds: list[int], keys: array[int], found: array[int], now_keys: array[int],
                  now_found: array[int]) -> set[int]:
    """The ``width_bucket`` ranges whose keys or digests now are not those recorded (both sorted by key)."""
    dirty = set()
    edges = [None, *bounds, None]
    for bucket in range(len(bounds) + 1):
        low, high = edges[bucket], edges[bucket + 1]
        a = (0 if low is None else bisect_left(keys, low), len(keys) if high is None else bisect_left(keys, high))
        b = (0 if low is None else bisect_left(now_keys, low), len(now_keys) if high is None else bisect_left(now_keys, high))
        if keys[a[0]:a[1]] != now_keys[b[0]:b[1]] or found[a[0]:a[1]] != now_found[b[0]:b[1]]:
            dirty.add(bucket)
    return dirty


class _Unread(Exception):
    """Source rows an incremental read missed: their keys were never synced and their stamps are old."""

    def __init__(self, table: TableMap, keys: list[Any]) -> None:
        shown = ", ".join(str(k).replace("\x1f", ",") for k in keys[:5]) + (f", … ({len(keys)} in all)" if len(keys) > 5 else "")
        super().__init__(f"{len(keys)} source row(s) not synced before had a `{table.changed}` stamp older than the"
                         f" last sync's watermark (keys {shown})")


def _key_sum(keys: Keys) -> int:
    ordered = keys.ordered() if isinstance(keys, SortedKeys) else None
    return sum(ordered if ordered is not None else keys)


def _int_key(table: TableMap, types: dict[str, ColumnType]) -> bool:
    """Keyed by one integer column, and staged by binary COPY (so its values are fitted to ints): keys are
    kept as ints, not text — cheaper to collect, compare and store."""
    return len(table.target_key) == 1 and types[table.target_key[0]].typname in ("int2", "int4", "int8") and \
        all(types[c].binary for c in table.target_columns)


@contextmanager
def _undecodable() -> Iterator[None]:
    """Text that is not UTF-8 where a row cannot be rejected for it (a key or `changed` column, read outside
    the staging): one line naming it, not a traceback."""
    import sqlite3

    try:
        yield
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
        raise _not_utf8(str(exc)) from None


def _not_utf8(detail: str) -> GoliveError:
    return GoliveError(f"the source holds text that is not valid UTF-8 outside what golive can reject row by row:"
                       f" {detail}", hint="fix that value in the source (it is in a key or `changed` column)")


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cycle collector off while rows stream: millions of short-lived tuples, no cycles among them, and
    each collection would walk every live container (it halves the pipeline's time on 1M rows)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _adapt_row(row: tuple[Any, ...], arrays: frozenset[int]) -> tuple[Any, ...]:
    """Text COPY: JSON values (from the ``json`` transform) go as jsonb, but a list into an array column
    (``arrays``: their positions) as an array (``{1,2}``; as JSON, ``[1, 2]`` was a malformed array)."""
    if not any(isinstance(v, dict | list) for v in row):
        return row
    from psycopg.types.json import Jsonb

    return tuple(v if at in arrays and isinstance(v, list) else Jsonb(v) if isinstance(v, dict | list) else v
                 for at, v in enumerate(row))
