"""Source values into the target's column types by the sync, against real PostgreSQL: what is stored is what
PostgreSQL's own text input makes of the value, and what PostgreSQL would refuse is a reject naming the table,
key and column (never a COPY that fails the whole sync)."""

from __future__ import annotations

from pathlib import Path

import psycopg

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
