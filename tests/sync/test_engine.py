"""The sync engine on generated tables, against real PostgreSQL: verification by key ranges narrowed to
the keys that differ, values made to fit the target's types (binary COPY) or rejected with a reason,
text COPY for other types, mapping errors found before a row moves, and golive's older key state."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest

from golive.errors import ConfigError, GoliveError
from golive.sync import state
from golive.sync.engine import SyncEngine
from golive.sync.mapping import load_mapping
from golive.sync.verify import RANGE_ROWS

MAPPING = """[[table]]
source = "person"
target = "person"
key = "id"
[table.columns]
id = "id"
name = { from = "name", transform = "strip" }
born = { from = "born", transform = "to_utc" }
age = "age"
"""
DDL = "CREATE TABLE person (id bigint PRIMARY KEY, name varchar(20) NOT NULL, born timestamptz, age int4, note text)"


def sqlite_pair(tmp_path: Path, pg_cluster, ddl: str, insert: str, rows: list[tuple[object, ...]], target_ddl: str,
                mapping: str) -> tuple[Path, str, object]:
    """A SQLite source (``ddl``, then ``insert`` of ``rows``) and a PostgreSQL target (``target_ddl``), ``mapping``
    between them: (source file, target URL, mapping)."""
    source = tmp_path / "old.db"
    db = sqlite3.connect(source)
    db.execute(ddl)
    db.executemany(insert, rows)
    db.commit()
    db.close()
    name = f"engine_{uuid.uuid4().hex[:8]}"
    url = pg_cluster.create_database(name)
    pg_cluster.psql(target_ddl, name)
    (tmp_path / "mapping.toml").write_text(mapping)
    return source, url, load_mapping(tmp_path / "mapping.toml")


def make(tmp_path: Path, pg_cluster, rows: int, mapping: str = MAPPING, ddl: str = DDL) -> tuple[Path, str, object]:
    return sqlite_pair(tmp_path, pg_cluster, "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, born TEXT,"
                       " age INTEGER, addr TEXT)", "INSERT INTO person VALUES (?, ?, ?, ?, ?)",
                       [(i, f" P{i} ", f"2001-02-03 04:05:{i % 60:02d}", i % 90, f"10.0.{i % 250}.1")
                        for i in range(1, rows + 1)], ddl, mapping)


def engine(source: Path, url: str, mapping, **options) -> SyncEngine:
    return SyncEngine(f"sqlite:///{source}", url, mapping, **options)


def test_verification_by_key_ranges_names_exactly_the_keys_that_differ(tmp_path: Path, pg_cluster) -> None:
    rows = 3 * RANGE_ROWS + 100  # several ranges, so the range path (not row by row) is the one taken
    source, url, mapping = make(tmp_path, pg_cluster, rows)
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.read, result.inserted, result.verified, result.copy_format) == (rows, rows, True, "binary")
    [again] = engine(source, url, mapping).verify_only(mapping.tables)
    assert again.verified and again.mismatched_keys == []
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE person SET name = 'changed by hand' WHERE id = 777")
        conn.execute("UPDATE person SET born = born + interval '1 second' WHERE id = 9000")
        conn.execute("DELETE FROM person WHERE id = 5000")
        conn.execute("INSERT INTO person (id, name) VALUES (5000000, 'made in new app')")  # not a difference
    [checked] = engine(source, url, mapping).verify_only(mapping.tables)
    assert (checked.verified, checked.mismatched_keys) == (False, ["777", "5000", "9000"])


def test_values_that_do_not_fit_the_target_types_are_rejected_naming_key_and_column(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 50)
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET age = 'about forty' WHERE id = 3")
    db.execute("UPDATE person SET name = 'a name far longer than twenty' WHERE id = 4")
    db.execute("UPDATE person SET age = '41' WHERE id = 5")  # text that reads as an integer fits
    db.execute("UPDATE person SET born = 'last tuesday' WHERE id = 6")
    db.execute("UPDATE person SET age = 3000000000 WHERE id = 7")
    db.commit()
    db.close()
    sync = engine(source, url, mapping, max_rejects=10)
    [result] = sync.run(mapping.tables)
    assert (result.read, result.rejected, result.inserted, result.verified) == (50, 4, 46, True)
    assert [(r["key"], r["column"], r["reason"]) for r in sync.rejects] == [
        ("id=3", "age", "'about forty' is not an integer"),
        ("id=4", "name", "29 characters, longer than varchar(20)"),
        ("id=6", "born", "'last tuesday' is not a date-time"),
        ("id=7", "age", "3000000000 is out of range for int4"),
    ]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT age, name FROM person WHERE id = 5").fetchone() == (41, "P5")


def test_a_column_type_binary_copy_does_not_cover_goes_by_text_copy(tmp_path: Path, pg_cluster) -> None:
    mapping = MAPPING + 'addr = "addr"\n'
    rows = RANGE_ROWS + 300  # ranges whose boundaries PostgreSQL finds (text COPY: golive did not see typed keys)
    source, url, loaded = make(tmp_path, pg_cluster, rows, mapping, DDL.replace("note text", "addr inet"))
    [result] = engine(source, url, loaded).run(loaded.tables)
    assert (result.copy_format, result.inserted, result.verified) == ("text", rows, True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT host(addr), born FROM person WHERE id = 7").fetchone()[0] == "10.0.7.1"
        conn.execute("UPDATE person SET addr = '10.9.9.9' WHERE id = 4200")
    [checked] = engine(source, url, loaded).verify_only(loaded.tables)
    assert (checked.verified, checked.mismatched_keys) == (False, ["4200"])


@pytest.mark.parametrize(("mapping", "message"), [
    (MAPPING.replace('age = "age"', 'years = "age"'), "mapping: table person has no column years"),
    (MAPPING.replace('name = { from = "name", transform = "strip" }\n', ""),
     "mapping: table person, column name is NOT NULL and nothing feeds it"),
])
def test_mapping_errors_against_the_target_stop_before_a_row_moves(tmp_path: Path, pg_cluster, mapping: str,
                                                                    message: str) -> None:
    source, url, loaded = make(tmp_path, pg_cluster, 10, mapping)
    with pytest.raises(ConfigError) as caught:
        engine(source, url, loaded).run(loaded.tables)
    assert caught.value.message == message
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM person").fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass('golive.sync_state')").fetchone()[0] is None  # nothing committed


def test_keys_kept_by_an_older_golive_are_carried_over(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 5)
    with psycopg.connect(url) as conn:  # what golive kept before: a row per synced key
        conn.execute("CREATE SCHEMA golive")
        conn.execute("CREATE TABLE golive.synced_keys (target text, key text, PRIMARY KEY (target, key))")
        conn.execute("CREATE TABLE golive.sync_state (target text PRIMARY KEY, watermark text, mode text NOT NULL,"
                     " synced_at timestamptz NOT NULL DEFAULT now())")
        conn.execute("INSERT INTO golive.sync_state VALUES ('person', NULL, 'full', now())")
        conn.execute("INSERT INTO golive.synced_keys SELECT 'person', i::text FROM generate_series(1, 6) i")
        conn.execute("INSERT INTO person (id, name) SELECT i, 'old' FROM generate_series(1, 6) i")
        conn.execute("INSERT INTO person (id, name) VALUES (7, 'made in new app')")
    [result] = engine(source, url, mapping).run(mapping.tables)
    # 6 was synced by golive and has left the source: deleted; 7 was never synced: left alone
    assert (result.deleted, result.updated, result.verified) == (1, 5, True)
    with psycopg.connect(url) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM person ORDER BY id")] == [1, 2, 3, 4, 5, 7]
        assert conn.execute("SELECT to_regclass('golive.synced_keys')").fetchone()[0] is None


def test_a_failed_sync_leaves_nothing(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 20)
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET age = 'x' WHERE id = 2")
    db.commit()
    db.close()
    with pytest.raises(GoliveError, match=r"1 row\(s\) rejected \(max 0\); first: table person, key id=2, column age"):
        engine(source, url, mapping).run(mapping.tables)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM person").fetchone()[0] == 0


def test_a_postgresql_source_is_read_in_one_snapshot_and_synced(tmp_path: Path, pg_cluster) -> None:
    name = f"old_{uuid.uuid4().hex[:8]}"
    source_url = pg_cluster.create_database(name)
    pg_cluster.psql("CREATE TABLE person (id int PRIMARY KEY, name text, born timestamp, age smallint, addr text);"
                    "INSERT INTO person SELECT i, ' P' || i || ' ', timestamp '2001-02-03 04:05:06' + i * interval '1 h',"
                    " i % 90, NULL FROM generate_series(1, 6000) i", name)
    _, url, mapping = make(tmp_path, pg_cluster, 0)
    [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (result.read, result.inserted, result.verified, result.copy_format) == (6000, 6000, True, "binary")
    pg_cluster.psql("UPDATE person SET name = 'renamed' WHERE id = 10; DELETE FROM person WHERE id = 11", name)
    [again] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (again.mode, again.updated, again.deleted, again.verified) == ("full", 1, 1, True)  # no `changed`: all read
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT name, born FROM person WHERE id = 10").fetchone()[0] == "renamed"
        assert str(conn.execute("SELECT born AT TIME ZONE 'UTC' FROM person WHERE id = 1").fetchone()[0]) == \
            "2001-02-03 05:05:06"  # a naive source time stamp, read as UTC
    # quick verification of a PostgreSQL source (its time stamps are digested by their repr), then a change
    [quick] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables)
    assert (quick.checked, quick.verified, quick.read) == ("digests", True, 5999)
    pg_cluster.psql("UPDATE person SET born = born + interval '1 s' WHERE id = 4000", name)
    [changed] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables)
    assert (changed.checked, changed.mismatched_keys) == ("digests, 1 range(s) row by row", ["4000"])


def test_a_synced_row_rejected_under_max_rejects_keeps_its_old_version_and_the_sync_verifies(tmp_path: Path,
                                                                                              pg_cluster) -> None:
    rows = RANGE_ROWS + 50  # a full re-sync verified by ranges, where the rejected row is only on the target side
    source, url, mapping = make(tmp_path, pg_cluster, rows)
    engine(source, url, mapping).run(mapping.tables)
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET age = 'unknown' WHERE id = 10")
    db.execute("UPDATE person SET name = ' renamed ' WHERE id = 11")
    db.commit()
    db.close()
    sync = engine(source, url, mapping, max_rejects=1)
    [result] = sync.run(mapping.tables, full=True)
    assert (result.rejected, result.updated, result.deleted, result.verified) == (1, 1, 0, True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, age, name FROM person WHERE id IN (10, 11) ORDER BY id").fetchall() == \
            [(10, 10, "P10"), (11, 11, "renamed")]
    [checked] = engine(source, url, mapping).verify_only(mapping.tables)  # the source and target do differ there
    assert (checked.verified, checked.mismatched_keys) == (False, ["id=10 (age: 'unknown' is not an integer)"])


def test_invalid_utf8_where_no_row_can_be_rejected_for_it_is_one_clear_error(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 10, MAPPING.replace('key = "id"', 'key = "id"\nchanged = "born"'))
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET born = CAST(X'FF' AS TEXT) WHERE id = 4")  # the newest `changed` stamp, unreadable
    db.commit()
    db.close()
    with pytest.raises(GoliveError) as caught:
        engine(source, url, mapping).run(mapping.tables)
    assert caught.value.message.startswith("the source holds text that is not valid UTF-8 outside what golive can reject")
    assert caught.value.hint == "fix that value in the source (it is in a key or `changed` column)"


def _state(url: str) -> tuple[str | None, bytes]:
    with psycopg.connect(url) as conn:
        watermark, keys = conn.execute("SELECT watermark, synced_keys FROM golive.sync_state").fetchone()
    return watermark, bytes(keys)


def test_integer_keys_are_kept_as_ints_other_keys_as_text_and_both_find_deletions(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 10)
    engine(source, url, mapping).run(mapping.tables)
    assert _state(url)[1][:1] == b"I"  # a packed int64 array, not text
    db = sqlite3.connect(source)
    db.execute("DELETE FROM person WHERE id = 4")
    db.execute("INSERT INTO person VALUES (11, 'P11', '2001-02-03 04:05:11', 11, '10.0.11.1')")
    db.commit()
    db.close()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO person (id, name) VALUES (500, 'made in new app')")
    [result] = engine(source, url, mapping).run(mapping.tables, full=True)
    assert (result.deleted, result.inserted, result.verified) == (1, 1, True)

    text_keyed = tmp_path / "text"
    text_keyed.mkdir()
    mapping_text = MAPPING.replace('key = "id"', 'key = "addr"') + 'note = "addr"\n'
    ddl = "CREATE TABLE person (id bigint, name varchar(20) NOT NULL, born timestamptz, age int4, note text PRIMARY KEY)"
    source, url, mapping = make(text_keyed, pg_cluster, 10, mapping_text, ddl)
    engine(source, url, mapping).run(mapping.tables)
    assert _state(url)[1][:1] == b"\x78"  # NUL-joined text, compressed
    db = sqlite3.connect(source)
    db.execute("DELETE FROM person WHERE id = 4")
    db.commit()
    db.close()
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.deleted, result.verified) == (1, True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM person WHERE note = '10.0.4.1'").fetchone()[0] == 0


def test_the_watermark_is_the_newest_stamp_read_or_asked_of_the_source(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 30, MAPPING.replace('key = "id"', 'key = "id"\nchanged = "born"'))
    engine(source, url, mapping).run(mapping.tables)
    assert _state(url)[0] == "2001-02-03 04:05:30"  # the newest of the rows read (id 30: second 30)
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET born = '2001-02-03 04:05:31' WHERE id = 7")
    db.commit()
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.mode, result.updated, _state(url)[0]) == ("incremental", 1, "2001-02-03 04:05:31")
    # the newest rows leave, and what is left is older than the overlap window: nothing is read, so the source
    # is asked for its newest stamp
    db.execute("DELETE FROM person WHERE born >= '2001-02-03 04:05:30'")
    db.execute("UPDATE person SET born = '1999-01-01 00:00:00' WHERE id = 5")
    db.commit()
    db.close()
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.deleted, result.verified) == (2, True)
    assert _state(url)[0] == "2001-02-03 04:05:29"


def test_a_source_column_the_old_app_renamed_stops_the_sync_before_a_row_moves(tmp_path: Path, pg_cluster) -> None:
    # SQLite reads a double-quoted name that is no column as a string: unchecked, every row's name
    # would become the text "name", and verification (same values on both sides) would agree
    source, url, mapping = make(tmp_path, pg_cluster, 20)
    engine(source, url, mapping).run(mapping.tables)
    db = sqlite3.connect(source)
    db.execute("ALTER TABLE person RENAME COLUMN name TO full_name")
    db.commit()
    db.close()
    said = "mapping: source table person has no column name (it has: id, full_name, born, age, addr)"
    for attempt in (lambda: engine(source, url, mapping).run(mapping.tables, full=True),
                    lambda: engine(source, url, mapping).verify_only(mapping.tables)):
        with pytest.raises(ConfigError) as caught:
            attempt()
        assert caught.value.message == said
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM person WHERE name = 'name'").fetchone()[0] == 0
    # the same for a PostgreSQL source (columns are case-sensitive there), and a table that is gone
    name = f"old_{uuid.uuid4().hex[:8]}"
    source_url = pg_cluster.create_database(name)
    pg_cluster.psql('CREATE TABLE person (id int PRIMARY KEY, "Name" text, born timestamp, age int)', name)
    with pytest.raises(ConfigError) as caught:
        SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert caught.value.message == "mapping: source table person has no column name (it has: id, Name, born, age)"
    pg_cluster.psql("DROP TABLE person", name)
    with pytest.raises(ConfigError) as caught:
        SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert caught.value.message.startswith('mapping: source table person cannot be read: relation "person" does not exist')


def test_rows_changed_in_the_new_database_since_golive_wrote_them_stop_the_sync_unless_the_source_wins(
        tmp_path: Path, pg_cluster) -> None:
    import json

    source, url, mapping = make(tmp_path, pg_cluster, 50)  # no `changed` column: rows compared by content
    engine(source, url, mapping).run(mapping.tables)
    with psycopg.connect(url) as conn:  # the new application at work: an edit, a delete, a row of its own
        conn.execute("UPDATE person SET name = 'edited in new app' WHERE id = 5")
        conn.execute("DELETE FROM person WHERE id = 7")
        conn.execute("INSERT INTO person (id, name) VALUES (1000, 'made in new app')")
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET name = ' renamed at source ' WHERE id = 6")  # the source moves on too
    db.commit()
    db.close()
    with pytest.raises(GoliveError) as caught:
        engine(source, url, mapping).run(mapping.tables)
    assert caught.value.message == ("2 row(s) changed in the new database since golive wrote them would be overwritten:"
                                    " table person, keys 5, 7; nothing was written")
    assert "golive sync --source-wins" in (caught.value.hint or "")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, name FROM person WHERE id IN (5, 6, 7, 1000) ORDER BY id").fetchall() == \
            [(5, "edited in new app"), (6, "P6"), (1000, "made in new app")]
    # before the cutover the source is the truth: --source-wins overwrites them, their versions kept first
    kept = tmp_path / "overwritten"
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET age = 'x' WHERE id = 9")  # a reject: this run fails, and overwrites nothing
    db.commit()
    with pytest.raises(GoliveError, match=r"1 row\(s\) rejected"):
        engine(source, url, mapping, source_wins=True, overwritten_dir=kept).run(mapping.tables)
    assert not kept.exists() or not any(kept.rglob("*.ndjson"))  # no version kept of a row left as it was
    db.execute("UPDATE person SET age = 9 WHERE id = 9")
    db.commit()
    db.close()
    wins = engine(source, url, mapping, source_wins=True, overwritten_dir=kept)
    [result] = wins.run(mapping.tables)
    assert (result.updated, result.inserted, result.overwritten, result.verified) == (2, 1, 2, True)
    [folder] = kept.iterdir()
    assert [json.loads(line)["name"] for line in (folder / "person.ndjson").read_text().splitlines()] == \
        ["edited in new app"]  # (the deleted row has no version left to keep)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, name FROM person WHERE id IN (5, 6, 7, 1000) ORDER BY id").fetchall() == \
            [(5, "P5"), (6, "renamed at source"), (7, "P7"), (1000, "made in new app")]
    # what golive wrote is golive's: the next syncs, full or not, find nothing to protect
    [again] = engine(source, url, mapping).run(mapping.tables, full=True)
    assert (again.updated, again.inserted, again.deleted) == (0, 0, 0)


def test_an_incremental_sync_stops_only_for_rows_both_sides_changed(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 30, MAPPING.replace('key = "id"', 'key = "id"\nchanged = "born"'))
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET born = '1990-01-01 00:00:00' WHERE id = 3")  # long before the overlap window
    db.commit()
    db.close()
    engine(source, url, mapping).run(mapping.tables)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE person SET age = 99 WHERE id IN (3, 4)")
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET born = '2030-01-01 00:00:00' WHERE id IN (4, 8)")  # 4 changed on both sides
    db.commit()
    db.close()
    with pytest.raises(GoliveError, match=r"^1 row\(s\) changed in the new database .*: table person, keys 4; nothing"):
        engine(source, url, mapping).run(mapping.tables)
    [result] = engine(source, url, mapping, source_wins=True, overwritten_dir=tmp_path / "kept").run(mapping.tables)
    assert (result.mode, result.updated) == ("incremental", 2)
    with psycopg.connect(url) as conn:  # 3 was not read (its source row did not change): the new app's age stays
        assert conn.execute("SELECT id, age FROM person WHERE id IN (3, 4) ORDER BY id").fetchall() == [(3, 99), (4, 4)]


EV_MAPPING = """{options}[[table]]
source = "ev"
target = "ev"
key = "id"
changed = "stamp"
[table.columns]
id = "id"
v = "v"
"""


def make_ev(tmp_path: Path, pg_cluster, stamps: list[object], options: str = "") -> tuple[Path, str, object]:
    source = tmp_path / "ev.db"
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, v TEXT, stamp)")  # (no affinity: stored as given)
    db.executemany("INSERT INTO ev VALUES (?, ?, ?)", [(i, f"v{i}", s) for i, s in enumerate(stamps, 1)])
    db.commit()
    db.close()
    name = f"engine_{uuid.uuid4().hex[:8]}"
    url = pg_cluster.create_database(name)
    pg_cluster.psql("CREATE TABLE ev (id bigint PRIMARY KEY, v text)", name)
    (tmp_path / "mapping.toml").write_text(EV_MAPPING.format(options=options))
    return source, url, load_mapping(tmp_path / "mapping.toml")


def _touch(source: Path, key: int, stamp: object) -> None:
    db = sqlite3.connect(source)
    db.execute("UPDATE ev SET v = 'changed', stamp = ? WHERE id = ?", (stamp, key))
    db.commit()
    db.close()


@pytest.mark.parametrize(("newest", "older", "later", "options"), [
    ("2024-06-01T09:00:00", "2024-05-01 09:00:00", "2024-06-01 10:00:00", ""),  # ' ' sorts before 'T'
    ("2024-06-01T09:00:00", "2024-05-01 09:00:00", "2024-06-01 08:58:20", ""),  # in the overlap window
    ("2024-06-01T09:00:00.5", "2024-05-01 09:00:00", "2024-06-01 09:30:00.25", ""),
    ("2024-06-01T09:00:00Z", "2024-05-01 09:00:00+00:00", "2024-06-01 12:00:00+02:00", ""),
    ("2024-06-01T09:00:00+00:00", "2024-05-01 09:00:00", "2024-06-01 11:30:00",  # naive: Berlin time (09:30Z)
     '[options]\nsource_timezone = "Europe/Berlin"\n'),
    (2460462.875, 2460431.875, 2460462.9, ""),  # julian days
    (1717232400, 1714554000, 1717236000, ""),  # unix time
    (1717232400, 1714554000, 1717232300, ""),  # unix time, in the overlap window
    (2460462.0, 2460431.875, 2460461.9996, ""),  # a whole julian day (kept as "2460462.0"), in the window
    (1717232400000, 1714554000000, 1717232300000, ""),  # unix time in milliseconds, in the window
    ("1717232400", "1714554000", "1717232300", ""),  # unix time as text (a TEXT column), in the window
    ("2024-06-01T09:00:00", "2024-05-01 09:00:00", None, ""),  # never stamped: always read
    (1717232400, 1714554000, None, ""),
])
def test_an_incremental_read_compares_sqlite_stamps_by_time_not_text(tmp_path: Path, pg_cluster, newest: object,
                                                                     older: object, later: object, options: str) -> None:
    source, url, mapping = make_ev(tmp_path, pg_cluster, [newest, older, older], options)
    engine(source, url, mapping).run(mapping.tables)
    _touch(source, 2, later)
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.mode, result.updated, result.verified) == ("incremental", 1, True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM ev WHERE id = 2").fetchone()[0] == "changed"
    [checked] = engine(source, url, mapping).verify_only(mapping.tables)
    assert checked.verified


@pytest.mark.parametrize(("stamps", "later", "what"), [
    (["2024-06-01T09:00:00", "2024-05-01 09:00:00"], "last tuesday", "a value that is not a date-time (id=2: 'last tuesday')"),
    (["2024-06-01T09:00:00", "2024-05-01 09:00:00"], 1717236000, "a number among date-time text (id=2: 1717236000)"),
    ([1717232400, 1714554000], "2024-06-01 10:00:00", "text among numbers (id=2: '2024-06-01 10:00:00')"),
])
def test_a_changed_column_mixing_kinds_or_holding_no_date_time_stops_the_incremental_sync_naming_the_row(
        tmp_path: Path, pg_cluster, stamps: list[object], later: object, what: str) -> None:
    source, url, mapping = make_ev(tmp_path, pg_cluster, stamps)
    engine(source, url, mapping).run(mapping.tables)
    _touch(source, 2, later)
    with pytest.raises(GoliveError) as caught:
        engine(source, url, mapping).run(mapping.tables)
    assert caught.value.message == (f"table ev -> ev: the `changed` column stamp holds {what}, so golive cannot tell"
                                    " which rows changed since the last sync; nothing was written")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM ev WHERE id = 2").fetchone()[0] == "v2"


@pytest.mark.parametrize("deep", [True, False])
def test_verification_reports_source_rows_that_cannot_be_carried_over(tmp_path: Path, pg_cluster, deep: bool) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 20)
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET age = 'x3' WHERE id = 3")  # rejected by the sync (allowed): not in the target
    db.commit()
    engine(source, url, mapping, max_rejects=1).run(mapping.tables)
    [checked] = engine(source, url, mapping).verify_only(mapping.tables, deep=deep)
    assert (checked.verified, checked.rejected, checked.mismatched_keys) == \
        (False, 1, ["id=3 (age: 'x3' is not an integer)"])
    db.execute("UPDATE person SET age = 'bad' WHERE id = 2")  # the target still holds the synced age 2
    db.commit()
    db.close()
    [checked] = engine(source, url, mapping).verify_only(mapping.tables, deep=deep)
    assert (checked.verified, checked.rejected, checked.mismatched_keys) == \
        (False, 2, ["id=2 (age: 'bad' is not an integer)", "id=3 (age: 'x3' is not an integer)"])
    with psycopg.connect(url) as conn:  # a real difference: listed before the rejects (allowed, often known)
        conn.execute("UPDATE person SET age = 99 WHERE id = 7")
    [checked] = engine(source, url, mapping).verify_only(mapping.tables, deep=deep)
    assert checked.mismatched_keys == ["7", "id=2 (age: 'bad' is not an integer)", "id=3 (age: 'x3' is not an integer)"]


def test_the_synced_keys_stay_exact_through_appended_inserted_and_deleted_rows(tmp_path: Path, pg_cluster) -> None:
    """The key set loaded as a sorted array: new larger keys are appended, a key in the middle or a deletion
    makes a set; whichever, the state saved holds exactly the source's keys, and deletions are found."""
    mapping_text = MAPPING.replace('key = "id"', 'key = "id"\nchanged = "born"')
    source, url, mapping = make(tmp_path, pg_cluster, 50, mapping_text)
    engine(source, url, mapping).run(mapping.tables)

    def step(sql: list[str], expected: set[int], counts: tuple[int, int, int]) -> None:
        db = sqlite3.connect(source)
        for statement in sql:
            db.execute(statement)
        db.commit()
        db.close()
        [result] = engine(source, url, mapping).run(mapping.tables)
        assert (result.mode, result.inserted, result.updated, result.deleted, result.verified) == \
            ("incremental", *counts, True)
        with psycopg.connect(url) as conn:
            blob = conn.execute("SELECT synced_keys FROM golive.sync_state").fetchone()[0]
            assert conn.execute("SELECT array_agg(id ORDER BY id) FROM person").fetchone()[0] == sorted(expected)
        assert state.unpack_keys(bytes(blob)) == expected

    new = "INSERT INTO person VALUES ({0}, 'P{0}', '2030-01-0{1} 00:00:00', 1, 'x')"
    step([new.format(51, 1), new.format(52, 1)], set(range(1, 53)), (2, 0, 0))  # appended in order
    step([new.format(0, 2)], set(range(0, 53)), (1, 0, 0))  # a key below the others
    step(["DELETE FROM person WHERE id IN (7, 8)", "UPDATE person SET born = '2030-01-03 00:00:00' WHERE id = 9"],
         set(range(0, 53)) - {7, 8}, (0, 1, 2))


def _ev_rows(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [(int(i), str(v)) for i, v in conn.execute("SELECT id, v FROM ev ORDER BY id")]


def _source_rows(source: Path) -> list[tuple[int, str]]:
    db = sqlite3.connect(source)
    try:
        return [(int(i), str(v)) for i, v in db.execute("SELECT id, v FROM ev ORDER BY id")]
    finally:
        db.close()


def test_an_incremental_sync_that_reads_most_of_the_table_compares_only_the_rows_it_read(tmp_path: Path,
                                                                                         pg_cluster) -> None:
    """A bulk job in the old application (or a long gap since the rehearsal) changed most rows: the incremental
    stage holds those, and the rows it did not read are no differences (they were compared as gone by range)."""
    source, url, mapping = make_ev(tmp_path, pg_cluster, [f"2024-05-01 {i % 24:02d}:00:00" for i in range(10_000)])
    engine(source, url, mapping).run(mapping.tables)
    db = sqlite3.connect(source)
    db.execute("UPDATE ev SET v = 'bulk', stamp = '2024-06-02 00:00:00' WHERE id > 4000")
    db.commit()
    db.close()
    [result] = engine(source, url, mapping).run(mapping.tables)
    # (6000 changed, and the rows stamped in the overlap window before the watermark)
    assert (result.mode, result.read > 6000, result.updated, result.verified) == ("incremental", True, 6000, True)
    assert _ev_rows(url) == _source_rows(source)


@pytest.mark.parametrize(("changes", "counts"), [
    # a deleted row and a new row with an old stamp (an undelete, an import): the count alone balanced
    (["DELETE FROM ev WHERE id = 5", "INSERT INTO ev VALUES (11, 'late', '2024-06-01 03:00:00')"], (1, 1)),
    (["INSERT INTO ev VALUES (12, 'late', '2024-06-01 03:00:00')"], (1, 0)),  # only the new row, not read
    # two deleted, two new ones not read: the same count, another sum of keys
    (["DELETE FROM ev WHERE id IN (4, 8)", "INSERT INTO ev VALUES (3000, 'a', '2024-06-01 03:00:00')",
      "INSERT INTO ev VALUES (-5, 'b', '2024-06-01 03:00:00')"], (2, 2)),
])
def test_new_rows_with_old_stamps_are_synced_and_never_hide_a_deletion(tmp_path: Path, pg_cluster,
                                                                      changes: list[str], counts: tuple[int, int]) -> None:
    source, url, mapping = make_ev(tmp_path, pg_cluster, [f"2024-06-01 {i:02d}:00:00" for i in range(1, 11)])
    engine(source, url, mapping).run(mapping.tables)
    db = sqlite3.connect(source)
    for statement in changes:
        db.execute(statement)
    db.commit()
    db.close()
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.inserted, result.deleted, result.verified) == (*counts, True)
    assert _ev_rows(url) == _source_rows(source)
    assert result.mode == "full" and result.note.startswith(f"read in full: {counts[0]} source row(s) not synced before"
                                                            " had a `stamp` stamp older than the last sync's watermark")
    [checked] = engine(source, url, mapping).verify_only(mapping.tables)
    assert checked.verified


def test_keys_whose_sum_passes_64_bits_still_find_deletions(tmp_path: Path, pg_cluster) -> None:
    top = 2**63 - 1
    source, url, mapping = make_ev(tmp_path, pg_cluster, [])
    db = sqlite3.connect(source)
    db.executemany("INSERT INTO ev VALUES (?, ?, '2024-06-01 00:00:00')", [(top - i, f"v{i}") for i in range(4)])
    db.commit()
    engine(source, url, mapping).run(mapping.tables)
    db.execute(f"DELETE FROM ev WHERE id = {top - 2}")
    db.commit()
    db.close()
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.mode, result.deleted, result.verified) == ("incremental", 1, True)
    assert _ev_rows(url) == _source_rows(source)


def test_naive_local_stamps_in_the_hour_the_clocks_go_back_are_read(tmp_path: Path, pg_cluster) -> None:
    """`datetime.now()` in Berlin: the last sync's newest stamp is 02:50 of the first pass (CEST); a row changed
    twenty minutes later reads 02:10 (CET, the second pass) — older by the wall clock, newer in fact."""
    source, url, mapping = make_ev(tmp_path, pg_cluster, ["2024-10-27 01:00:00", "2024-10-27 02:50:00"],
                                   '[options]\nsource_timezone = "Europe/Berlin"\n')
    engine(source, url, mapping).run(mapping.tables)
    _touch(source, 1, "2024-10-27 02:10:00")
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.mode, result.updated, result.verified) == ("incremental", 1, True)
    assert _ev_rows(url) == _source_rows(source)


def test_a_watermark_in_the_repeated_hour_reaches_back_by_the_fold() -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from golive.sync.stamps import fold_back

    berlin = ZoneInfo("Europe/Berlin")
    assert fold_back(datetime(2024, 10, 27, 2, 50), berlin) == timedelta(hours=1)
    assert fold_back(datetime(2024, 10, 27, 3, 0), berlin) == timedelta(0)
    assert fold_back(datetime(2024, 3, 31, 2, 30), berlin) == timedelta(0)  # (the gap in spring: nothing is older)
    assert fold_back(datetime(2024, 10, 27, 2, 50, tzinfo=ZoneInfo("UTC")), berlin) == timedelta(0)
    assert fold_back(datetime(2024, 10, 27, 2, 50), ZoneInfo("UTC")) == timedelta(0)


def test_a_composite_key_value_holding_the_separator_stops_the_sync(tmp_path: Path, pg_cluster) -> None:
    """("x\x1fy", "z") and ("x", "y\x1fz") would be kept as one key: a deletion of either would be missed."""
    mapping_text = MAPPING.replace('key = "id"', 'key = ["id", "addr"]') + 'note = "addr"\n'
    ddl = ("CREATE TABLE person (id bigint, name varchar(20) NOT NULL, born timestamptz, age int4, note text,"
           " PRIMARY KEY (id, note))")
    source, url, mapping = make(tmp_path, pg_cluster, 3, mapping_text, ddl)
    db = sqlite3.connect(source)
    db.execute("INSERT INTO person VALUES (8, 'P8', NULL, 1, 'x\x1f9')")
    db.commit()
    db.close()
    with pytest.raises(GoliveError, match=r"table person, key \(8, 'x\\x1f9'\): a key value holds the character U\+001F"):
        engine(source, url, mapping).run(mapping.tables)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM person").fetchone()[0] == 0


def test_a_target_made_read_only_by_someone_else_is_named_before_a_row_moves(tmp_path: Path, pg_cluster) -> None:
    source, url, mapping = make(tmp_path, pg_cluster, 3)
    name = url.rsplit("/", 1)[1]
    pg_cluster.psql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    with pytest.raises(GoliveError) as caught:
        engine(source, url, mapping).run(mapping.tables)
    assert caught.value.message.startswith("the target database is read-only (default_transaction_read_only is on")
    assert "RESET default_transaction_read_only" in (caught.value.hint or "")


@pytest.mark.parametrize("verify", [False, True])
def test_an_unreachable_target_is_one_line_naming_it_without_its_password(tmp_path: Path, pg_cluster,
                                                                          verify: bool) -> None:
    source, _, mapping = make(tmp_path, pg_cluster, 3)
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://django:s3cretpass@127.0.0.1:{port}/directory"
    with pytest.raises(GoliveError) as caught:
        sync = engine(source, url, mapping)
        sync.verify_only(mapping.tables) if verify else sync.run(mapping.tables)
    message = caught.value.message
    assert message.startswith(f"cannot connect to the target database postgresql://django:***@127.0.0.1:{port}/directory:")
    assert "s3cretpass" not in message and "\n" not in message


def pg_pair(tmp_path: Path, pg_cluster, ddl: str, rows: str, columns: list[str], key: str = '"id"',
            table: str = "price") -> tuple[str, str, object, str]:
    """A PostgreSQL source (``ddl`` and ``rows``, SQL) and a target with the same table, mapped column for column:
    (source URL, target URL, mapping, source database name)."""
    name = f"old_{uuid.uuid4().hex[:8]}"
    source_url = pg_cluster.create_database(name)
    pg_cluster.psql(f"{ddl}; {rows}", name)
    target = f"new_{uuid.uuid4().hex[:8]}"
    url = pg_cluster.create_database(target)
    pg_cluster.psql(ddl, target)
    (tmp_path / "mapping.toml").write_text(f'[[table]]\nsource = "{table}"\ntarget = "{table}"\nkey = {key}\n'
                                           '[table.columns]\n' + "".join(f'{c} = "{c}"\n' for c in columns))
    return source_url, url, load_mapping(tmp_path / "mapping.toml"), name


def test_a_value_equal_to_the_old_one_but_shown_differently_is_synced_and_verifies(tmp_path: Path, pg_cluster) -> None:
    """numeric 1.5 -> 1.50 and float8 0 -> -0 are equal by `=` but are not the same value to the application
    (they show, and sync, differently): the merge writes them and verification agrees. (The merge compared
    by `=` and verification by text: the row was left as it was, then failed verification.)"""
    source_url, url, mapping, name = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE price (id bigint PRIMARY KEY, amount numeric, ratio float8, label text)",
        "INSERT INTO price SELECT i, 1.5, 0, 'p' || i FROM generate_series(1, 20) i", ["id", "amount", "ratio", "label"])
    [first] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (first.inserted, first.verified) == (20, True)
    pg_cluster.psql("UPDATE price SET amount = 1.50 WHERE id = 3; UPDATE price SET ratio = '-0' WHERE id = 4", name)
    [again] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (again.updated, again.verified, again.mismatched_keys) == (2, True, [])
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, amount::text, ratio::text FROM price WHERE id IN (2, 3, 4) ORDER BY id"
                            ).fetchall() == [(2, "1.5", "0"), (3, "1.50", "0"), (4, "1.5", "-0")]
    [checked] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables, deep=True)
    assert checked.verified
    with psycopg.connect(url) as conn:  # by hand, in the target: equal by `=`, not the value synced
        conn.execute("UPDATE price SET amount = 1.50 WHERE id = 2; UPDATE price SET ratio = '-0' WHERE id = 5")
    for deep in (False, True):  # the quick check (range sums against the record) and row by row agree
        [checked] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables, deep=deep)
        assert (checked.verified, checked.mismatched_keys) == (False, ["2", "5"]), deep


def test_databases_set_to_another_date_style_are_read_and_written(tmp_path: Path, pg_cluster) -> None:
    """The old application's database set to `DateStyle = 'German, DMY'` (and the new one to SQL style): its dates
    are read, synced and verified (psycopg reads only ISO dates: the sync failed, `--verify-only` was an
    internal error)."""
    name = f"old_{uuid.uuid4().hex[:8]}"
    source_url = pg_cluster.create_database(name)
    pg_cluster.psql("CREATE TABLE person (id int PRIMARY KEY, name text, born timestamptz, age smallint, addr text);"
                    "INSERT INTO person SELECT i, 'P' || i, timestamptz '2001-02-03 04:05:06+00' + i * interval '1 d', 1, NULL"
                    f" FROM generate_series(1, 30) i; ALTER DATABASE {name} SET DateStyle = 'German, DMY'", name)
    _, url, mapping = make(tmp_path, pg_cluster, 0)
    pg_cluster.psql(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET DateStyle = 'SQL, DMY'", url.rsplit("/", 1)[1])
    [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (result.read, result.inserted, result.verified) == (30, 30, True)
    [checked] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables, deep=True)
    assert checked.verified
    with psycopg.connect(url, options="-c DateStyle=ISO") as conn:
        assert str(conn.execute("SELECT born AT TIME ZONE 'UTC' FROM person WHERE id = 2").fetchone()[0]) == \
            "2001-02-05 04:05:06"


def test_a_text_keyed_table_finds_a_deletion_beside_a_row_imported_with_an_old_stamp(tmp_path: Path,
                                                                                   pg_cluster) -> None:
    """One row deleted and one imported with a stamp older than the watermark: the same row count. The count
    alone said nothing was deleted (the deleted row stayed in the target, the imported one never came, and the
    sync said verified); every key is read for a table not keyed by one integer column."""
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE note (slug TEXT PRIMARY KEY, txt TEXT, stamp TEXT)",
        "INSERT INTO note VALUES (?, 't', ?)", [(f"slug-{i}", f"2024-06-01 {i:02d}:00:00") for i in range(1, 11)],
        "CREATE TABLE note (slug text PRIMARY KEY, txt text)",
        '[[table]]\nsource = "note"\ntarget = "note"\nkey = "slug"\nchanged = "stamp"\n[table.columns]\nslug = "slug"\n'
        'txt = "txt"\n')
    engine(source, url, mapping).run(mapping.tables)
    db = sqlite3.connect(source)
    db.execute("DELETE FROM note WHERE slug = 'slug-3'")
    db.execute("INSERT INTO note VALUES ('imported', 'old row', '2020-01-01 00:00:00')")
    db.commit()
    db.close()
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.inserted, result.deleted, result.verified) == (1, 1, True)
    assert result.note.startswith("read in full: 1 source row(s) not synced before")
    with psycopg.connect(url) as conn:
        assert {r[0] for r in conn.execute("SELECT slug FROM note")} == {f"slug-{i}" for i in range(1, 11) if i != 3} | \
            {"imported"}


@pytest.mark.parametrize(("column", "first", "second"), [
    ("timestamp", "2024-06-01 10:00:00", "2024-06-01 10:03:00.5"),
    ("timestamptz", "2024-06-01 10:00:00+02", "2024-06-01 10:03:00.5+00"),
    ("numeric(20,0)", "12345678901234567890", "12345678901234567891"),  # (past a float's 15 digits)
])
def test_keys_holding_dates_or_long_numbers_find_deletions_and_spare_the_new_apps_rows(
        tmp_path: Path, pg_cluster, column: str, first: str, second: str) -> None:
    """A key golive wrote one way (`2024-06-01T10:00:00`, a float's 15 digits) and the target another
    (`2024-06-01 10:00:00`, every digit) matched nothing: a deleted row stayed and every verification said
    verified; a row the new application made was overwritten."""
    source_url, url, mapping, name = pg_pair(
        tmp_path, pg_cluster, f"CREATE TABLE reading (sensor int, at {column}, value int, PRIMARY KEY (sensor, at))",
        f"INSERT INTO reading VALUES (1, '{first}', 1), (1, '{second}', 2), (2, '{first}', 3)", ["sensor", "at", "value"],
        key='["sensor", "at"]', table="reading")
    [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (result.inserted, result.verified) == (3, True)
    pg_cluster.psql(f"DELETE FROM reading WHERE sensor = 1 AND at = '{second}'", name)
    [again] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (again.deleted, again.verified) == (1, True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT sensor, value FROM reading ORDER BY value").fetchall() == [(1, 1), (2, 3)]
        conn.execute("DELETE FROM reading WHERE sensor = 2")  # by hand: verification names it
    [checked] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables)
    assert checked.verified is False and len(checked.mismatched_keys) == 1
    with psycopg.connect(url) as conn:
        conn.execute(f"INSERT INTO reading VALUES (2, '{first}', 3), (3, '{first}', 999)")  # (3, …): the new app's
    pg_cluster.psql(f"INSERT INTO reading VALUES (3, '{first}', 5)", name)
    with pytest.raises(GoliveError, match="exist in the target but were not synced by golive"):
        SyncEngine(source_url, url, mapping).run(mapping.tables)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM reading WHERE sensor = 3").fetchone() == (999,)


def test_a_key_golive_cannot_read_as_the_target_does_stops_the_sync(tmp_path: Path, pg_cluster) -> None:
    """A float key: 0.1 + 0.2 is `0.3` as golive writes keys (15 digits) and `0.30000000000000004` to PostgreSQL.
    Keys are matched as text, so such a table would hide its deletions: the first rows' keys are checked against
    the target's reading of them and the sync stops."""
    source_url, url, mapping, _ = pg_pair(tmp_path, pg_cluster, "CREATE TABLE reading (at float8 PRIMARY KEY, value int)",
                                          "INSERT INTO reading VALUES (0.1::float8 + 0.2::float8, 1), (2, 2)",
                                          ["at", "value"], key='"at"', table="reading")
    with pytest.raises(GoliveError, match=r"table reading: golive reads the key of its first row as .*cannot be matched"):
        SyncEngine(source_url, url, mapping).run(mapping.tables)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM reading").fetchone() == (0,)


def test_an_incremental_sync_reads_a_date_time_key_as_the_target_does(tmp_path: Path, pg_cluster) -> None:
    """SQLite's text `2024-06-01 10:00:00` is the key `2024-06-01T10:00:00.000000` once read into a timestamp
    column: the deletion is found from the source's keys, without reading the table in full ("not synced
    before", as every key looked)."""
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster,
        "CREATE TABLE reading (sensor INTEGER, at TEXT, value INTEGER, stamp TEXT, PRIMARY KEY (sensor, at))",
        "INSERT INTO reading VALUES (1, ?, ?, '2024-06-01 12:00:00')", [(f"2024-06-01 10:0{i}:00", i) for i in range(5)],
        "CREATE TABLE reading (sensor int, at timestamp, value int, PRIMARY KEY (sensor, at))",
        '[[table]]\nsource = "reading"\ntarget = "reading"\nkey = ["sensor", "at"]\nchanged = "stamp"\n[table.columns]\n'
        'sensor = "sensor"\nat = "at"\nvalue = "value"\n')
    engine(source, url, mapping).run(mapping.tables)
    db = sqlite3.connect(source)
    db.execute("DELETE FROM reading WHERE at = '2024-06-01 10:03:00'")
    db.commit()
    db.close()
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.mode, result.deleted, result.verified, result.note) == ("incremental", 1, True, "")


def test_a_date_python_cannot_hold_is_a_reject_naming_key_and_column(tmp_path: Path, pg_cluster) -> None:
    """`infinity` (or a year past 9999) in a PostgreSQL source stopped the read naming no table, key or column
    ("timestamp too large"), and `--verify-only` was an internal error: it is now a reject with a reason."""
    name = f"old_{uuid.uuid4().hex[:8]}"
    source_url = pg_cluster.create_database(name)
    pg_cluster.psql("CREATE TABLE person (id int PRIMARY KEY, name text, born timestamptz, age smallint, addr text);"
                    "INSERT INTO person VALUES (1, 'a', now(), 1, NULL), (2, 'b', 'infinity', 2, NULL),"
                    " (3, 'c', '2001-02-03 04:05:06+00', 3, NULL)", name)
    _, url, mapping = make(tmp_path, pg_cluster, 0)
    with pytest.raises(GoliveError, match=r"1 row\(s\) rejected \(max 0\); first: table person, key id=2, column born"):
        SyncEngine(source_url, url, mapping).run(mapping.tables)
    [result] = SyncEngine(source_url, url, mapping, max_rejects=1).run(mapping.tables)
    assert (result.read, result.inserted, result.rejected, result.verified) == (3, 2, 1, True)
    [checked] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables, deep=True)
    assert checked.verified is False and checked.mismatched_keys[0].startswith("id=2 (born: ")


def test_a_postgresql_source_whose_changed_column_is_text_is_named_at_the_first_sync(tmp_path: Path,
                                                                                   pg_cluster) -> None:
    """A text `changed` column passed the first (full) sync, then every incremental one failed with "operator does
    not exist: text >= timestamp", naming no table — at the final sync, perhaps. It is named before a row moves."""
    name = f"old_{uuid.uuid4().hex[:8]}"
    source_url = pg_cluster.create_database(name)
    pg_cluster.psql("CREATE TABLE person (id int PRIMARY KEY, name text, born text, age smallint, addr text);"
                    "INSERT INTO person VALUES (1, 'a', '2024-06-01T09:00:00', 1, NULL)", name)
    _, url, mapping = make(tmp_path, pg_cluster, 0, MAPPING.replace('key = "id"', 'key = "id"\nchanged = "born"'))
    with pytest.raises(ConfigError, match=r"mapping: source table person: its `changed` column born is of type text,"
                                          " not a date-time or number"):
        SyncEngine(source_url, url, mapping).run(mapping.tables)
    cast = MAPPING.replace('source = "person"', 'query = "SELECT id, name, born::timestamptz AS born, age FROM person"')
    (tmp_path / "cast").mkdir()
    _, url, mapping = make(tmp_path / "cast", pg_cluster, 0, cast.replace('key = "id"', 'key = "id"\nchanged = "born"'))
    [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)  # the hint's way out
    assert (result.inserted, result.verified) == (1, True)
    pg_cluster.psql("UPDATE person SET name = 'changed', born = '2024-06-01T10:30:00'", name)
    [again] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (again.mode, again.updated, again.verified) == ("incremental", 1, True)


def test_a_referenced_file_must_be_where_the_new_application_serves_it(tmp_path: Path, pg_cluster) -> None:
    """The photo check looked only in the `from` folders: a file there that never reached `to` (a folder the copy
    did not follow) passed. It must be in a `from` folder and in that folder's `to`."""
    mapping = MAPPING.replace('age = "age"', 'age = "age"\nnote = "addr"').replace('key = "id"', 'key = "id"\nfiles = ["note"]')
    source, url, mapping = make(tmp_path, pg_cluster, 3, mapping)
    old, new = tmp_path / "old-media", tmp_path / "new-media"
    for i in range(1, 4):
        for root in (old, new):
            (root / f"10.0.{i}.1").parent.mkdir(parents=True, exist_ok=True)
            (root / f"10.0.{i}.1").write_bytes(b"photo")
    (new / "10.0.2.1").unlink()
    with pytest.raises(GoliveError, match=r"first: table person, key id=2, column note: file 10\.0\.2\.1 is in .*old-media"
                                          r" but not in .*new-media, which the new application serves"):
        engine(source, url, mapping, media_roots=((old, new),)).run(mapping.tables)
    (new / "10.0.2.1").write_bytes(b"photo")
    [result] = engine(source, url, mapping, media_roots=((old, new),)).run(mapping.tables)
    assert (result.inserted, result.verified) == (3, True)


def test_array_columns_are_synced_and_verified(tmp_path: Path, pg_cluster) -> None:
    """A list into an `int[]` or `text[]` column went as JSON (`[1, 2]`: "malformed array literal"), so a table with
    an array column could not be synced at all."""
    source_url, url, mapping, name = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE post (id bigint PRIMARY KEY, tags int[], words text[], meta jsonb)",
        "INSERT INTO post VALUES (1, '{1,2}', '{\"a, b\",\"it''s\",NULL}', '{\"k\": [1]}'),"
        " (2, NULL, '{}', '[1, 2]'), (3, '{3,NULL}', NULL, NULL)", ["id", "tags", "words", "meta"], table="post")
    [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (result.inserted, result.verified, result.copy_format) == (3, True, "text")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT tags, words, meta FROM post ORDER BY id").fetchall() == [
            ([1, 2], ["a, b", "it's", None], {"k": [1]}), (None, [], [1, 2]), ([3, None], None, None)]
    pg_cluster.psql("UPDATE post SET tags = '{2,1}' WHERE id = 1", name)
    [again] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (again.updated, again.verified) == (1, True)
    [checked] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables, deep=True)
    assert checked.verified


def test_a_value_the_target_refuses_while_staging_names_table_and_column(tmp_path: Path, pg_cluster) -> None:
    """A value no check foresaw (text into an `inet` column, which goes by text COPY) stopped the sync with
    PostgreSQL's message alone; the table and column were only in `-v`."""
    source, url, mapping = make(tmp_path, pg_cluster, 3, MAPPING.replace('age = "age"', 'age = "age"\nnote = "addr"'),
                                DDL.replace("note text", "note inet"))
    db = sqlite3.connect(source)
    db.execute("UPDATE person SET addr = 'not an address' WHERE id = 2")
    db.commit()
    db.close()
    with pytest.raises(GoliveError, match=r"^table person: the target refused a row: invalid input syntax for type inet:"
                                          r" \"not an address\" \(COPY golive_stage, line 2, column note: .*\); nothing"):
        engine(source, url, mapping).run(mapping.tables)


def test_a_stamp_in_the_future_does_not_hide_the_changes_made_until_then(tmp_path: Path, pg_cluster) -> None:
    """One row stamped 2099 (a clock, a typo) became the watermark: every change made after it was skipped by the
    incremental syncs, which said verified. The watermark is never later than the sync's own start."""
    from datetime import datetime as wall

    source, url, mapping = make_ev(tmp_path, pg_cluster, ["2024-06-01 01:00:00", "2099-01-01 00:00:00",
                                                          "2024-06-01 03:00:00"])
    [first] = engine(source, url, mapping).run(mapping.tables)
    assert first.note.startswith("its newest `stamp` stamp (2099-01-01 00:00:00) is in the future")
    _touch(source, 3, str(wall.now().replace(microsecond=0)))
    [again] = engine(source, url, mapping).run(mapping.tables)
    assert (again.mode, again.updated, again.verified) == ("incremental", 1, True)
    assert _ev_rows(url) == _source_rows(source)


def test_a_stamp_a_little_ahead_is_no_news(tmp_path: Path, pg_cluster) -> None:
    """The old server's clock a minute fast: inside the overlap window, which the next read reaches back by anyway;
    no note on every sync."""
    from datetime import datetime as wall
    from datetime import timedelta

    ahead = str((wall.now() + timedelta(seconds=60)).replace(microsecond=0))
    source, url, mapping = make_ev(tmp_path, pg_cluster, ["2024-06-01 01:00:00", ahead])
    [first] = engine(source, url, mapping).run(mapping.tables)
    assert (first.inserted, first.note) == (2, "")
    _touch(source, 1, str(wall.now().replace(microsecond=0)))
    [again] = engine(source, url, mapping).run(mapping.tables)
    assert (again.mode, again.updated, again.verified) == ("incremental", 1, True)


def test_json_from_a_postgresql_source_arrives_as_written(tmp_path: Path, pg_cluster) -> None:
    """psycopg loaded the source's json as Python values: a JSON string "hello" arrived as the text hello and was
    rejected as not JSON, and 1.00000000000000000001 became the float 1.0."""
    import psycopg

    source_url, url, mapping, _ = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE doc (id bigint PRIMARY KEY, j json, jb jsonb)",
        """INSERT INTO doc VALUES (1, '"hello"', '"hello"'), (2, '{"big": 1.00000000000000000001, "a": 1, "a": 2}',
        '{"big": 1.00000000000000000001}'), (3, 'null', 'null'), (4, NULL, NULL)""", ["id", "j", "jb"], table="doc")
    [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (result.inserted, result.rejected, result.verified) == (4, 0, True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, j::text, jb::text FROM doc ORDER BY id").fetchall() == [
            (1, '"hello"', '"hello"'), (2, '{"big": 1.00000000000000000001, "a": 1, "a": 2}',
                                        '{"big": 1.00000000000000000001}'), (3, "null", "null"), (4, None, None)]


def test_intervals_from_a_postgresql_source_keep_their_months_and_years(tmp_path: Path, pg_cluster) -> None:
    """An interval was read as a Python timedelta: '1 mon' became '30 days', '1 year 2 mons 3 days' '428 days' (not
    the same value: a date less 3 months is not the date less 90 days), and verification said yes — the source's
    true value written by hand then counted as the difference."""
    source_url, url, mapping, _ = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE price (id bigint PRIMARY KEY, every interval, steps interval[])",
        "INSERT INTO price VALUES (1, '1 mon', '{1 mon,2 years}'), (2, '1 year 2 mons 3 days', NULL),"
        " (3, '-1 mon +1 day 00:00:01.5', '{}'), (4, NULL, '{1 day}')", ["id", "every", "steps"])
    [first] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (first.inserted, first.verified) == (4, True)
    shown = "SELECT id, every::text, steps::text FROM price ORDER BY id"
    with psycopg.connect(source_url) as old, psycopg.connect(url) as new:
        assert new.execute(shown).fetchall() == old.execute(shown).fetchall() == [
            (1, "1 mon", '{"1 mon","2 years"}'), (2, "1 year 2 mons 3 days", None), (3, "-1 mons +1 day 00:00:01.5", "{}"),
            (4, None, '{"1 day"}')]
    [again] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables, deep=True)
    assert (again.verified, again.mismatched_keys) == (True, [])


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_database_that_closes_the_connection_mid_sync_is_named_and_nothing_is_written(
        tmp_path: Path, pg_cluster, monkeypatch: pytest.MonkeyPatch, side: str) -> None:
    """An administrator ending golive's session (or a restart) mid-sync said only "consuming input failed: server
    closed the connection unexpectedly" or "sending copy data failed: …", naming neither database."""
    source_url, url, _, name = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE price (id bigint PRIMARY KEY, label text)",
        "INSERT INTO price SELECT i, 'p' || i FROM generate_series(1, 30000) i", ["id", "label"])
    database = name if side == "source" else url.rsplit("/", 1)[1]
    module = f"golive_test_cut_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import psycopg\ndone = []\n\ndef cut(value):\n    if not done:\n        done.append(1)\n"
        f"        with psycopg.connect({pg_cluster.url('postgres')!r}, autocommit=True) as admin:\n"
        "            admin.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
        f" AND pid <> pg_backend_pid()', ({database!r},))\n    return value\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mapping.toml").write_text('[[table]]\nsource = "price"\ntarget = "price"\nkey = "id"\n[table.columns]\n'
                                           f'id = "id"\nlabel = {{ from = "label", transform = "{module}:cut" }}\n')
    cut = load_mapping(tmp_path / "mapping.toml")
    with pytest.raises(GoliveError) as caught:
        SyncEngine(source_url, url, cut).run(cut.tables)
    assert re.fullmatch(rf"the {side} database closed the connection during table price of the sync \(.+\); nothing"
                        " was written", caught.value.message), caught.value.message
    assert caught.value.hint == (f"check that the {side} database is up and that nothing ends golive's sessions, then"
                                 " run again")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM price").fetchone() == (0,)


def test_a_source_table_in_another_schema_is_named_schema_dot_table(tmp_path: Path, pg_cluster) -> None:
    """`source = "Legacy.Items"` was read as one name ("relation "Legacy.Items" does not exist"), and a quoted
    `'"Legacy"."Items"'` was quoted again: only a query could read a table outside the search path."""
    source_url, url, _, name = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE price (id bigint PRIMARY KEY, label text)", "SELECT 1", ["id", "label"])
    pg_cluster.psql('CREATE SCHEMA "Legacy"; CREATE TABLE "Legacy"."Items" (id bigint PRIMARY KEY, label text);'
                    """ INSERT INTO "Legacy"."Items" VALUES (1, 'one'), (2, 'two')""", name)
    (tmp_path / "mapping.toml").write_text('[[table]]\nsource = "Legacy.Items"\ntarget = "price"\nkey = "id"\n'
                                           '[table.columns]\nid = "id"\nlabel = "label"\n')
    mapping = load_mapping(tmp_path / "mapping.toml")
    [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (result.inserted, result.verified) == (2, True)


def test_a_percent_sign_in_a_postgresql_sources_query_or_column_is_sent_as_written(tmp_path: Path, pg_cluster) -> None:
    """A query's `LIKE 'x%'` or a source column named `rate%` stopped the sync with psycopg's "only '%s', '%b', '%t'
    are allowed as placeholders" and a traceback: golive's statements on the source take parameters."""
    source_url, url, _, name = pg_pair(
        tmp_path, pg_cluster, 'CREATE TABLE price (id bigint PRIMARY KEY, label text, "rate%" int, stamp timestamptz)',
        "INSERT INTO price SELECT i, 'x' || i, i, now() FROM generate_series(1, 20) i", ["id"])
    pg_cluster.psql('ALTER TABLE price RENAME COLUMN "rate%" TO rate', url.rsplit("/", 1)[1])
    (tmp_path / "mapping.toml").write_text(
        '[[table]]\nquery = "SELECT * FROM price WHERE label LIKE \'x%\' AND label NOT LIKE \'%7\'"\ntarget = "price"\n'
        'key = "id"\nchanged = "stamp"\n[table.columns]\nid = "id"\nlabel = "label"\nrate = "rate%"\nstamp = "stamp"\n')
    mapping = load_mapping(tmp_path / "mapping.toml")
    [first] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (first.inserted, first.verified) == (18, True)  # (x7 and x17 left out by the query)
    pg_cluster.psql("""UPDATE price SET label = 'x33', "rate%" = 99, stamp = now() + interval '1 second' WHERE id = 3;"""
                    " UPDATE price SET label = 'x17', stamp = now() + interval '1 second' WHERE id = 4", name)
    [again] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (again.mode, again.updated, again.deleted, again.verified) == ("incremental", 1, 1, True)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT label, rate FROM price WHERE id IN (3, 4) ORDER BY id").fetchall() == [("x33", 99)]
    for deep in (False, True):
        [checked] = SyncEngine(source_url, url, mapping).verify_only(mapping.tables, deep=deep)
        assert checked.verified


def test_a_query_that_repeats_rows_stops_an_incremental_sync_too(tmp_path: Path, pg_cluster) -> None:
    """A query joined so that it repeats rows (an entry per family member) passed an incremental sync that read none
    of the repeated rows: "UNCHANGED 93" of 88 rows, verified yes; only a full read said so."""
    source_url, url, _, name = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE price (id bigint PRIMARY KEY, label text, stamp timestamptz)",
        "INSERT INTO price SELECT i, 'p' || i, now() - i * interval '1 day' FROM generate_series(1, 20) i", ["id"])
    pg_cluster.psql("CREATE TABLE tag (price_id bigint, tag text); INSERT INTO tag VALUES (3, 'a'), (3, 'b'), (7, 'c')",
                    name)

    def mapping(query: str) -> object:
        (tmp_path / "mapping.toml").write_text(f'[[table]]\nquery = "{query}"\ntarget = "price"\nkey = "id"\n'
                                               'changed = "stamp"\n[table.columns]\nid = "id"\nlabel = "label"\n'
                                               'stamp = "stamp"\n')
        return load_mapping(tmp_path / "mapping.toml")

    first = mapping("SELECT id, label, stamp FROM price")
    assert SyncEngine(source_url, url, first).run(first.tables)[0].inserted == 20
    joined = mapping("SELECT p.id, p.label, p.stamp FROM price p LEFT JOIN tag t ON t.price_id = p.id")
    pg_cluster.psql("UPDATE price SET label = 'changed', stamp = now() WHERE id = 12", name)
    for full in (False, True):  # (the incremental reads row 12 alone; a full read met the key twice as it staged —
        # and naming it opened a second cursor of the same name: "cursor golive_batches already exists")
        with pytest.raises(GoliveError) as caught:
            SyncEngine(source_url, url, joined).run(joined.tables, full=full)
        assert caught.value.message == ("table query -> price: the source has key id = 3 more than once; nothing was"
                                        " written"), full
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT label FROM price WHERE id = 12").fetchone() == ("p12",)


def test_a_connection_lost_during_a_commit_that_went_through_is_a_sync_that_was_written(tmp_path: Path) -> None:
    """The target's session ended while its COMMIT waited for a synchronous standby: the transaction had committed
    locally, but the sync said "whether the sync was written is not known" and the run was rolled back — "the system
    is as it was before" — with the new rows in the target. golive now asks PostgreSQL what became of it."""
    import threading
    import time

    from golive.sandbox.postgres import PostgresCluster

    cluster = PostgresCluster(settings={"synchronous_standby_names": "nobody"}).start()
    try:
        source_url, url, mapping, _ = pg_pair(
            tmp_path, cluster, "CREATE TABLE price (id bigint PRIMARY KEY, label text)",
            "INSERT INTO price SELECT i, 'p' || i FROM generate_series(1, 100) i", ["id", "label"])
        target = url.rsplit("/", 1)[1]
        cluster.psql(f'ALTER DATABASE "{target}" SET synchronous_commit = on')  # (its commits wait for "nobody")
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(_run_or_error(source_url, url, mapping)))
        worker.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND wait_event = 'SyncRep'",
                    (target,)).fetchall():
                time.sleep(0.05)
        worker.join(60)
        [result] = outcome
        assert not isinstance(result, Exception), result
        assert (result.inserted, result.verified) == (100, True)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM price").fetchone() == (100,)
    finally:
        cluster.stop()


def _run_or_error(source_url: str, url: str, mapping: object) -> object:
    try:
        [result] = SyncEngine(source_url, url, mapping).run(mapping.tables)  # type: ignore[attr-defined]
        return result
    except Exception as exc:
        return exc


def test_a_table_whose_name_has_a_dot_is_still_that_table(tmp_path: Path, pg_cluster) -> None:
    """`source = "schema.table"` made a SQLite table named "weird.name" unreadable ("no such table"), and a
    PostgreSQL `public."weird.name"` too: a dotted name is a schema only where no table has the name itself."""
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, 'CREATE TABLE "weird.name" (id INTEGER PRIMARY KEY, label TEXT)',
        'INSERT INTO "weird.name" VALUES (?, ?)', [(1, "one")], "CREATE TABLE price (id bigint PRIMARY KEY, label text)",
        '[[table]]\nsource = "weird.name"\ntarget = "price"\nkey = "id"\n[table.columns]\nid = "id"\nlabel = "label"\n')
    [result] = engine(source, url, mapping).run(mapping.tables)
    assert (result.inserted, result.verified) == (1, True)
    source_url, url, _, name = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE price (id bigint PRIMARY KEY, label text)", "SELECT 1", ["id", "label"])
    pg_cluster.psql("""CREATE TABLE "weird.name" (id bigint PRIMARY KEY, label text); INSERT INTO "weird.name"
                    VALUES (1, 'one'), (2, 'two')""", name)
    [again] = SyncEngine(source_url, url, mapping).run(mapping.tables)
    assert (again.inserted, again.verified) == (2, True)


def test_a_wal_source_on_a_mount_golive_cannot_write_says_why(tmp_path: Path) -> None:
    """A SQLite source in WAL mode (as the README recommends) whose -shm file is not there and cannot be made (a
    read-only mount, a folder of another user) was "cannot be read: unable to open database file — check
    [source].url: it must name the old application's SQLite file": a right URL blamed."""
    import subprocess

    from golive.sync.source import Source

    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)
    try:
        db = sqlite3.connect(folder / "flask.db")
        db.execute("PRAGMA journal_mode=wal")
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()  # (the last connection: -wal and -shm go with it)
        assert sorted(p.name for p in folder.iterdir()) == ["flask.db"]
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        with pytest.raises(GoliveError) as caught:
            Source(f"sqlite:///{folder}/flask.db")
        assert caught.value.message.endswith(" — it is in WAL mode, and SQLite must create flask.db-shm beside it to"
                                             " read it, which it cannot here"), caught.value.message
        assert caught.value.hint == (f"run golive as a user that may write to {folder} (the old application's), on a"
                                     " writable mount of it")
    finally:
        subprocess.run(["umount", str(folder)], check=True)
