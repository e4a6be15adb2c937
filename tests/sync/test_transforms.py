"""The mapping's transforms in a sync against real PostgreSQL (binary and text COPY alike), and built-ins value by
value: what each one accepts, and what is a reject naming the value."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from golive.sync.pgtypes import ColumnType, fit_column
from golive.sync.transforms import JsonText, Reject, resolve_transform
from tests.sync.test_engine import engine, sqlite_pair

JSON_MAPPING = """[[table]]
source = "doc"
target = "doc"
key = "id"
[table.columns]
id = "id"
j = { from = "v", transform = "json" }
k = { from = "v", transform = "json" }
t = { from = "v", transform = "json" }
"""


@pytest.mark.parametrize("copy_format", ["binary", "text"])
def test_the_json_transform_stores_each_json_value_as_it_is_written(tmp_path: Path, pg_cluster, copy_format: str) -> None:
    """`"123"` was stored as the number 123, `"true"` as a boolean, `"null"` as SQL NULL, and `"hello"` rejected (binary
    COPY) or the whole sync failed (text COPY): the transform's Python str was read as JSON text again."""
    values = ['"123"', '"true"', '"null"', '"hello"', '{"a": 1.10, "b": [null]}', "null", 7, None, ' ["x"] ']
    ddl = "CREATE TABLE doc (id bigint PRIMARY KEY, j jsonb, k json, t text" + (", addr inet)" if copy_format == "text"
                                                                               else ")")
    mapping = JSON_MAPPING + ('addr = "addr"\n' if copy_format == "text" else "")
    source, url, loaded = sqlite_pair(tmp_path, pg_cluster, "CREATE TABLE doc (id INTEGER PRIMARY KEY, v, addr TEXT)",
                                      "INSERT INTO doc VALUES (?, ?, '10.0.0.1')", list(enumerate(values, 1)), ddl,
                                      mapping)
    [result] = engine(source, url, loaded).run(loaded.tables)
    assert (result.copy_format, result.inserted, result.rejected, result.verified) == (copy_format, 9, 0, True)
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT j::text, k::text, t, jsonb_typeof(j) FROM doc ORDER BY id").fetchall()
        expected = [(conn.execute("SELECT %s::text::jsonb::text", (str(v),)).fetchone()[0], str(v), str(v),
                     conn.execute("SELECT jsonb_typeof(%s::text::jsonb)", (str(v),)).fetchone()[0]) if v is not None
                    else (None, None, None, None) for v in values]
    assert stored == expected
    assert [row[3] for row in stored] == ["string"] * 4 + ["object", "null", "number", None, "array"]


def test_the_json_transform_value_by_value() -> None:
    to_json = resolve_transform("json")
    assert [to_json(v) for v in ('"hello"', " [1.10] ", 3, 2.5, True, None)] == ['"hello"', " [1.10] ", "3", "2.5",
                                                                                 "true", None]
    assert isinstance(to_json('"123"'), JsonText) and to_json('{"a": 1}') == {"a": 1}  # (as the dict it reads as)
    for value, reason in [("{oops", "not valid JSON (Expecting property name enclosed in double quotes)"),
                          ("NaN", "NaN is not valid JSON (PostgreSQL refuses it)"),
                          (float("inf"), "a float (inf) is not JSON: Out of range float values are not JSON compliant"),
                          (b"{}", "binary data is not JSON text")]:
        with pytest.raises(Reject) as caught:
            to_json(value)
        assert str(caught.value) == reason


INTS = [(7, 7), (-3, -3), (3.0, 3), (1e20, 10**20), (Decimal("4.00"), 4), (Decimal("1E+2"), 100), ("42", 42),
        (" +5\t", 5), ("-0", 0), ("12345678901234567890123", 12345678901234567890123)]
NOT_INTS = [3.7, Decimal("3.5"), float("nan"), float("inf"), Decimal("Infinity"), "1_000", "\u0663", "3.0", "1e3", "0x1F",
            "", " ", "- 1", True, b"1", [1]]


def test_the_int_transform_takes_integers_only_and_names_the_value_it_rejects() -> None:
    """3.7 became 3 (a Decimal too), and "1_000" and an Arabic-Indic digit were read as integers."""
    to_int = resolve_transform("int")
    assert [to_int(value) for value, _ in INTS] == [number for _, number in INTS]
    assert to_int(None) is None and to_int("") is None  # (an empty text is no value, as before)
    for value in [v for v in NOT_INTS if v != ""]:
        with pytest.raises(Reject) as caught:
            to_int(value)
        assert str(caught.value) == f"{value!r} is not an integer"


def test_an_integer_column_reads_values_as_the_int_transform_does() -> None:
    """Without the transform, "1_000" and "\u0663" went into an integer column too (Python's int(), not PostgreSQL's)."""
    values = [value for value, _ in INTS] + NOT_INTS
    bad: list[tuple[int, str]] = []
    fitted = fit_column(list(values), ColumnType("n", "int8"), ZoneInfo("UTC"), lambda i, reason: bad.append((i, reason)))
    assert fitted[:len(INTS)] == [number if abs(number) < 2**63 else value for value, number in INTS]
    assert bad == [(3, "1e+20 is out of range for int8"), (9, "'12345678901234567890123' is out of range for int8")] + [
        (i, f"{value!r} is not an integer") for i, value in enumerate(values) if i >= len(INTS)]


def test_the_int_transform_in_a_sync_rejects_what_is_no_integer(tmp_path: Path, pg_cluster) -> None:
    mapping = ('[[table]]\nsource = "n"\ntarget = "n"\nkey = "id"\n[table.columns]\nid = "id"\n'
               'v = { from = "v", transform = "int" }\n')
    rows = [(1, 3.7), (2, 1e20), (3, "1_000"), (4, " 12 "), (5, 3.0), (6, "\u0663"), (7, 2**40)]
    source, url, loaded = sqlite_pair(tmp_path, pg_cluster, "CREATE TABLE n (id INTEGER PRIMARY KEY, v)",
                                      "INSERT INTO n VALUES (?, ?)", rows, "CREATE TABLE n (id bigint PRIMARY KEY, v int4)",
                                      mapping)
    sync = engine(source, url, loaded, max_rejects=10)
    [result] = sync.run(loaded.tables)
    assert (result.inserted, result.rejected, result.verified) == (2, 5, True)
    assert [(r["key"], r["column"], r["reason"]) for r in sync.rejects] == [
        ("id=1", "v", "3.7 is not an integer"), ("id=2", "v", "100000000000000000000 is out of range for int4"),
        ("id=3", "v", "'1_000' is not an integer"), ("id=6", "v", "'\u0663' is not an integer"),
        ("id=7", "v", "1099511627776 is out of range for int4")]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, v FROM n ORDER BY id").fetchall() == [(4, 12), (5, 3)]


TRANSFORMS = '''\
import sys


def noisy(value):
    print("noisy transform saw", value)
    return value


def leaves(value):
    if value == "b":
        sys.exit(0)
    return value


def interrupted(value):
    raise KeyboardInterrupt
'''


def _project(tmp_path: Path, pg_cluster, monkeypatch: pytest.MonkeyPatch, transform: str) -> Path:
    """A golive project syncing a SQLite table `item` (id, label) into PostgreSQL, `label` through ``transform``
    (a function of the module TRANSFORMS, importable as `ctx`)."""
    mapping = ('[[table]]\nsource = "item"\ntarget = "item"\nkey = "id"\n[table.columns]\nid = "id"\n'
               f'label = {{ from = "label", transform = "ctx:{transform}" }}\n')
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "ctx.py").write_text(TRANSFORMS)
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    source, url, _ = sqlite_pair(tmp_path, pg_cluster, "CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT)",
                                 "INSERT INTO item VALUES (?, ?)", [(1, "a"), (2, "b")],
                                 "CREATE TABLE item (id bigint PRIMARY KEY, label text)", mapping)
    project = tmp_path / "project"
    project.mkdir()
    (project / "golive.toml").write_text(f'[project]\nname = "transforms"\n\n[source]\nurl = "sqlite:///{source}"\n\n'
                                         '[target]\nurl = "env:GOLIVE_TEST_TARGET_URL"\n\n'
                                         f'[sync]\nmapping = "{tmp_path / "mapping.toml"}"\n')
    (project / "golive.toml").chmod(0o600)
    monkeypatch.chdir(project)
    monkeypatch.setenv("GOLIVE_TEST_TARGET_URL", url)
    monkeypatch.delenv("GOLIVE_FAULT", raising=False)
    return project


def test_what_a_custom_transform_prints_goes_to_stderr_not_into_the_json_output(tmp_path: Path, pg_cluster, cli,
                                                                               monkeypatch) -> None:
    _project(tmp_path, pg_cluster, monkeypatch, "noisy")
    result = cli("sync", "--yes", "--json")
    assert result.exit_code == 0, result
    events = [json.loads(line) for line in result.lines]  # (a printed line in it: not JSON)
    assert (events[-1]["event"], events[-1]["ok"]) == ("result", True)
    assert "noisy transform saw a\nnoisy transform saw b\n" in result.stderr


def test_a_custom_transform_that_exits_fails_the_sync_naming_it_and_ctrl_c_still_interrupts(tmp_path: Path, pg_cluster, cli,
                                                                                            monkeypatch) -> None:
    """sys.exit(0) in a transform ended golive with exit 0, no result line, and the run left "crashed"."""
    _project(tmp_path, pg_cluster, monkeypatch, "leaves")
    result = cli("sync", "--yes")
    assert result.exit_code == 1, result
    assert "failed: table item, key id=2, column label: transform ctx:leaves failed: SystemExit: 0 — fix the transform" \
        in result.stderr
    with psycopg.connect(os.environ["GOLIVE_TEST_TARGET_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM item").fetchone()[0] == 0
    [run] = json.loads(cli("history", "--json").stdout)["runs"]
    assert (run["status"], run["crashed"]) == ("rolled_back", False)  # (as when a transform raises)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(mapping.read_text().replace("ctx:leaves", "ctx:interrupted"))
    interrupted = cli("sync", "--yes")
    assert interrupted.exit_code == 130, interrupted


@pytest.mark.parametrize("zone", ["UTC", "Europe/Vienna"])
def test_to_utc_takes_spaces_around_a_date_time_in_any_zone(zone: str) -> None:
    """Under UTC a trailing space was taken (the fast path), under other zones the same text was a reject."""
    to_utc = resolve_transform("to_utc", source_timezone=zone)
    texts = ["2024-01-02 03:04:05", "2024-01-02 03:04:05 ", " 2024-01-02 03:04:05", "2024-01-02T03:04:05\t\n"]
    assert len({to_utc(text) for text in texts}) == 1
    assert to_utc(" 2024-01-02 03:04:05+02:00 ").isoformat() == "2024-01-02T01:04:05+00:00"
    many = to_utc.many(texts)  # type: ignore[attr-defined]
    assert many is None or many == [to_utc(text) for text in texts]
    with pytest.raises(Reject, match="is not a date-time"):
        to_utc("2024-01-02 03:04:05 x")


BOOLS = [("yes", True), ("No", False), (" y ", True), ("n", False), ("on", True), ("OFF", False), ("TRUE", True),
         ("f", False), (1, True), (0, False)]


def test_bool_takes_what_postgresql_takes_by_transform_and_by_column_alike() -> None:
    """yes/no/y/n were taken, on/off (which PostgreSQL takes) were not."""
    to_bool = resolve_transform("bool")
    assert [to_bool(value) for value, _ in BOOLS] == [truth for _, truth in BOOLS]
    bad: list[tuple[int, str]] = []
    values = [value for value, _ in BOOLS] + ["maybe", "o"]
    assert fit_column(values, ColumnType("b", "bool"), ZoneInfo("UTC"), lambda i, reason: bad.append((i, reason)))[
        :len(BOOLS)] == [truth for _, truth in BOOLS]
    assert bad == [(len(BOOLS), "'maybe' is not a boolean (0/1, true/false, t/f)"),
                   (len(BOOLS) + 1, "'o' is not a boolean (0/1, true/false, t/f)")]
