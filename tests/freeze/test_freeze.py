"""`golive freeze` by each method, for real: a flag file, shell commands, and a PostgreSQL source
made read-only with its open sessions ended. Undo puts the state before back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from golive.sandbox.postgres import PostgresCluster

SECRET = "s3cret-pw-d6f1a9"


def write_config(project: Path, source: str) -> None:
    config = project / "golive.toml"
    config.write_text(f'[project]\nname = "freeze-test"\n\n{source}')
    config.chmod(0o600)


def test_file_method_round_trip(project: Path, cli) -> None:
    flag = project / "MAINTENANCE"
    write_config(project, f'[source]\nurl = "sqlite:///old.db"\n\n[source.freeze]\nmethod = "file"\nflag_file = "{flag}"\n')
    assert cli("freeze", "status").stdout == "freeze: off (file)\n"
    dry = cli("freeze", "on", "--dry-run")
    assert dry.lines == ["Plan: freeze on — 1 step(s), 1 change(s)", "  [1] freeze writes",
                         "      old application (file): writable -> frozen"]
    assert not flag.exists()
    assert cli("freeze", "on", "--yes").lines[-1] == "the old application is frozen (read-only)"
    assert flag.read_text().startswith("frozen by golive at ")
    assert cli("status").lines[-1] == "freeze:    frozen=on, method=file"
    assert cli("freeze", "off", "--yes").exit_code == 0
    assert not flag.exists()
    assert cli("rollback", "--yes").exit_code == 0  # undo the unfreeze: the same flag text is back
    assert flag.read_text().startswith("frozen by golive at ")
    assert cli("rollback", "--yes").exit_code == 0  # undo the freeze
    assert not flag.exists()


def test_a_freeze_that_would_change_nothing_makes_no_run_and_a_flag_nobody_checks_is_refused(project: Path,
                                                                                            cli) -> None:
    flag = project / "MAINTENANCE"
    write_config(project, f'[source]\nurl = "sqlite:///old.db"\n\n[source.freeze]\nmethod = "file"\nflag_file = "{flag}"\n')
    assert cli("freeze", "on", "--yes").exit_code == 0
    again = cli("freeze", "on", "--yes")  # (it made a run that did nothing: `golive rollback` then "undid" it,
    assert (again.exit_code, again.lines) == (0, [  # and the old app stayed frozen)
        "Plan: freeze on — 1 step(s), 1 change(s)", "  [1] freeze writes", "      old application (file): unchanged (frozen)",
        "nothing to do: every change is already in place (no run was made)"])
    assert json.loads(cli("freeze", "on", "--json").stdout) == {
        "event": "result", "ok": True, "run": None, "status": "nothing to do",
        "steps": [{"seq": 1, "kind": "freeze.set", "title": "freeze writes", "note": "", "changes": [
            {"what": "old application (file)", "action": "noop", "before": "frozen", "after": "frozen"}]}],
        "notices": []}
    assert [line.split()[1] for line in cli("history").lines[1:]] == ["freeze"]
    assert cli("rollback", "--yes").exit_code == 0  # undoes the one freeze that did something
    assert not flag.exists()
    assert cli("freeze", "off", "--yes").lines[-2:] == [
        "      old application (file): unchanged (writable)", "nothing to do: every change is already in place (no run was made)"]
    assert cli("freeze", "on", "--yes").exit_code == 0
    flag.unlink()  # someone let the old app write again by hand: the rollback plan says so (it said "frozen ->")
    assert cli("rollback", "--dry-run").lines[2:] == [
        "      old application (file) (changed since the run): unchanged (writable)"]
    assert cli("rollback", "--yes").exit_code == 0
    assert not flag.exists()

    elsewhere = project / "no-such-folder" / "MAINTENANCE"
    write_config(project, f'[source]\nurl = "sqlite:///old.db"\n\n[source.freeze]\nmethod = "file"\nflag_file = "{elsewhere}"\n')
    for args in (["on", "--dry-run"], ["on", "--yes"], ["off", "--yes"]):
        refused = cli("freeze", *args)
        assert (refused.exit_code, refused.stderr) == (2, (
            f"error: [source.freeze].flag_file {elsewhere}: its folder {elsewhere.parent} does not exist — fix"
            " flag_file: it must be the path the old application checks (the folder is not made: a flag the app never"
            " looks at freezes nothing)\n"))
    assert not elsewhere.parent.exists()


def test_command_method_and_a_failing_command(project: Path, cli) -> None:
    state = project / "state"
    write_config(project, f"""[source]
url = "sqlite:///old.db"

[source.freeze]
method = "command"
on = ["sh", "-c", "echo frozen > {state}"]
off = ["sh", "-c", "rm -f {state}"]
status = ["test", "-e", "{state}"]
""")
    assert cli("freeze", "on", "--yes").exit_code == 0
    assert state.read_text() == "frozen\n"
    assert cli("freeze", "status", "--json").stdout == '{"ok": true, "frozen": true, "method": "command"}\n'
    assert cli("rollback", "--yes").exit_code == 0
    assert not state.exists()
    write_config(project, f"""[source]
url = "sqlite:///old.db"

[source.freeze]
method = "command"
on = ["sh", "-c", "echo app busy >&2; exit 3"]
off = ["true"]
status = ["test", "-e", "{state}"]
""")
    failed = cli("freeze", "on", "--yes")
    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: step freeze writes failed: freeze command `sh -c 'echo app busy >&2; exit 3'`"
                                    " exited 3: app busy")


@pytest.fixture
def source_db(pg_cluster: PostgresCluster) -> str:
    name = f"flask_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_database(name)
    pg_cluster.psql("CREATE TABLE entry (id serial PRIMARY KEY, name text)", name)
    return name


def test_postgres_method_makes_the_source_read_only_and_ends_sessions(project: Path, cli, pg_cluster: PostgresCluster,
                                                                      source_db: str, monkeypatch) -> None:
    url = pg_cluster.url(source_db, password=SECRET)  # trust auth ignores it; golive must still never show it
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", url)
    write_config(project, '[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n\n[source.freeze]\nmethod = "postgres"\n')
    app_session = psycopg.connect(pg_cluster.url(source_db), autocommit=True)
    app_session.execute("INSERT INTO entry (name) VALUES ('before')")

    frozen = cli("-v", "freeze", "on", "--yes")
    assert frozen.exit_code == 0, frozen.stderr
    assert f"    apply: database {source_db}: ended 1 open session(s)" in frozen.lines
    with pytest.raises(psycopg.OperationalError):
        app_session.execute("SELECT 1")  # the old app's session was ended
    with psycopg.connect(pg_cluster.url(source_db), autocommit=True) as conn, \
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("INSERT INTO entry (name) VALUES ('during')")
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"

    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    with psycopg.connect(pg_cluster.url(source_db), autocommit=True) as conn:
        conn.execute("INSERT INTO entry (name) VALUES ('after')")
        assert [r[0] for r in conn.execute("SELECT name FROM entry ORDER BY id")] == ["before", "after"]
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"
    history = cli("history", "--json")
    for out in (frozen.stdout, frozen.stderr, rolled.stdout, rolled.stderr, history.stdout):
        assert SECRET not in out


def test_unreachable_source_database_is_a_clear_error(project: Path, cli, pg_cluster: PostgresCluster,
                                                       monkeypatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", pg_cluster.url("no_such_db", password=SECRET))
    write_config(project, '[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n\n[source.freeze]\nmethod = "postgres"\n')
    result = cli("freeze", "on", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot connect to the source database postgresql://postgres:***@127.0.0.1:"
                                    f"{pg_cluster.port}/no_such_db: ")
    assert 'database "no_such_db" does not exist' in result.stderr
    assert SECRET not in result.stderr


@pytest.mark.parametrize("value", ["true", "yes", "1", "ON", "'t'"])
def test_a_source_made_read_only_by_hand_in_any_boolean_spelling_is_frozen(project: Path, cli,
                                                                          pg_cluster: PostgresCluster, source_db: str,
                                                                          monkeypatch, value: str) -> None:
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", pg_cluster.url(source_db))
    write_config(project, '[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n\n[source.freeze]\nmethod = "postgres"\n')
    pg_cluster.psql(f'ALTER DATABASE "{source_db}" SET default_transaction_read_only = {value}', "postgres")
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"
    pg_cluster.psql(f'ALTER DATABASE "{source_db}" SET default_transaction_read_only = off', "postgres")
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"


def test_an_unfreeze_that_cannot_reach_the_source_gives_the_exact_sql_by_hand(project: Path, cli,
                                                                              pg_cluster: PostgresCluster,
                                                                              source_db: str, monkeypatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", pg_cluster.url(source_db))
    write_config(project, '[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n\n[source.freeze]\nmethod = "postgres"\n')
    assert cli("freeze", "on", "--yes").exit_code == 0
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", pg_cluster.url(source_db).replace(f":{pg_cluster.port}/", ":1/"))
    failed = cli("rollback", "--yes")
    assert failed.exit_code == 4
    assert (f"by hand: make the old application writable again: on the source server, as the owner of database"
            f' {source_db}, run `ALTER DATABASE "{source_db}" RESET default_transaction_read_only;` (its new sessions'
            " can then write)") in failed.stderr
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", pg_cluster.url(source_db))
    assert cli("rollback", "--yes").exit_code == 0
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"


def test_a_rollback_through_a_freeze_and_its_unfreeze_plans_from_the_state_the_newer_undo_leaves(
        project: Path, cli) -> None:
    """`rollback --through` plans every run before undoing any: the `freeze on`'s undo is planned from the
    freeze the `freeze off`'s undo (run first) leaves — frozen — not from the writable state now."""
    flag = project / "MAINTENANCE"
    write_config(project, f'[source]\nurl = "sqlite:///old.db"\n\n[source.freeze]\nmethod = "file"\nflag_file = "{flag}"\n')
    on = json.loads(cli("freeze", "on", "--yes", "--json").lines[-1])["run"]
    assert cli("freeze", "off", "--yes").exit_code == 0
    planned = cli("rollback", "--through", on, "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    changes = [line.strip() for line in planned.lines if line.strip().startswith("old application")]
    assert changes == ["old application (file): writable -> frozen",  # the unfreeze undone: frozen again
                       "old application (file): frozen -> writable"]  # then the freeze: not "(changed since the run)"
    assert cli("rollback", "--through", on, "--yes").exit_code == 0
    assert not flag.exists()


def test_a_source_url_without_a_database_name_freezes_the_users_database(project: Path, cli,
                                                                         pg_cluster: PostgresCluster,
                                                                         monkeypatch) -> None:
    """postgresql://app@host:port connects to database "app" (libpq: the user's name): status said "off" whatever
    the state and freeze on failed with `zero-length delimited identifier`, golive taking the database name as ""."""
    from golive.db import database_name

    role = f"app_{uuid.uuid4().hex[:8]}"
    pg_cluster.psql(f'CREATE ROLE "{role}" LOGIN')
    pg_cluster.psql(f'CREATE DATABASE "{role}" OWNER "{role}"')
    monkeypatch.delenv("PGDATABASE", raising=False)
    url = f"postgresql://{role}@127.0.0.1:{pg_cluster.port}"
    assert database_name(url) == role
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", url)
    write_config(project, '[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n\n[source.freeze]\nmethod = "postgres"\n')
    frozen = cli("freeze", "on", "--yes")
    assert frozen.exit_code == 0, frozen.stderr
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"
    assert pg_cluster.psql(f"SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase ="
                           f" (SELECT oid FROM pg_database WHERE datname = '{role}')") == \
        "{default_transaction_read_only=on}"
    pg_cluster.psql(f'ALTER DATABASE "{role}" RESET default_transaction_read_only')
    pg_cluster.psql(f'ALTER DATABASE "{role}" SET default_transaction_read_only = on')
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"
    unfrozen = cli("freeze", "off", "--yes")
    assert unfrozen.exit_code == 0, unfrozen.stderr
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"
