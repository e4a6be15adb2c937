"""Quick verification against real PostgreSQL: ``--verify-only`` compares the source rows' digests and
the target's range sums with what the last sync recorded, checks row by row only the ranges where
either side changed, and names the same keys as the deep comparison of every row."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from golive.sync import digests
from golive.sync.engine import SyncEngine
from golive.sync.mapping import load_mapping
from golive.sync.state import load, load_base
from golive.sync.verify import RANGE_ROWS, range_sums

MAPPING = """[[table]]
source = "person"
target = "person"
key = "id"
changed = "updated_at"
[table.columns]
id = "id"
name = { from = "name", transform = "strip" }
age = "age"
updated_at = { from = "updated_at", transform = "to_utc" }
"""
DDL = "CREATE TABLE person (id bigint PRIMARY KEY, name varchar(40) NOT NULL, age int4, updated_at timestamptz)"
ROWS = 4 * RANGE_ROWS + 500  # five ranges


class Setup:
    def __init__(self, tmp_path: Path, pg_cluster, mapping: str = MAPPING) -> None:
        self.source = tmp_path / "old.db"
        db = sqlite3.connect(self.source)
        db.execute("CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, updated_at TEXT)")
        db.executemany("INSERT INTO person VALUES (?, ?, ?, ?)",
                       [(i, f" P{i} ", i % 90, str(datetime(2024, 1, 1) + timedelta(minutes=i))) for i in range(1, ROWS + 1)])
        db.commit()
        db.close()
        name = f"quick_{uuid.uuid4().hex[:8]}"
        self.url = pg_cluster.create_database(name)
        pg_cluster.psql(DDL, name)
        (tmp_path / "mapping.toml").write_text(mapping)
        self.mapping = load_mapping(tmp_path / "mapping.toml")

    def engine(self, **options) -> SyncEngine:
        return SyncEngine(f"sqlite:///{self.source}", self.url, self.mapping, **options)

    def sync(self, **options):
        [result] = self.engine(**options).run(self.mapping.tables)
        return result

    def verify(self, deep: bool = False):
        [result] = self.engine().verify_only(self.mapping.tables, deep=deep)
        return result

    def source_sql(self, *statements: str) -> None:
        db = sqlite3.connect(self.source)
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()

    def target_sql(self, *statements: str) -> None:
        with psycopg.connect(self.url) as conn:
            for statement in statements:
                conn.execute(statement)


def test_quick_verification_names_the_keys_the_deep_one_does(tmp_path: Path, pg_cluster) -> None:
    s = Setup(tmp_path, pg_cluster)
    assert s.sync().verified
    quick = s.verify()
    assert (quick.checked, quick.verified, quick.read) == ("digests", True, ROWS)
    # behind golive's back: a source row changed without moving `changed`, a target row edited by hand, a row
    # deleted in the target, and a row made by the new application (not a difference)
    s.source_sql("UPDATE person SET age = 1 WHERE id = 5000")
    s.target_sql("UPDATE person SET name = 'edited' WHERE id = 777", "DELETE FROM person WHERE id = 13000",
                 "INSERT INTO person (id, name) VALUES (9000000, 'new app')")
    quick, deep = s.verify(), s.verify(deep=True)
    assert (quick.verified, quick.mismatched_keys) == (False, ["777", "5000", "13000"])
    assert quick.checked == "digests, 4 range(s) row by row"  # ranges 1, 2, 4 and the last (the new app's row)
    assert (deep.checked, deep.mismatched_keys) == ("every row", quick.mismatched_keys)


def test_an_incremental_sync_carries_the_record_exactly(tmp_path: Path, pg_cluster) -> None:
    s = Setup(tmp_path, pg_cluster)
    s.sync()
    s.source_sql("UPDATE person SET name = 'Changed', updated_at = '2025-01-01 00:00:00' WHERE id % 97 = 0",
                 "DELETE FROM person WHERE id IN (3, 9000)",
                 "INSERT INTO person VALUES (-5, 'Below', 1, '2025-01-01 00:00:00')",
                 f"INSERT INTO person VALUES ({ROWS + 10}, 'Above', 1, '2025-01-01 00:00:00')")
    result = s.sync()
    assert (result.mode, result.updated, result.deleted, result.inserted) == ("incremental", ROWS // 97, 2, 2)
    with psycopg.connect(s.url) as conn:
        state = load(conn, "person", int_key=True)
        record = state.record
        assert record is not None and list(state.sorted_keys) == sorted(state.keys)
        # the sums moved by the rows written equal the target's sums computed now, range by range
        now = range_sums(conn, s.mapping.tables[0], record.ranges.bounds)
        assert record.ranges.differing(now) == set() and sum(record.ranges.counts) == ROWS
        # the incremental sync wrote only a patch: the rows it read (the changed ones, the overlap's, the new)
        changed = {i for i in range(1, ROWS + 1) if i % 97 == 0} | {-5, ROWS + 10}
        assert changed <= record.patch.keys() and len(record.patch) <= len(changed) + 6  # (+ the overlap's rows)
        assert load_base(conn, "person", record)
        assert len(record.base_keys) == ROWS  # the full sync's
        current = record.current(state.sorted_keys)
    db = sqlite3.connect(s.source)
    rows = db.execute("SELECT id, name, age, updated_at FROM person ORDER BY id").fetchall()
    db.close()
    assert list(current) == digests.row_digests(rows)  # the digests of the source's rows now
    assert s.verify().checked == "digests"


def test_a_patch_of_a_quarter_of_the_rows_is_folded_into_a_new_base(tmp_path: Path, pg_cluster) -> None:
    s = Setup(tmp_path, pg_cluster)
    s.sync()
    s.source_sql("UPDATE person SET age = 0, updated_at = '2025-01-01 00:00:00' WHERE id % 3 = 0",
                 "DELETE FROM person WHERE id = 10")
    assert (s.sync().updated, s.verify().checked) == (ROWS // 3, "digests")
    with psycopg.connect(s.url) as conn:
        state = load(conn, "person", int_key=True)
        assert state.record.patch == {} and load_base(conn, "person", state.record)
        assert state.record.base_keys == state.sorted_keys and len(state.sorted_keys) == ROWS - 1


def test_a_row_rejected_by_the_last_sync_keeps_its_range_checked_row_by_row(tmp_path: Path, pg_cluster) -> None:
    s = Setup(tmp_path, pg_cluster)
    s.source_sql("UPDATE person SET age = 'old' WHERE id = 6000")
    assert s.sync(max_rejects=1).rejected == 1
    quick = s.verify()  # a row never synced and still rejected: the target cannot hold it, and that is said
    assert (quick.checked, quick.verified) == ("digests, 1 range(s) row by row", False)
    assert (quick.rejected, quick.mismatched_keys) == (1, ["id=6000 (age: 'old' is not an integer)"])


def test_text_that_is_not_utf8_is_read_as_the_sync_read_it(tmp_path: Path, pg_cluster) -> None:
    s = Setup(tmp_path, pg_cluster)
    s.source_sql("UPDATE person SET name = CAST(X'4dfc6c6c6572' AS TEXT) WHERE id = 4100")  # Latin-1 "Müller"
    assert s.sync(max_rejects=1).rejected == 1
    quick = s.verify()  # (the row was rejected, never synced: its range is compared row by row, the row named)
    assert (quick.checked, quick.verified, quick.read) == ("digests, 1 range(s) row by row", False, ROWS)
    assert quick.mismatched_keys == ["id=4100 (name: invalid UTF-8 in text (PostgreSQL cannot store it))"]


def test_verification_compares_every_row_when_the_record_does_not_apply(tmp_path: Path, pg_cluster) -> None:
    s = Setup(tmp_path, pg_cluster)
    s.sync()
    s.source_sql("UPDATE person SET age = age + 1 WHERE id % 500 = 0")  # every range, stamps not moved
    spread = s.verify()
    assert (spread.checked, spread.verified) == ("every row", False) and spread.mismatched_keys[:2] == ["500", "1000"]
    s.engine().run(s.mapping.tables, full=True)
    assert s.verify().checked == "digests"
    (tmp_path / "mapping.toml").write_text(MAPPING.replace('{ from = "name", transform = "strip" }', '"name"'))
    s.mapping = load_mapping(tmp_path / "mapping.toml")  # a mapping changed since the record was made
    changed = s.verify()
    assert (changed.checked, changed.verified) == ("every row", False)  # names no longer stripped in the source's view


def test_a_postgresql_source_hashes_its_own_rows(tmp_path: Path, pg_cluster) -> None:
    s = Setup(tmp_path, pg_cluster)  # (its SQLite source is not used)
    name = f"oldpg_{uuid.uuid4().hex[:8]}"
    source_url = pg_cluster.create_database(name)
    pg_cluster.psql("CREATE TABLE person (id int PRIMARY KEY, name text, age int, updated_at timestamp);"
                    "INSERT INTO person SELECT i, ' P' || i, i % 90, timestamp '2024-01-01' + i * interval '1 min'"
                    f" FROM generate_series(1, {ROWS}) i", name)

    def verify():
        [result] = SyncEngine(source_url, s.url, s.mapping).verify_only(s.mapping.tables)
        return result

    [first] = SyncEngine(source_url, s.url, s.mapping).run(s.mapping.tables)
    assert (first.inserted, verify().checked) == (ROWS, "digests")
    pg_cluster.psql("UPDATE person SET age = 0, updated_at = timestamp '2025-01-01' WHERE id IN (10, 9000)", name)
    [second] = SyncEngine(source_url, s.url, s.mapping).run(s.mapping.tables)
    assert (second.mode, second.updated) == ("incremental", 2)
    assert (verify().checked, verify().verified) == ("digests", True)  # the patch holds the source's own hashes
    pg_cluster.psql("UPDATE person SET name = 'renamed' WHERE id = 4200", name)  # `changed` not moved
    missed = verify()
    assert (missed.checked, missed.mismatched_keys) == ("digests, 1 range(s) row by row", ["4200"])


def test_reading_digests_stops_when_the_sync_is_over(tmp_path: Path, pg_cluster) -> None:
    # a full read digests its rows in a thread; a sync that failed or was interrupted sets `stop` so
    # that the thread gives up at its next batch instead of reading the rest of the table
    import threading

    from golive.sync.engine import TableResult
    from golive.sync.source import Source

    s = Setup(tmp_path, pg_cluster)
    source, table, stop = Source(f"sqlite:///{s.source}"), s.mapping.tables[0], threading.Event()
    try:
        read = s.engine()._read_digests(source, table, TableResult("person"), 0, False, stop)
        assert read is not None and len(read[0]) == ROWS
        stop.set()
        assert s.engine()._read_digests(source, table, TableResult("person"), 0, False, stop) is None
    finally:
        source.close()
