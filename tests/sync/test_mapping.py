"""mapping.toml: the templates load, and mistakes name the table, the column and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golive.errors import ConfigError
from golive.sync.mapping import check_defaults, load_mapping
from golive.sync.transforms import Reject, resolve_transform
from tests.sync.test_sync import Dir

REPO = Path(__file__).resolve().parents[2]


def test_shipped_mappings_load() -> None:
    example = load_mapping(REPO / "examples" / "dirfinal" / "mapping.toml")
    assert [t.target for t in example.tables] == ["auth_user", "directory_entry", "directory_family",
                                                   "directory_familymember", "directory_score"]
    assert example.tables[0].unique_ci == ("username", "email")
    template = load_mapping(REPO / "src" / "golive" / "templates" / "mapping.toml")
    assert template.tables[0].target_key == ("id",)


USERS = '[[table]]\nsource = "u"\ntarget = "t"\nkey = "id"\n[table.columns]\nid = "id"\n'  # (the columns on line 5)


@pytest.mark.parametrize(("text", "message"), [
    (USERS + 'x = { from = "x", transform = "nope" }\n',
     ":7: table t, column x: unknown transform 'nope': built-ins are lower, strip, nfkc, bool, int, json, null_if_empty, to_utc,"
     " werkzeug_to_django, or use 'package.module:function'"),
    ('[[table]]\nsource = "u"\ntarget = "t"\nkey = "id"\n[table.columns]\nname = "name"\n',
     ':4: table t: key column(s) id must be mapped as-is to a target column — add e.g. id = "id" under'
     " [table.columns]"),
    ('[[table]]\nsource = "u"\nquery = "SELECT 1"\ntarget = "t"\nkey = "id"\n[table.columns]\nid = "id"\n',
     ':1: table[0] (table t): give exactly one of source = "table" or query = "SELECT …"'),
    ('[[table]]\nsource = "u"\ntarget = "t"\nkey = "id"\nunique = ["a"]\n[table.columns]\nid = "id"\n',
     ":5: table[0].unique (table t): unknown key 'unique' in table[0] — did you mean 'unique_ci'?"),
    (USERS + 'name = { from = "name", tranform = "strip" }\n',
     ":7: table[0].columns.name.tranform (table t): unknown key 'tranform' in table[0].columns.name — did you mean 'transform'?"),
    ('[options]\nsource_timezon = "Europe/Vienna"\n' + USERS,
     ":2: options.source_timezon: unknown key 'source_timezon' in options — did you mean 'source_timezone'?"),
    (USERS + 'name = "name"\n[table.defaults]\nis_staff = false\nname = ""\n',
     ":10: table t: column name is both in [table.columns] and in [table.defaults], and the default would never be"
     " used — remove name from one of them"),
    (USERS + "\n" + USERS.replace('"u"', '"admin"') + "\n" + USERS.replace('"t"', '"other"'),
     ':10: table t is fed by two [[table]] entries (u, admin) — use one query = "SELECT … UNION ALL …"'),
    # a value of the wrong kind says what the key accepts (it named pydantic's member: "table[0].key.str")
    (USERS.replace('key = "id"', "key = 5"), ":4: table[0].key (table t): expected a string or an array, not an integer"),
    (USERS + "name = 5\n", ":7: table[0].columns.name (table t): expected a string or a table, not an integer"),
    # found here, not as zip()'s error mid-sync (exit 1), no transform at all, or every row rejected
    (USERS + 'name = { from = [], transform = "golive_x:y" }\n',
     ':7: table t, column name: from = [] names no source column — name one, e.g. from = "name"'),
    (USERS + "name = { from = [] }\n", ':7: table t, column name: from = [] names no source column — name one, e.g.'
     ' from = "name"'),
    (USERS + 'name = { from = "name", transform = "" }\n',
     ':7: table t, column name: transform = "" names no transform — remove it to carry the value as it is, or name'
     " one"),
    (USERS + 'name = { from = ["first", "last"], transform = "lower" }\n',
     ":7: table t, column name: the built-in transform lower takes one value, and from names 2 source columns — use"
     " a custom transform ('package.module:function'), which gets their values as a list"),
    (USERS.replace('key = "id"', 'key = ["id", "id"]'), ":4: table t: key names id twice — list each key column once"),
    ('[[table]]\nquery = """\nSELECT id FROM u;\nSELECT 2\n"""\ntarget = "t"\nkey = "id"\n[table.columns]\nid = "id"\n',
     ":2: table t: query holds more than one statement (a ';' before its end) — give one SELECT"),
    # the target's statements take parameters, and psycopg reads a `%` in a name as one: said here, not mid-sync
    (USERS + '"rate%" = "rate"\n', ":7: table t: column rate%: golive cannot write to a name holding `%` — rename it in"
     " the new database (in Django, the field's db_column or db_table)"),
    (USERS + '[table.defaults]\n"100%" = true\n', ":8: table t: column 100%: golive cannot write to a name holding `%`"
     " — rename it in the new database (in Django, the field's db_column or db_table)"),
    (USERS.replace('target = "t"', 'target = "t%"'), ":3: table t%: golive cannot write to a name holding `%` —"
     " rename it in the new database (in Django, the field's db_column or db_table)"),
])
def test_mapping_errors_name_table_column_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert str(caught.value) == f"{path}{message}"


def test_a_custom_transform_that_is_no_function_stops_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not mid-sync at its first row, after the backup was taken."""
    (tmp_path / "golive_test_custom.py").write_text("x = 5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "mapping.toml"
    path.write_text(USERS + 'name = { from = "name", transform = "golive_test_custom:x" }\n')
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert str(caught.value) == (f"{path}:7: table t, column name: transform 'golive_test_custom:x' is int 5, not a"
                                 " function: name a function that takes the source value")
    assert caught.value.exit_code == 2


def test_a_custom_transform_beside_the_mapping_is_found_from_any_working_directory(tmp_path: Path) -> None:
    """With the installed `golive` command (no working directory on the path), `mytx:clean` beside mapping.toml was
    "No module named 'mytx'" (exit 2); `python -m golive` from the project folder found it."""
    import subprocess
    import sys

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "golive_test_beside.py").write_text("def clean(value):\n    return value.strip().lower()\n")
    (project / "mapping.toml").write_text(USERS + 'name = { from = "name", transform = "golive_test_beside:clean" }\n')
    code = ("import sys; from pathlib import Path; from golive.sync.mapping import load_mapping;"
            f" m = load_mapping(Path({str(project / 'mapping.toml')!r}));"
            " print(m.tables[0].columns[1].transform('  Ana '))")
    shown = subprocess.run([sys.executable, "-P", "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert (shown.returncode, shown.stdout) == (0, "ana\n"), shown.stderr


def test_transforms() -> None:
    assert [resolve_transform("bool")(v) for v in (1, "0", "t", "False", None)] == [True, False, True, False, None]
    with pytest.raises(Reject, match="'maybe' is not a boolean"):
        resolve_transform("bool")("maybe")
    to_utc = resolve_transform("to_utc", source_timezone="Europe/Vienna")
    assert to_utc("2024-07-01 12:00:00").isoformat() == "2024-07-01T10:00:00+00:00"
    # a "no date" placeholder east of UTC is before year 1 there: a reject naming it (it was an OverflowError that
    # stopped the whole sync blaming the transform, which --max-rejects could not let through)
    with pytest.raises(Reject, match=r"^'0001-01-01 00:00:00' in Europe/Vienna is out of range in UTC \(years 1 to 9999\)$"):
        to_utc("0001-01-01 00:00:00")
    with pytest.raises(Reject, match="out of range in UTC"):
        resolve_transform("to_utc", source_timezone="America/New_York")("9999-12-31 23:59:00")
    assert resolve_transform("json")('{"a": 1}') == {"a": 1}
    assert resolve_transform("null_if_empty")("") is None
    assert resolve_transform("golive.sync.passwords:hash_format")("scrypt:16384:8:1$a$0f") == "scrypt"


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


@pytest.mark.parametrize(("text", "message"), [
    ('[options]\nsource_timezone = "Europe/Londn"\n' + USERS + 'joined = { from = "joined", transform = "to_utc" }\n',
     ":2: options.source_timezone: 'Europe/Londn' is not a time zone — did you mean 'Europe/London'?"),
    ('[options]\nsource_timezone = "europe/vienna"\n' + USERS,  # (named even where no column reads it yet)
     ":2: options.source_timezone: 'europe/vienna' is not a time zone — did you mean 'Europe/Vienna'?"),
    ('[options]\nsource_timezone = "Middle Earth/Shire"\n' + USERS,
     ":2: options.source_timezone: 'Middle Earth/Shire' is not a time zone — write an IANA name such as"
     ' "Europe/London" or "UTC"'),
])
def test_a_mistyped_source_timezone_is_named_at_its_key_with_the_fix(tmp_path: Path, text: str, message: str) -> None:
    """It was named as the first to_utc column ("table t, column joined: No time zone found with key …")."""
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert (str(caught.value), caught.value.exit_code) == (f"{path}{message}", 2)


@pytest.mark.parametrize(("text", "message"), [
    (USERS.replace('target = "t"', "target = "), ":3: not valid TOML: Invalid value — fix the syntax at that line"),
    (USERS + 'name = "name\n', ":7: not valid TOML: Illegal character '\\n' — fix the syntax at that line"),
    ("[[table]\n", ":1: not valid TOML: Expected ']]' at the end of an array declaration — fix the syntax at that line"),
])
def test_a_mapping_that_is_not_valid_toml_names_the_file_and_line(tmp_path: Path, cli, text: str, message: str) -> None:
    """It was "mapping.toml: not valid TOML: Invalid value (at line 3, column 10)": no hint, and not the
    `file:line` every other config error starts with (which editors jump to)."""
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert f"{caught.value}" == f"{path}{message}"
    config = tmp_path / "golive.toml"
    config.write_text('[project]\nname = "t"\n[target]\nurl = "postgresql://localhost:1/none"\n')
    config.chmod(0o600)
    shown = cli("-c", str(config), "sync", "--dry-run")
    assert (shown.exit_code, shown.stdout, shown.stderr) == (2, "", f"error: {path}{message}\n")


def test_a_mapping_golive_cannot_read_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes(b'[[table]]\nsource = "u"\ntarget = "caf\xe9"\n')
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path / "latin1.toml")
    assert (str(caught.value), caught.value.exit_code) == (
        f"{tmp_path}/latin1.toml:3: not UTF-8 text (byte 0xe9) — save the file as UTF-8", 2)
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path / "folder.toml")
    assert str(caught.value) == f"cannot read {tmp_path}/folder.toml: Is a directory — check its permissions"


@pytest.mark.parametrize(("query", "sent"), [
    ("SELECT id FROM u;", "SELECT id FROM u"),
    ("SELECT id FROM u ; ; ", "SELECT id FROM u"),
    ("SELECT id FROM u -- all of them", "SELECT id FROM u"),  # (it commented out golive's ") AS q")
    ("SELECT id FROM u; -- all of them\n/* done */\n", "SELECT id FROM u"),
    ("SELECT id -- the key\nFROM u WHERE name <> ';' AND note <> '--'", None),  # kept as written
    ('SELECT id FROM u WHERE "a;b" = \'x -- y\';', 'SELECT id FROM u WHERE "a;b" = \'x -- y\''),
    ("SELECT id FROM u\n", None),  # (trailing space alone: as written)
])
def test_a_query_loses_a_trailing_semicolon_and_comment(tmp_path: Path, query: str, sent: str | None) -> None:
    """Either gave the source's cryptic 'near ";": syntax error', once wrapped as "(query) AS q"."""
    path = tmp_path / "mapping.toml"
    path.write_text(f'[[table]]\nquery = {json.dumps(query)}\ntarget = "t"\nkey = "id"\n[table.columns]\nid = "id"\n')
    assert load_mapping(path).tables[0].query == (query if sent is None else sent)


def test_a_default_the_target_column_cannot_take_names_its_line(tmp_path: Path, pg_cluster) -> None:
    """``last_login = "not a date"`` failed mid-sync, after the backup ("mapping default for last_login: …",
    exit 1). Checked where the mapping meets the target's column types (check_defaults), with the line."""
    import psycopg

    from golive.sync.pgtypes import column_types

    url = pg_cluster.create_database(f"defaults_{tmp_path.name[-8:].replace('-', '_')}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, last_login timestamptz, n integer, flag boolean,"
                     " name varchar(3), tags jsonb)")
        types = column_types(conn, "t")
    path = tmp_path / "mapping.toml"
    for default, message in [
        ('last_login = "not a date"', ":8: table t, default last_login: 'not a date' is not a date-time"),
        ("n = 1.5", ":8: table t, default n: 1.5 is not an integer"),
        ('flag = "maybe"', ":8: table t, default flag: 'maybe' is not a boolean (0/1, true/false, t/f)"),
        ('name = "toolong"', ":8: table t, default name: 7 characters, longer than varchar(3)"),
    ]:
        path.write_text(USERS + f"[table.defaults]\n{default}\n")
        with pytest.raises(ConfigError) as caught:
            check_defaults(load_mapping(path).tables[0], types)
        assert (str(caught.value), caught.value.exit_code) == (
            f"{path}{message} — give a value the column takes, or remove it", 2)
    path.write_text(USERS + '[table.defaults]\nlast_login = "2024-01-02 03:04:05"\nn = "12"\nflag = true\nname = "abc"\n'
                    'tags = "[1]"\n')
    check_defaults(load_mapping(path).tables[0], types)


def _own_mapping(d: Dir, old: str, new: str) -> Path:
    example = REPO / "examples" / "dirfinal" / "mapping.toml"
    text = example.read_text()
    assert old in text
    path = d.project / "mapping.toml"
    path.write_text(text.replace(old, new, 1))
    config = d.project / "golive.toml"
    config.write_text(config.read_text().replace(str(example), str(path)))
    return path


def test_a_query_ending_in_a_semicolon_and_a_comment_syncs(dirfinal: Dir, cli) -> None:
    _own_mapping(dirfinal, 'source = "family"\n', 'query = """\nSELECT id, name -- every family\nFROM family;'
                 ' -- the old site\n"""\n')
    for args in (("sync", "--dry-run"), ("sync", "--yes")):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr  # (it was: near ";": syntax error)
    assert dirfinal.count("directory_family") == 7


def test_a_default_the_target_cannot_take_stops_before_the_plan_and_the_backup(dirfinal: Dir, cli) -> None:
    path = _own_mapping(dirfinal, 'first_name = ""\n', 'first_name = ""\nlast_login = "not a date"\n')
    line = path.read_text().splitlines().index('last_login = "not a date"') + 1
    for args in (("sync", "--dry-run"), ("sync", "--yes")):
        result = cli(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", (
            f"error: {path}:{line}: table auth_user, default last_login: 'not a date' is not a date-time — give a"
            " value the column takes, or remove it\n"))
    assert not list((dirfinal.project / ".golive").glob("backups/*"))
