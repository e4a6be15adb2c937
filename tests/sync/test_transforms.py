"""The mapping's transforms in a sync against real PostgreSQL (binary and text COPY alike), and built-ins value by
value: what each one accepts, and what is a reject naming the value."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

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
