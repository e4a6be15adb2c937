"""What a restore would throw away, told apart by the transaction that wrote each row (real PostgreSQL):
a row written by a transaction still open when the backup's dump began is kept, as is one written after;
one the dump saw, and one the sync itself wrote, are not."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from golive.errors import GoliveError
from golive.sandbox.postgres import PostgresCluster
from golive.sync.backup import dump
from golive.sync.reconcile import count_written, keep
from tests.sync.test_sync import Dir


def test_rows_are_told_apart_by_the_snapshot_of_the_backups_dump(tmp_path: Path, pg_cluster: PostgresCluster) -> None:
    url = pg_cluster.create_database(f"reconcile_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.tag (name text PRIMARY KEY)")
        conn.execute("INSERT INTO note (body) VALUES ('seen by the dump')")
    straddling = psycopg.connect(url)  # open across the dump: its rows commit after it began
    straddling.execute("INSERT INTO note (body) VALUES ('written while the dump ran')")
    with psycopg.connect(url, autocommit=True) as conn:  # a later transaction done before the dump: the open one
        conn.execute("INSERT INTO note (body) VALUES ('also seen by the dump')")  # is now below the snapshot's xmax
    backup = dump(url, tmp_path / "backups")
    _, high, running = backup.snapshot.split(":")
    assert running and int(running) < int(high)  # (what makes this test: an xid the snapshot holds as in progress)
    straddling.commit()
    straddling.close()
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():  # the sync, in one transaction
            sync = int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
            conn.execute("INSERT INTO note (body) VALUES ('written by the sync')")
            conn.execute("UPDATE note SET body = 'seen by the dump, updated by the sync' WHERE id = 1")
        conn.execute("INSERT INTO note (body) VALUES ('written after')")
        conn.execute("INSERT INTO app.tag VALUES ('after')")
        conn.execute("VACUUM FREEZE note")  # (a frozen row keeps its xmin: still told apart)

    kept = keep(url, backup.snapshot, sync, {}, tmp_path / "reconcile")
    bodies = sorted(json.loads(line)["body"] for line in (kept.directory / "public.note.ndjson").read_text().splitlines())
    assert bodies == ["written after", "written while the dump ran"]
    assert kept.written == {"app.tag": 1, "public.note": 2}
    assert count_written(url, backup.snapshot, sync) == kept.written  # (what a rollback's plan shows)
    assert (kept.directory / "before-restore.dump").stat().st_size > 0

    without_sync = keep(url, backup.snapshot, None, {}, tmp_path / "reconcile")  # its id never recorded: kept too
    assert without_sync.written == {"app.tag": 1, "public.note": 4}  # + the sync's insert and update
    assert json.loads((without_sync.directory / "summary.json").read_text())["sync_rows_included"] is True

    blind = keep(url, None, sync, {}, tmp_path / "reconcile")  # a backup with no snapshot: the dump is all there is
    assert (blind.written, blind.told_apart) == ({}, False)
    assert sorted(p.name for p in blind.directory.iterdir()) == ["before-restore.dump", "summary.json"]
    assert "the whole target" in blind.describe()


def test_a_keeping_that_fails_leaves_no_folder(tmp_path: Path, pg_cluster: PostgresCluster) -> None:
    url = pg_cluster.create_database(f"reconcile_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)")
    backup = dump(url, tmp_path / "backups")
    with psycopg.connect(url) as migration:  # the dump of the target as it is cannot be taken
        migration.execute("LOCK TABLE note IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(GoliveError) as stopped:
            keep(url, backup.snapshot, None, {}, tmp_path / "reconcile", lock_timeout=1)
    assert "pg_dump of the target waited for a lock another session holds on public.note" in stopped.value.message
    assert list((tmp_path / "reconcile").iterdir()) == []  # (so `--restore-data` stops there, restoring nothing)


def test_only_the_newest_dumps_are_kept_and_every_row_file(tmp_path: Path, pg_cluster: PostgresCluster) -> None:
    url = pg_cluster.create_database(f"reconcile_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)")
    backup = dump(url, tmp_path / "backups")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO note (body) VALUES ('written since')")
    blind = keep(url, None, None, {}, tmp_path / "reconcile", dumps_kept=2).directory  # (rows not told apart)
    folders = [keep(url, backup.snapshot, None, {}, tmp_path / "reconcile", dumps_kept=2).directory for _ in range(3)]
    assert [(f / "before-restore.dump").exists() for f in folders if f is not None] == [False, True, True]
    assert all((f / "public.note.ndjson").exists() for f in folders if f is not None)  # (the rows: always)
    assert blind is not None and (blind / "before-restore.dump").exists()  # (its dump is all there is: kept)


def test_rows_users_wrote_between_two_syncs_are_kept_by_the_second_data_rollback(dirfinal: Dir, cli) -> None:
    """Sync, users write, sync, users write, then the data rolled back to before the first sync: the first
    restore writes every row again, the rows users wrote between the syncs with them; the second restore throws
    those away too, so it keeps them first, and its plan counts what it will keep."""
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:
        app.execute("UPDATE auth_user SET email = 'between@example.org' WHERE id = 3")
        app.execute("INSERT INTO auth_group (name) VALUES ('between')")  # (a table golive does not sync)
    dirfinal.source_sql("UPDATE score SET points = points + 1 WHERE id = 1")
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:
        app.execute("INSERT INTO auth_group (name) VALUES ('after')")
    runs = [r["id"] for r in json.loads(cli("history", "--json").stdout)["runs"]]
    planned = cli("rollback", "--through", runs[-1], "--restore-data", "--dry-run").lines
    plans = [line for line in planned if line.startswith("      target database: ")]
    assert plans[0].startswith("      target database: as it is now; 1 row(s) written since the sync"
                               " (public.auth_group 1), kept first -> "), planned
    assert plans[1].startswith("      target database: as it is now; 2 row(s) written since the sync and brought"
                               " back by the newer sync's restore before it (public.auth_group 1, public.auth_user 1),"
                               " kept first -> "), planned
    first = cli("rollback", "--restore-data", "--yes")
    assert first.exit_code == 0, first.stderr
    assert cli("rollback", "--restore-data", "--dry-run").lines[-1].startswith(
        "      target database: as it is now; 2 row(s) written since the sync (public.auth_group 1, public.auth_user 1),"
        " kept first -> ")  # (the plan, once the first restore ran, and the run agree)
    second = cli("rollback", "--restore-data", "--yes")
    assert second.exit_code == 0, second.stderr
    line = next(line for line in second.lines if line.startswith("    ! kept before the restore"))
    assert line.startswith("    ! kept before the restore: 2 row(s) written since the backup (public.auth_group 1,"
                           " public.auth_user 1)"), line
    kept = Path(line.split(" kept in ")[1])
    assert [json.loads(r)["name"] for r in (kept / "public.auth_group.ndjson").read_text().splitlines()] == ["between"]
    assert [json.loads(r)["email"] for r in (kept / "public.auth_user.ndjson").read_text().splitlines()] == \
        ["between@example.org"]
    assert dirfinal.count("auth_user") == 0 and dirfinal.count("auth_group") == 0  # (as before the first sync)


def test_the_deleted_keys_listing_reads_a_date_time_key_as_the_sync_wrote_it(tmp_path: Path,
                                                                             pg_cluster: PostgresCluster) -> None:
    """A plain rollback lists the synced keys the new database no longer has: with a `(sensor, at timestamp)` key it
    compared golive's keys with the target's `::text`, so every synced row was listed as deleted."""
    from golive.sync.engine import SyncEngine
    from golive.sync.reconcile import _deleted
    from tests.sync.test_engine import pg_pair

    source_url, url, mapping, _ = pg_pair(
        tmp_path, pg_cluster, "CREATE TABLE reading (sensor int, at timestamp, value int, PRIMARY KEY (sensor, at))",
        "INSERT INTO reading VALUES (1, '2024-06-01 10:00', 1), (1, '2024-06-01 10:03:00.5', 2), (2, '2024-06-01 10:00', 3)",
        ["sensor", "at", "value"], key='["sensor", "at"]', table="reading")
    SyncEngine(source_url, url, mapping).run(mapping.tables)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM reading WHERE sensor = 2")  # by the new application
        assert _deleted(conn, {"reading": ("sensor", "at")}, tmp_path) == {"reading": 1}
    assert [json.loads(line) for line in (tmp_path / "deleted.ndjson").read_text().splitlines()] == [
        {"table": "reading", "key": "2,2024-06-01T10:00:00.000000"}]
