"""Method "postgres" as the database's owner, not a superuser: the sessions it cannot end (another role's, a
superuser's) are found before anything is changed and named with the way out."""

from __future__ import annotations

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
