"""Source values into the target's column types by the sync, against real PostgreSQL: what is stored is what
PostgreSQL's own text input makes of the value, and what PostgreSQL would refuse is a reject naming the table,
key and column (never a COPY that fails the whole sync)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from golive.errors import GoliveError
from tests.sync.test_engine import engine, sqlite_pair

JSON_DDL = "CREATE TABLE tj (id bigint PRIMARY KEY, j jsonb, k json)"
JSON_MAPPING = '[[table]]\nsource = "tj"\ntarget = "tj"\nkey = "id"\n[table.columns]\nid = "id"\nj = "j"\nk = "k"\n'


def _pg_reads(url: str, text: str, typname: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute(f"SELECT %s::text::{typname}::text", (text,)).fetchone()[0])


def test_json_text_is_stored_as_postgresql_reads_it_and_what_it_refuses_is_a_reject(tmp_path: Path, pg_cluster) -> None:
    """JSON text went through json.loads and back: 1.10 became 1.1, 12345678901234567890.5 a float, a `json` column
    lost its duplicate keys and formatting, and verification said verified. NaN, Infinity and (jsonb) a \\u0000
    escape failed the whole COPY."""
    numbers = '{"price": 1.10, "big": 1.00000000000000000001, "x": 12345678901234567890.5}'
    rows = [(1, numbers, numbers), (2, '{"a":1,"a":2}', '{"a":1,"a":2}'), (3, "1e400", " [1e400,\t-0] "),
            (4, "{}", '"\\u0000"'), (5, '"\\u0000"', "{}"), (6, "NaN", "{}"), (7, "{}", '{"n": -Infinity}'),
            (8, "[1, 2", "{}"), (9, '"\\ud800"', '"\\ud800"'), (10, '"\\ud83d\\ude00"', '"\\ud800"')]
    source, url, mapping = sqlite_pair(tmp_path, pg_cluster, "CREATE TABLE tj (id INTEGER PRIMARY KEY, j TEXT, k TEXT)",
                                       "INSERT INTO tj VALUES (?, ?, ?)", rows, JSON_DDL, JSON_MAPPING)
    sync = engine(source, url, mapping, max_rejects=10)
    [result] = sync.run(mapping.tables)
    assert (result.copy_format, result.read, result.rejected, result.verified) == ("binary", 10, 5, True)
    assert [(r["key"], r["column"], r["reason"]) for r in sync.rejects] == [
        ("id=5", "j", "a \\u0000 escape in JSON (jsonb cannot store it)"),
        ("id=6", "j", "NaN is not valid JSON (PostgreSQL refuses it)"),
        ("id=7", "k", "-Infinity is not valid JSON (PostgreSQL refuses it)"),
        ("id=8", "j", "not valid JSON (Expecting ',' delimiter)"),
        ("id=9", "j", "an unpaired surrogate escape in JSON (jsonb cannot store it)"),
    ]
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT id, j::text, k::text FROM tj ORDER BY id").fetchall()
    kept = [row for row in rows if row[0] in (1, 2, 3, 4, 10)]
    assert stored == [(i, _pg_reads(url, j, "jsonb"), _pg_reads(url, k, "json")) for i, j, k in kept]
    assert stored[0][2] == numbers and stored[1][1] == '{"a": 2}'  # json: the text as written; jsonb: normalised
    [again] = engine(source, url, mapping, max_rejects=10).verify_only(mapping.tables, deep=True)
    assert [k.split()[0] for k in again.mismatched_keys] == ["id=5", "id=6", "id=7", "id=8", "id=9"]  # the rejects alone


def test_null_into_a_not_null_column_and_floats_postgresql_refuses_are_rejects(tmp_path: Path, pg_cluster) -> None:
    """A NULL into a NOT NULL column failed the whole COPY ("null value in column "approved" of relation
    "golive_stage" … line 17"), a REAL too large for float4 failed it as it was packed, and the text '1e400' became
    infinity where PostgreSQL refuses it. An infinity written as one stays one."""
    rows = [(1, 1, 1.5, 2.5), (2, None, 1.5, 2.5), (3, 1, "1e400", 0), (4, 1, "Infinity", 0),
            (5, 1, float("inf"), " -inf"), (6, 1, "1e-400", 0), (7, 1, "1_000.5", 0), (8, 1, 0, 1e39), (9, 1, 0, 1e-50),
            (10, 1, " 2.5\n", "3.25"), (11, 0, "-0", "NaN"), (12, 1, 1e308, 3.4028235e38),
            (13, 1, "0E5", "-0e-900")]
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE tf (id INTEGER PRIMARY KEY, approved, f, r)", "INSERT INTO tf VALUES (?, ?, ?, ?)",
        rows, "CREATE TABLE tf (id bigint PRIMARY KEY, approved bool NOT NULL DEFAULT false, f float8, r float4)",
        '[[table]]\nsource = "tf"\ntarget = "tf"\nkey = "id"\n[table.columns]\nid = "id"\napproved = "approved"\nf = "f"\n'
        'r = "r"\n')
    sync = engine(source, url, mapping, max_rejects=10)
    [result] = sync.run(mapping.tables)
    assert (result.copy_format, result.inserted, result.rejected, result.verified) == ("binary", 7, 6, True)
    assert [(r["key"], r["column"], r["reason"]) for r in sync.rejects] == [
        ("id=2", "approved", "NULL in a NOT NULL column"), ("id=3", "f", "'1e400' is out of range for float8"),
        ("id=6", "f", "'1e-400' is out of range for float8"), ("id=7", "f", "'1_000.5' is not a number"),
        ("id=8", "r", "1e+39 is out of range for float4"), ("id=9", "r", "1e-50 is out of range for float4")]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, approved, f::text, r::text FROM tf ORDER BY id").fetchall() == [
            (1, True, "1.5", "2.5"), (4, True, "Infinity", "0"), (5, True, "Infinity", "-Infinity"),
            (10, True, "2.5", "3.25"), (11, False, "-0", "NaN"), (12, True, "1e+308", "3.4028235e+38"),
            (13, True, "0", "-0")]


def _pg_takes(url: str, text: str, typname: str) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute(f"SELECT %s::text::{typname}", (text,))
        except psycopg.errors.DataError:
            return False
    return True


def test_numbers_a_numeric_column_cannot_hold_are_rejects_where_postgresql_failed_the_whole_copy(
        tmp_path: Path, pg_cluster) -> None:
    """999.995 into numeric(5,2) rounds to 1000.00: PostgreSQL failed the whole COPY with "numeric field overflow"
    (naming no key), and Python's Decimal took '1_000' and '٣', which PostgreSQL 15 refuses. Each verdict here is
    checked against PostgreSQL's own reading of the same text."""
    amounts = ["999.994", "999.995", "-999.995", "-999.994", " 12.5 ", "1_000", "٣", "Infinity", "NaN", "1e2", "1e3",
               "0.005", "abc", "1e-20000", "9e999999"]  # (the last two: beyond any numeric; psycopg could not pack them)
    tiny = ["0.009994", "0.009995", "0.01", "-0.00999", "1e-9"]
    rows = [(i, a, tiny[(i - 1) % len(tiny)], "Infinity" if i == 1 else "123.456") for i, a in enumerate(amounts, start=1)]
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE tn (id INTEGER PRIMARY KEY, amount, tiny, free)",
        "INSERT INTO tn VALUES (?, ?, ?, ?)", rows,
        "CREATE TABLE tn (id bigint PRIMARY KEY, amount numeric(5,2), tiny numeric(3,5), free numeric)",
        '[[table]]\nsource = "tn"\ntarget = "tn"\nkey = "id"\n[table.columns]\nid = "id"\namount = "amount"\n'
        'tiny = "tiny"\nfree = "free"\n')
    sync = engine(source, url, mapping, max_rejects=20)
    [result] = sync.run(mapping.tables)
    rejected = {r["key"]: (r["column"], r["reason"]) for r in sync.rejects}
    for i, amount, small, _ in rows:  # the sync refuses exactly what PostgreSQL refuses (column by column, first at fault)
        takes = (_pg_takes(url, amount, "numeric(5,2)"), _pg_takes(url, small, "numeric(3,5)"))
        assert (f"id={i}" not in rejected) == all(takes), (amount, small, rejected.get(f"id={i}"))
        if not takes[0]:
            assert rejected[f"id={i}"][0] == "amount"
    assert rejected["id=2"] == ("amount", "'999.995' is out of range for numeric(5,2): the largest it holds is 999.99")
    assert rejected["id=6"] == ("amount", "'1_000' is not a number")
    assert rejected["id=8"] == ("amount", "'Infinity': numeric(5,2) cannot hold an infinite value")
    assert rejected["id=12"] == ("tiny", "'0.009995' is out of range for numeric(3,5): the largest it holds is 0.00999")
    assert rejected["id=14"] == ("amount", "'1e-20000' is out of range for PostgreSQL's numeric (at most 131072 digits"
                                           " before the point and 16383 after)")
    assert (result.copy_format, result.read, result.inserted, result.verified) == ("binary", 15, 15 - len(rejected), True)
    with psycopg.connect(url) as conn:
        stored = dict(conn.execute("SELECT id, amount::text || ' ' || tiny::text || ' ' || free::text FROM tn").fetchall())
    assert stored[1] == "999.99 0.00999 Infinity" and stored[5] == "12.50 0.00000 123.456"  # rounded as PostgreSQL rounds
    assert stored[9] == "NaN -0.00999 123.456"  # (NaN fits a numeric(p,s); an infinity only an unconstrained numeric)


def test_a_null_into_a_not_null_column_or_json_jsonb_refuses_in_a_table_copied_as_text_is_a_reject(
        tmp_path: Path, pg_cluster) -> None:
    """A table with a column type binary COPY does not carry (inet) goes by text COPY, where a NULL into a NOT NULL
    column, a \\u0000 escape into jsonb or text that is not JSON failed the whole COPY naming no key."""
    rows = [(1, "10.0.0.1", "one", '{"a": 1.10}'), (2, "10.0.0.2", None, "{}"), (3, "10.0.0.3", "three", '"\\u0000"'),
            (4, "10.0.0.4", "four", "[1,"), (5, "10.0.0.5", "five", None)]
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE ti (id INTEGER PRIMARY KEY, addr TEXT, name TEXT, doc TEXT)",
        "INSERT INTO ti VALUES (?, ?, ?, ?)", rows,
        "CREATE TABLE ti (id bigint PRIMARY KEY, addr inet, name text NOT NULL DEFAULT 'x', doc jsonb)",
        '[[table]]\nsource = "ti"\ntarget = "ti"\nkey = "id"\n[table.columns]\nid = "id"\naddr = "addr"\nname = "name"\n'
        'doc = "doc"\n')
    sync = engine(source, url, mapping, max_rejects=3)
    [result] = sync.run(mapping.tables)
    assert (result.copy_format, result.inserted, result.rejected, result.verified) == ("text", 2, 3, True)
    assert [(r["key"], r["column"], r["reason"]) for r in sync.rejects] == [
        ("id=2", "name", "NULL in a NOT NULL column"), ("id=3", "doc", "a \\u0000 escape in JSON (jsonb cannot store it)"),
        ("id=4", "doc", "not valid JSON (Expecting value)")]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, doc::text FROM ti ORDER BY id").fetchall() == [(1, '{"a": 1.10}'), (5, None)]


def test_numbers_and_texts_a_table_copied_as_text_cannot_hold_are_rejects_naming_the_key(
        tmp_path: Path, pg_cluster) -> None:
    """A text[] column sends the table by text COPY, where a number numeric(10,2) cannot hold failed the whole
    sync with "numeric field overflow" (table, key and column only under -v), as did an int out of range or text
    longer than varchar(n): the same rejects as a table copied in binary."""
    rows = [(1, "12.3456", 5, "ok", "{a}"), (2, "123456789012.5", 5, "ok", "{b}"), (3, "1", 70000, "ok", "{c}"),
            (4, "1", 5, "too long", "{d}"), (5, "1_000", 5, "ok", "{e}")]
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE tx (id INTEGER PRIMARY KEY, price, n, label, tags)",
        "INSERT INTO tx VALUES (?, ?, ?, ?, ?)", rows,
        "CREATE TABLE tx (id bigint PRIMARY KEY, price numeric(10,2), n int2, label varchar(4), tags text[])",
        '[[table]]\nsource = "tx"\ntarget = "tx"\nkey = "id"\n[table.columns]\nid = "id"\nprice = "price"\nn = "n"\n'
        'label = "label"\ntags = "tags"\n')
    sync = engine(source, url, mapping, max_rejects=4)
    [result] = sync.run(mapping.tables)
    assert (result.copy_format, result.inserted, result.rejected, result.verified) == ("text", 1, 4, True)
    assert [(r["key"], r["column"], r["reason"]) for r in sync.rejects] == [
        ("id=2", "price", "'123456789012.5' is out of range for numeric(10,2): the largest it holds is 99999999.99"),
        ("id=3", "n", "70000 is out of range for int2"), ("id=4", "label", "8 characters, longer than varchar(4)"),
        ("id=5", "price", "'1_000' is not a number")]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, price::text, n, label, tags FROM tx").fetchall() == [(1, "12.35", 5, "ok", ["a"])]


def test_a_generated_always_identity_key_takes_the_source_ids_and_the_next_row_a_fresh_one(
        tmp_path: Path, pg_cluster) -> None:
    """`id bigint GENERATED ALWAYS AS IDENTITY` refused the merge's explicit ids ("cannot insert a non-DEFAULT value
    into column id") and its update ("column id can only be updated to DEFAULT")."""
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE tg (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT)",
        "INSERT INTO tg VALUES (?, ?, ?)", [(i, f"n{i}", "2024-01-01 00:00:00") for i in (1, 2, 3)],
        "CREATE TABLE tg (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL)",
        '[[table]]\nsource = "tg"\ntarget = "tg"\nkey = "id"\nchanged = "updated_at"\n[table.columns]\nid = "id"\n'
        'name = "name"\n')
    [first] = engine(source, url, mapping).run(mapping.tables)
    assert (first.inserted, first.verified) == (3, True)
    db = sqlite3.connect(source)
    db.execute("UPDATE tg SET name = 'renamed', updated_at = '2024-02-01 00:00:00' WHERE id = 2")
    db.execute("INSERT INTO tg VALUES (7, 'n7', '2024-02-01 00:00:00')")
    db.commit()
    db.close()
    [again] = engine(source, url, mapping).run(mapping.tables)
    assert (again.mode, again.updated, again.inserted, again.verified) == ("incremental", 1, 1, True)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO tg (name) VALUES ('made in the new app')")
        assert conn.execute("SELECT id, name FROM tg ORDER BY id").fetchall() == [
            (1, "n1"), (2, "renamed"), (3, "n3"), (7, "n7"), (8, "made in the new app")]


def test_a_key_other_than_the_id_leaves_the_id_to_the_target_and_char_columns_sync(tmp_path: Path, pg_cluster) -> None:
    """Django's own `id` (an identity, or a serial) left out of a mapping keyed on username failed every sync: the
    staging table kept the column's NOT NULL without its default (null value in column "id" of relation
    "golive_stage"); a serial's default took the target's sequence values for staged rows (ids 4–6 for the first
    three rows). A `char(n)` column failed the whole sync: psycopg has no binary dumper for bpchar."""
    rows = [("ann", "a"), ("bob", "bc"), ("cy", "def")]
    for n, key in enumerate(("bigint GENERATED BY DEFAULT AS IDENTITY", "bigint GENERATED ALWAYS AS IDENTITY", "bigserial")):
        folder = tmp_path / str(n)
        folder.mkdir()
        source, url, mapping = sqlite_pair(
            folder, pg_cluster, "CREATE TABLE tu (username TEXT PRIMARY KEY, code TEXT)",
            "INSERT INTO tu VALUES (?, ?)", rows,
            f"CREATE TABLE tu (id {key} PRIMARY KEY, username text UNIQUE NOT NULL, code char(3) NOT NULL)",
            '[[table]]\nsource = "tu"\ntarget = "tu"\nkey = "username"\n[table.columns]\nusername = "username"\n'
            'code = "code"\n')
        [result] = engine(source, url, mapping).run(mapping.tables)
        assert (result.copy_format, result.inserted, result.verified) == ("binary", 3, True), key
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT id, username, code FROM tu ORDER BY id").fetchall() == [
                (1, "ann", "a  "), (2, "bob", "bc "), (3, "cy", "def")], key
    db = sqlite3.connect(source)
    db.execute("INSERT INTO tu VALUES ('dee', 'long')")
    db.commit()
    db.close()
    sync = engine(source, url, mapping, max_rejects=1)
    [again] = sync.run(mapping.tables)
    assert (again.rejected, [(r["key"], r["column"], r["reason"]) for r in sync.rejects]) == (
        1, [("username='dee'", "code", "4 characters, longer than char(3)")])


def test_rows_breaking_a_check_constraint_of_the_target_are_named_by_key_before_anything_is_written(
        tmp_path: Path, pg_cluster) -> None:
    """Django's PositiveIntegerField is `CHECK (score >= 0)`; a negative score failed the merge with psycopg's bare
    CheckViolation ("new row for relation "ts" violates check constraint …"), naming no row, and no other table's
    problems were found. A check that also reads a column the sync does not write is the merge's one line."""
    rows = [(1, 5, 1), (2, -3, 1), (3, 7, 2), (4, None, 1), (5, -1, 9)]
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE ts (id INTEGER PRIMARY KEY, score INTEGER, low INTEGER)",
        "INSERT INTO ts VALUES (?, ?, ?)", rows,
        'CREATE TABLE ts (id bigint PRIMARY KEY, score integer CHECK ("score" >= 0), low integer, high integer'
        ' NOT NULL DEFAULT 3, CONSTRAINT ts_order CHECK (low <= high));'
        ' CREATE TABLE tn (id bigint PRIMARY KEY, n integer CHECK (n <> 13));'
        ' INSERT INTO ts VALUES (9, 1, 1, 3)',
        '[[table]]\nsource = "ts"\ntarget = "ts"\nkey = "id"\n[table.columns]\nid = "id"\nscore = "score"\nlow = "low"\n'
        '[[table]]\nsource = "tn"\ntarget = "tn"\nkey = "id"\n[table.columns]\nid = "id"\nn = "n"\n')
    db = sqlite3.connect(source)
    db.execute("CREATE TABLE tn (id INTEGER PRIMARY KEY, n INTEGER)")
    db.executemany("INSERT INTO tn VALUES (?, ?)", [(1, 12), (2, 13)])
    db.commit()
    db.close()
    sync = engine(source, url, mapping, max_rejects=10)
    with pytest.raises(GoliveError) as stopped:
        sync.run(mapping.tables)
    assert stopped.value.message == (
        "2 pre-check problem(s); first: table ts, column score: rows with key 2 (score=-3); 5 (score=-1) break the"
        " target's check constraint ts_score_check: CHECK (score >= 0) (all listed below)")
    assert sync.problems[1] == ("table tn, column n: rows with key 2 (n=13) break the target's check constraint"
                                " tn_n_check: CHECK (n <> 13)")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT * FROM ts").fetchall() == [(9, 1, 1, 3)]  # (a row of the new app: kept)
    db = sqlite3.connect(source)
    db.execute("UPDATE ts SET score = abs(score)")
    db.execute("DELETE FROM tn WHERE n = 13")
    db.commit()
    db.close()
    with pytest.raises(GoliveError) as merged:  # (5's low of 9 is above the target's own high of 3)
        engine(source, url, mapping, max_rejects=10).run(mapping.tables)
    assert merged.value.message == ('table ts: the target refused a synced row: new row for relation "ts" violates'
                                    ' check constraint "ts_order"; nothing was written')
    assert "ts_order also reads a column the mapping does not write" in (merged.value.hint or "")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT * FROM ts").fetchall() == [(9, 1, 1, 3)]


def test_values_a_unique_index_of_the_target_allows_once_are_named_by_row_before_the_merge(
        tmp_path: Path, pg_cluster) -> None:
    """An email the old app let two users share, into a target that keeps it unique, failed the merge with "a
    synced row would take a value another row of the target already holds … a row made in the new application
    has it" — there was no such row."""
    # (versions: an incremental reads rows at or above the last sync's newest, so each row gets its own below)
    rows = [(1, "a@x.org", 1), (2, "b@x.org", 1), (3, "a@x.org", 1), (4, None, 1), (5, None, 1)]
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE tu (id INTEGER PRIMARY KEY, email TEXT, version INTEGER)",
        "INSERT INTO tu VALUES (?, ?, ?)", rows, "CREATE TABLE tu (id bigint PRIMARY KEY, email text UNIQUE)",
        '[[table]]\nsource = "tu"\ntarget = "tu"\nkey = "id"\nchanged = "version"\n[table.columns]\nid = "id"\n'
        'email = "email"\n')
    with pytest.raises(GoliveError) as stopped:
        engine(source, url, mapping).run(mapping.tables)
    assert stopped.value.message == ("table tu: source rows share (email)=(a@x.org), which the target's unique index"
                                     " tu_email_key allows once; nothing was written")  # (an empty table: one INSERT)
    db = sqlite3.connect(source)
    db.execute("UPDATE tu SET email = 'c@x.org' WHERE id = 3")
    db.execute("UPDATE tu SET version = 1000 - id")
    db.commit()
    assert engine(source, url, mapping).run(mapping.tables)[0].inserted == 5
    with psycopg.connect(url, autocommit=True) as app:  # a row of the new application
        app.execute("INSERT INTO tu VALUES (100, 'new@x.org')")
    db.execute("UPDATE tu SET email = 'b@x.org', version = 1001 WHERE id = 1")  # (2 keeps it: the source has it twice)
    db.execute("UPDATE tu SET email = 'new@x.org', version = 1001 WHERE id = 4")
    db.execute("UPDATE tu SET email = 'd@x.org', version = 1001 WHERE id IN (3, 5)")
    db.commit()
    sync = engine(source, url, mapping)
    with pytest.raises(GoliveError) as again:
        sync.run(mapping.tables)
    assert sync.problems == [
        "table tu: source rows with key 3, 5 have the same email=d@x.org, which the target's unique index tu_email_key"
        " allows once",
        "table tu: source row 1 has email=b@x.org, which the target's unique index tu_email_key allows once: synced"
        " row 2, whose source row has it too",
        "table tu: source row 4 has email=new@x.org, which the target's unique index tu_email_key allows once: row"
        " 100, which golive did not sync (made in the new application: change the value there or in the source)"], \
        again.value.message
    assert again.value.details == sync.problems  # (every one, not the first alone)
    assert again.value.message.startswith("3 pre-check problem(s); first: table tu: source rows with key 3, 5 have")
    assert again.value.message.endswith(" allows once (all listed below)")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, email FROM tu ORDER BY id").fetchall() == [
            (1, "a@x.org"), (2, "b@x.org"), (3, "c@x.org"), (4, None), (5, None), (100, "new@x.org")]


def test_a_deferrable_unique_constraint_takes_an_exchange_in_one_statement_and_a_shift_in_order(
        tmp_path: Path, pg_cluster) -> None:
    """The sync runs with its constraints deferred: an exchange of values under a DEFERRABLE unique constraint was
    merged by one statement, until the ordering for immediate ones refused it ("no order of updates gets there").
    Under an immediate one, a shift of every position by one goes a row at a time in order, each found by index."""
    rows = [(i, f"n{i}", i, 1) for i in range(1, 2001)]
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE tp (id INTEGER PRIMARY KEY, name TEXT, pos INTEGER, version INTEGER)",
        "INSERT INTO tp VALUES (?, ?, ?, ?)", rows,
        "CREATE TABLE tp (id bigint PRIMARY KEY, name text CONSTRAINT tp_name UNIQUE DEFERRABLE INITIALLY DEFERRED,"
        " pos int UNIQUE)",
        '[[table]]\nsource = "tp"\ntarget = "tp"\nkey = "id"\nchanged = "version"\n[table.columns]\nid = "id"\n'
        'name = "name"\npos = "pos"\n')
    assert engine(source, url, mapping).run(mapping.tables)[0].inserted == 2000
    db = sqlite3.connect(source)
    db.execute("UPDATE tp SET name = CASE id WHEN 1 THEN 'n2' ELSE 'n1' END, version = 2 WHERE id IN (1, 2)")
    db.commit()
    assert engine(source, url, mapping).run(mapping.tables)[0].updated == 2
    db.execute("UPDATE tp SET pos = pos + 1, version = 3")  # (an item put at the top: each takes the next's)
    db.commit()
    db.close()
    assert engine(source, url, mapping).run(mapping.tables)[0].updated == 2000
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, name, pos FROM tp WHERE id IN (1, 2, 2000) ORDER BY id").fetchall() == [
            (1, "n2", 2), (2, "n1", 3), (2000, "n2000", 2001)]


def test_every_broken_check_constraint_is_named_at_once_and_a_quote_in_a_column_name_is_one(
        tmp_path: Path, pg_cluster) -> None:
    """The first broken constraint took its rows out of staging before the others were asked: one rerun in the
    freeze window per hidden constraint. A column named `it's` made the message's SQL a syntax error."""
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE te (id INTEGER PRIMARY KEY, name TEXT, q INTEGER)",
        "INSERT INTO te VALUES (?, ?, ?)", [(1, "toolongname", -1), (2, "ok", 5)],
        """CREATE TABLE te (id bigint PRIMARY KEY, name text CHECK (char_length(name) <= 5), "it's" int CHECK ("it's" > 0),
        kind text NOT NULL CHECK (kind IN ('a', 'b')))""",
        '[[table]]\nsource = "te"\ntarget = "te"\nkey = "id"\n[table.columns]\nid = "id"\nname = "name"\n"it\'s" = "q"\n'
        '[table.defaults]\nkind = "c"\n')
    sync = engine(source, url, mapping)
    with pytest.raises(GoliveError):
        sync.run(mapping.tables)
    assert sync.problems == [
        """table te, column it's: rows with key 1 (it's=-1) break the target's check constraint te_it's_check: CHECK"""
        """ ("it's" > 0)""",
        "table te, column kind: rows with key 1 (kind=c); 2 (kind=c) break the target's check constraint te_kind_check:"
        " CHECK (kind = ANY (ARRAY['a'::text, 'b'::text]))",
        "table te, column name: rows with key 1 (name=toolongname) break the target's check constraint te_name_check:"
        " CHECK (char_length(name) <= 5)"]


def test_a_chain_under_an_expression_index_is_one_line_that_does_not_only_blame_the_new_application(
        tmp_path: Path, pg_cluster) -> None:
    """Under Django's UniqueConstraint(Lower("name")) (an expression index golive's checks do not read), a rename
    in a chain failed the merge with a hint that only blamed "a row made in the new application"."""
    source, url, mapping = sqlite_pair(
        tmp_path, pg_cluster, "CREATE TABLE tl (id INTEGER PRIMARY KEY, name TEXT, version INTEGER)",
        "INSERT INTO tl VALUES (?, ?, ?)", [(1, "alice", 1), (2, "bob", 1)],
        "CREATE TABLE tl (id bigint PRIMARY KEY, name text); CREATE UNIQUE INDEX tl_lower ON tl (lower(name))",
        '[[table]]\nsource = "tl"\ntarget = "tl"\nkey = "id"\nchanged = "version"\n[table.columns]\nid = "id"\n'
        'name = "name"\n')
    engine(source, url, mapping).run(mapping.tables)
    db = sqlite3.connect(source)  # (an exchange: whichever row PostgreSQL updates first takes a value still held)
    db.execute("UPDATE tl SET name = CASE id WHEN 1 THEN 'Bob' ELSE 'Alice' END, version = 2")
    db.commit()
    db.close()
    with pytest.raises(GoliveError) as stopped:
        engine(source, url, mapping).run(mapping.tables)
    assert "a synced row would take a value another row of the target already holds" in stopped.value.message
    assert "another synced row gives it up in this same sync (renames in a chain)" in (stopped.value.hint or "")
