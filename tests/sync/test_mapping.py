"""mapping.toml: the templates load, and mistakes name the table, the column and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from golive.errors import ConfigError
from golive.sync.mapping import load_mapping
from golive.sync.transforms import Reject, resolve_transform

REPO = Path(__file__).resolve().parents[2]


def test_shipped_mappings_load() -> None:
    example = load_mapping(REPO / "examples" / "dirfinal" / "mapping.toml")
    assert [t.target for t in example.tables] == ["auth_user", "directory_entry", "directory_family",
                                                   "directory_familymember", "directory_score"]
    assert example.tables[0].unique_ci == ("username", "email")
    template = load_mapping(REPO / "src" / "golive" / "templates" / "mapping.toml")
    assert template.tables[0].target_key == ("id",)


@pytest.mark.parametrize(("text", "message"), [
    ('[[table]]\nsource = "u"\ntarget = "t"\nkey = "id"\n[table.columns]\nid = "id"\nx = { from = "x", transform = "nope" }\n',
     "table t, column x: unknown transform 'nope': built-ins are lower, strip, bool, int, json, null_if_empty, to_utc,"
     " werkzeug_to_django, or use 'package.module:function'"),
    ('[[table]]\nsource = "u"\ntarget = "t"\nkey = "id"\n[table.columns]\nname = "name"\n',
     "table t: key column(s) id must be mapped as-is to a target column"),
    ('[[table]]\nsource = "u"\nquery = "SELECT 1"\ntarget = "t"\nkey = "id"\n[table.columns]\nid = "id"\n',
     ':1: table[0] (table t): give exactly one of source = "table" or query = "SELECT …"'),
    ('[[table]]\nsource = "u"\ntarget = "t"\nkey = "id"\nunique = ["a"]\n[table.columns]\nid = "id"\n',
     ":5: table[0].unique (table t): Extra inputs are not permitted"),
])
def test_mapping_errors_name_table_column_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_transforms() -> None:
    assert [resolve_transform("bool")(v) for v in (1, "0", "t", "False", None)] == [True, False, True, False, None]
    with pytest.raises(Reject, match="'maybe' is not a boolean"):
        resolve_transform("bool")("maybe")
    to_utc = resolve_transform("to_utc", source_timezone="Europe/Vienna")
    assert to_utc("2024-07-01 12:00:00").isoformat() == "2024-07-01T10:00:00+00:00"
    assert resolve_transform("json")('{"a": 1}') == {"a": 1}
    assert resolve_transform("null_if_empty")("") is None
    assert resolve_transform("golive.sync.passwords:hash_format")("scrypt:1:8:1$a$0f") == "scrypt"


@pytest.mark.parametrize(("name", "options", "column", "fast"), [
    ("strip", {}, [" a ", "b\t", "\u2003c"], True),
    ("strip", {}, [" a ", None, 3], False),  # not all text: one by one
    ("lower", {}, ["ÄB", "cD"], True),
    ("bool", {}, [1, 0, "t", "false"], True),
    ("bool", {}, [1, "yes", None], False),
    ("null_if_empty", {}, ["", "x", None], True),
    ("to_utc", {"source_timezone": "UTC"}, ["2024-01-02 03:04:05", "2024-01-02T03:04:05.123456"], True),
    ("to_utc", {"source_timezone": "UTC"}, ["2024-01-02 03:04:05+02:00", "2024-01-02Z"], False),
    ("to_utc", {"source_timezone": "Europe/Vienna"}, ["2024-01-02 03:04:05"], False),
])
def test_a_whole_column_transformed_at_once_gives_what_value_by_value_gives(name: str, options: dict[str, str],
                                                                            column: list[object], fast: bool) -> None:
    transform = resolve_transform(name, **options)
    many = transform.many(column)  # type: ignore[attr-defined]
    assert (many is not None) is fast
    if fast:
        assert many == [transform(v) for v in column]
