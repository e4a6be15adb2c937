"""Method "postgres" and prepared transactions: `COMMIT PREPARED` writes whatever default_transaction_read_only
says, so a transaction prepared before the freeze would commit its writes after it (after the final sync)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import psycopg
import pytest

from golive.sandbox.postgres import PostgresCluster, find_bin_dir
from tests.conftest import require_real


@pytest.fixture(scope="module")
def prepared_cluster() -> Iterator[PostgresCluster]:
    """A cluster of its own that allows prepared transactions (max_prepared_transactions is 0 by default and
    takes a restart: the session's cluster is left as it is)."""
    require_real("postgresql", find_bin_dir() is not None, "no initdb (apt-get install postgresql)")
    cluster = PostgresCluster(settings={"max_prepared_transactions": "4"}).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_prepared_transaction_is_named_and_the_freeze_refused_until_it_is_ended(
        project: Path, cli, prepared_cluster: PostgresCluster, monkeypatch) -> None:
    cluster = prepared_cluster
    cluster.create_database("flask")
    cluster.psql("CREATE TABLE entry (id serial PRIMARY KEY, name text)", "flask")
    monkeypatch.setenv("GOLIVE_TEST_SOURCE_URL", cluster.url("flask"))
    config = project / "golive.toml"
    config.write_text('[project]\nname = "t"\n[source]\nurl = "env:GOLIVE_TEST_SOURCE_URL"\n[source.freeze]\n'
                      'method = "postgres"\n')
    config.chmod(0o600)
    with psycopg.connect(cluster.url("flask"), autocommit=True) as app:
        app.execute("BEGIN")
        app.execute("INSERT INTO entry (name) VALUES ('prepared')")
        app.execute("PREPARE TRANSACTION 'pt1'")
        [(since,)] = app.execute("SELECT prepared FROM pg_prepared_xacts").fetchall()

    for args in (("freeze", "on", "--dry-run"), ("freeze", "on", "--yes")):
        refused = cli(*args)
        assert (refused.exit_code, refused.stderr) == (1, (
            "error: database flask: 1 prepared transaction(s) would still write after the freeze (COMMIT PREPARED"
            f" commits them, read-only or not): 'pt1' (owner postgres, prepared {since.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
            " UTC); nothing was changed — connected to database flask as their owner or a superuser, end each: COMMIT"
            " PREPARED 'pt1' (or ROLLBACK PREPARED 'pt1', losing its writes) — then freeze again\n")), args
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"

    cluster.psql("COMMIT PREPARED 'pt1'", "flask")
    frozen = cli("freeze", "on", "--yes", "--json")
    assert frozen.exit_code == 0, frozen.stderr
    assert cli("freeze", "status").stdout == "freeze: on (postgres)\n"
    with psycopg.connect(cluster.url("flask"), autocommit=True) as app, \
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        app.execute("INSERT INTO entry (name) VALUES ('frozen')")
    assert cli("rollback", "--run", json.loads(frozen.lines[-1])["run"], "--yes").exit_code == 0
    assert cli("freeze", "status").stdout == "freeze: off (postgres)\n"
