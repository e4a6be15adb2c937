"""Method "postgres" as the database's owner, not a superuser: the sessions it cannot end (another role's, a
superuser's) are found before anything is changed and named with the way out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from golive.sandbox.postgres import PostgresCluster


@pytest.fixture
def owned_db(pg_cluster: PostgresCluster) -> Iterator[tuple[str, str, str]]:
    """A database owned by a role that is not a superuser, and a second (monitoring) role."""
    tag = uuid.uuid4().hex[:8]
    name, owner, reporter = f"flask_{tag}", f"flask_owner_{tag}", f"reporter_{tag}"
    pg_cluster.psql(f"CREATE ROLE {owner} LOGIN; CREATE ROLE {reporter} LOGIN")
    pg_cluster.psql(f'CREATE DATABASE "{name}" OWNER {owner}')
    yield name, owner, reporter
    pg_cluster.psql(f'DROP DATABASE "{name}" WITH (FORCE)')
    pg_cluster.psql(f"DROP ROLE {owner}; DROP ROLE {reporter}")


def _alive(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_sessions_the_owner_cannot_end_are_named_before_anything_is_changed(
        project: Path, cli, pg_cluster: PostgresCluster, owned_db: tuple[str, str, str], monkeypatch) -> None:
    name, owner, reporter = owned_db
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", pg_cluster.url(name, user=owner))
    config = project / "golive.toml"
    config.write_text('[project]\nname = "t"\n[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n[source.freeze]\n'
                      'method = "postgres"\n')
    config.chmod(0o600)
    monitor = psycopg.connect(pg_cluster.url(name, user=reporter), autocommit=True, application_name="monitor")
    admin = psycopg.connect(pg_cluster.url(name), autocommit=True, application_name="psql")
    app = psycopg.connect(pg_cluster.url(name, user=owner), autocommit=True, application_name="flask")
    m, a = monitor.info.backend_pid, admin.info.backend_pid

    hidden = f"client not visible to {owner}"
    for args in (("freeze", "on", "--dry-run"), ("freeze", "on", "--yes")):
        refused = cli(*args)
        assert (refused.exit_code, refused.stderr) == (1, (
            f"error: database {name}: 2 open session(s) that role {owner} cannot end: {reporter}: monitor, pid {m},"
            f" {hidden}; postgres (superuser): psql, pid {a}, {hidden}; nothing was changed — GRANT pg_signal_backend"
            f" TO {owner} (as a superuser), end them by hand (as a superuser: SELECT pg_terminate_backend(pid) for pid"
            f" {m}, {a}), or freeze as a superuser (the role of source.url) — a superuser's session only a superuser"
            " can end\n")), args
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"
    assert _alive(monitor) and _alive(admin) and _alive(app)

    pg_cluster.psql(f"GRANT pg_signal_backend TO {owner}")
    refused = cli("freeze", "on", "--yes")
    assert (refused.exit_code, refused.stderr) == (1, (
        f"error: database {name}: 1 open session(s) that role {owner} cannot end: postgres (superuser): psql, pid {a},"
        f" {hidden}; nothing was changed — end them by hand (as a superuser: SELECT pg_terminate_backend(pid) for pid"
        f" {a}), or freeze as a superuser (the role of source.url) — a superuser's session only a superuser can end\n"))
    assert _alive(monitor) and _alive(app)

    admin.close()
    frozen = cli("-v", "freeze", "on", "--yes")
    assert frozen.exit_code == 0, frozen.stderr
    assert f"    apply: database {name}: ended 2 open session(s)" in frozen.lines
    assert not _alive(monitor) and not _alive(app)
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"
    assert cli("rollback", "--yes").exit_code == 0
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"


def test_a_session_it_cannot_end_met_while_ending_them_is_named(pg_cluster: PostgresCluster,
                                                               owned_db: tuple[str, str, str]) -> None:
    """(one that connected after the check: the step fails naming it, and its undo resets the setting)"""
    from golive.core.step import StepContext
    from golive.errors import GoliveError
    from golive.freeze.postgres import _end_sessions

    name, owner, _ = owned_db
    admin = psycopg.connect(pg_cluster.url(name), autocommit=True, application_name="psql")
    with psycopg.connect(pg_cluster.url(name, user=owner), autocommit=True) as conn, \
            pytest.raises(GoliveError) as failed:
        _end_sessions(StepContext(state_dir=Path(".")), conn, name)
    assert failed.value.message == (
        f"database {name}: 1 open session(s) that role {owner} cannot end: postgres (superuser): psql, pid"
        f" {admin.info.backend_pid}, client not visible to {owner}; ended 0 other(s)")
    assert _alive(admin)
    admin.close()


def _config(project: Path, url: str, monkeypatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", url)
    config = project / "golive.toml"
    config.write_text('[project]\nname = "t"\n[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n[source.freeze]\n'
                      'method = "postgres"\n')
    config.chmod(0o600)


def _writes(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("CREATE TEMP TABLE t (x int)")  # (any role may; read-only, none may)
        except psycopg.errors.ReadOnlySqlTransaction:
            return False
    return True


def test_a_role_whose_own_setting_keeps_it_writable_is_refused_and_never_shown_as_frozen(
        project: Path, cli, pg_cluster: PostgresCluster, owned_db: tuple[str, str, str], monkeypatch) -> None:
    """PostgreSQL takes a role's setting in the database over the role's, and the role's over the database's:
    `ALTER ROLE app SET default_transaction_read_only = off` kept the app writing after `freeze on`, and `freeze
    status` said on. golive refuses it rather than override it: a role's setting holds in every database (the
    target's too, on a shared server), changing roles needs more than owning the database, and an override would
    be a second, hidden change to undo; the operator resets it (the SQL is in the message) and freezes again."""
    name, owner, app = owned_db
    _config(project, pg_cluster.url(name, user=owner), monkeypatch)
    pg_cluster.psql(f"ALTER ROLE {app} SET default_transaction_read_only = off;"
                    f" ALTER ROLE {app} IN DATABASE {name} SET default_transaction_read_only = false")
    both = (f"database {name}: 1 role(s) set their own default_transaction_read_only = off, which PostgreSQL takes"
            f" over the database's, so their sessions still write: {app} (in database {name}, in every database)")
    fix = (f"as a superuser: ALTER ROLE {app} IN DATABASE {name} RESET default_transaction_read_only; ALTER ROLE {app}"
           " RESET default_transaction_read_only — then freeze again")
    for args in (("freeze", "on", "--dry-run"), ("freeze", "on", "--yes")):
        refused = cli(*args)
        assert (refused.exit_code, refused.stderr) == (1, f"error: {both}; nothing was changed — {fix}\n"), args
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"
    assert _writes(pg_cluster.url(name, user=app))

    # made read-only by hand with the role's setting still there: not frozen, and why
    pg_cluster.psql(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    assert _writes(pg_cluster.url(name, user=app))  # (what status would hide by saying on)
    why = f"database {name} is read-only, but it is not frozen: " + both.removeprefix(f"database {name}: ")
    shown = cli("freeze", "status")
    assert (shown.exit_code, shown.stdout, shown.stderr) == (1, "", f"error: {why} — {fix}\n")
    assert cli("status").lines[-1] == f"freeze:    error={why} — {fix}"
    assert cli("freeze", "on", "--yes").stderr == f"error: {both}; nothing was changed — {fix}\n"
    unfrozen = cli("freeze", "off", "--yes")  # (the database's own setting is still golive's to reset)
    assert unfrozen.exit_code == 0, unfrozen.stderr
    assert "      old application (postgres): frozen -> writable" in unfrozen.lines

    # only the role's setting for every database left: named alone
    pg_cluster.psql(f"ALTER ROLE {app} IN DATABASE {name} RESET default_transaction_read_only")
    refused = cli("freeze", "on", "--yes")
    assert refused.stderr == (
        f"error: database {name}: 1 role(s) set their own default_transaction_read_only = off, which PostgreSQL takes"
        f" over the database's, so their sessions still write: {app} (in every database); nothing was changed — as a"
        f" superuser: ALTER ROLE {app} RESET default_transaction_read_only — then freeze again\n")

    # the role read-only in this database (over its own off): the freeze holds for it
    pg_cluster.psql(f"ALTER ROLE {app} IN DATABASE {name} SET default_transaction_read_only = on")
    frozen = cli("freeze", "on", "--yes")
    assert frozen.exit_code == 0, frozen.stderr
    assert not _writes(pg_cluster.url(name, user=app))
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"
    assert cli("rollback", "--yes").exit_code == 0
    pg_cluster.psql(f"ALTER ROLE {app} RESET ALL")


def test_the_undo_of_an_unfreeze_ends_the_sessions_opened_meanwhile_or_fails_naming_them(
        project: Path, cli, pg_cluster: PostgresCluster, owned_db: tuple[str, str, str], monkeypatch) -> None:
    """`freeze on`, `freeze off`, the app connects, `golive rollback` (the off undone: read-only again): the app's
    session, opened while the database was writable, kept default_transaction_read_only off and went on writing
    while status said on. Making the database read-only again ends the other sessions, as `freeze on` does; one
    it cannot end fails the undo before anything is changed (exit 4, the by-hand line), and the rollback run
    again once it is gone finishes."""
    name, owner, _ = owned_db
    _config(project, pg_cluster.url(name, user=owner), monkeypatch)
    assert cli("freeze", "on", "--yes").exit_code == 0
    off = json.loads(cli("freeze", "off", "--yes", "--json").lines[-1])["run"]
    app = psycopg.connect(pg_cluster.url(name, user=owner), autocommit=True, application_name="flask")
    admin = psycopg.connect(pg_cluster.url(name), autocommit=True, application_name="psql")
    a = admin.info.backend_pid

    failed = cli("rollback", "--yes")
    assert failed.exit_code == 4
    assert failed.stderr.splitlines() == [
        f"error: undo of step 1 (unfreeze writes) of run {off} failed: database {name}: 1 open"
        f" session(s) that role {owner} cannot end: postgres (superuser): psql, pid {a}, client not visible to {owner};"
        f" nothing was changed — end them by hand (as a superuser: SELECT pg_terminate_backend(pid) for pid {a}), or"
        " freeze as a superuser (the role of source.url) — a superuser's session only a superuser can end — do the"
        " manual steps listed, then `golive rollback --yes` again",
        f"  by hand: make the old application frozen again: on the source server, as the owner of database {name}, run"
        f' `ALTER DATABASE "{name}" SET default_transaction_read_only = on;` and end its open sessions']
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"
    assert _alive(app) and _alive(admin)

    admin.close()
    rolled = cli("-v", "rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert f"    undo: database {name}: ended 1 open session(s)" in rolled.lines
    assert not _alive(app)
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"
    with psycopg.connect(pg_cluster.url(name, user=owner), autocommit=True) as conn, \
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("CREATE TEMP TABLE t (x int)")
    assert cli("rollback", "--yes").exit_code == 0  # (the freeze on undone)
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"

