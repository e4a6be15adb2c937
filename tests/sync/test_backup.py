"""Restore against real PostgreSQL: a lock another session holds is waited for `lock_timeout`, then the
restore is cancelled by its watchdog (pg_restore sets its own lock_timeout to 0), its data untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from golive.errors import GoliveError
from golive.sandbox.postgres import PostgresCluster
from golive.sync.backup import NoSpace, dump, restore
from tests.conftest import require_real
from tests.sync.test_sync import Dir


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB file system (tmpfs: root only), unmounted after."""
    require_real("a tmpfs mount", os.geteuid() == 0, "mounting one needs root")
    folder = tmp_path / "tiny"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path, spare: int = 512 * 1024) -> Path:
    """Fill the file system ``folder`` is on but ``spare`` bytes (golive's journal writes there too); the file
    that does it."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - spare))
    return filler


def _a_restore_held_up(tmp_path: Path, pg_cluster: PostgresCluster) -> tuple[str, Any, psycopg.Connection[Any]]:
    """A target with a backup of its empty `note` table, two rows written since, and an application session in
    the middle of a transaction that read `note`: its lock blocks the restore's DROP. (url, backup, that session)"""
    url = pg_cluster.create_database(f"backup_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (id int PRIMARY KEY)")
    backup = dump(url, tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO note VALUES (1), (2)")
    holder = psycopg.connect(url, application_name="django-web")
    holder.execute("SELECT count(*) FROM note")
    return url, backup, holder


def test_a_restore_held_up_by_a_lock_is_cancelled_naming_the_holder(tmp_path: Path, pg_cluster: PostgresCluster) -> None:
    url, backup, holder = _a_restore_held_up(tmp_path, pg_cluster)
    try:
        with pytest.raises(GoliveError) as stopped:
            restore(url, backup.path, lock_timeout=1)
    finally:
        holder.close()
    assert "waited 1 s for a lock other sessions hold on the target and stopped, the target untouched" in stopped.value.message
    assert "held by 1 session(s): pid " in stopped.value.message
    assert " django-web from 127.0.0.1 (idle in transaction)" in stopped.value.message
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 2  # its one transaction rolled back
    restore(url, backup.path, lock_timeout=1)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 0


def test_the_server_bounds_a_restores_wait_for_a_lock_while_golive_is_stopped(
        tmp_path: Path, pg_cluster: PostgresCluster) -> None:
    """A golive stopped (Ctrl-Z, a hung machine) or killed cannot cancel its restore's wait: the server bounds it
    (pg_restore's script sets lock_timeout to 0; golive turns that into the session's own, from PGOPTIONS)."""
    url, backup, holder = _a_restore_held_up(tmp_path, pg_cluster)
    golive = subprocess.Popen([sys.executable, "-c", "import sys; from golive.sync.backup import restore;"
                               f" restore({url!r}, __import__('pathlib').Path({str(backup.path)!r}), 1)"],
                              stderr=subprocess.PIPE, text=True)

    def waiting() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            return int(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE"
                                    " 'golive-restore-%' AND wait_event_type = 'Lock'").fetchone()[0])

    said = ""
    try:
        deadline = time.monotonic() + 30
        while not waiting():
            assert time.monotonic() < deadline and golive.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)  # (its watchdog looks who holds the lock)
        golive.send_signal(signal.SIGSTOP)  # (and stops with it; psql goes on)
        time.sleep(4)
        assert not waiting()  # the server gave up the wait after lock_timeout
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 2  # (its one transaction rolled back)
    finally:
        golive.send_signal(signal.SIGCONT)
        said = golive.communicate(timeout=30)[1]
        holder.close()
    assert "waited 1 s for a lock other sessions hold on the target and stopped, the target untouched; held by 1" \
           " session(s): pid " in said  # (its watchdog had seen who)


def test_restore_scripts_a_killed_golive_left_are_removed(tmp_path: Path) -> None:
    """Each is a full SQL copy of the target (users' data, password hashes): the next command that tidies the
    backups removes them, whatever backup_keep says."""
    from golive.sync.backup import prune

    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    dumps = [backups / f"target-2024010{i}-000000-000000.dump" for i in range(1, 3)]
    left = backups / ".restore-abc123.sql"
    for path in [*dumps, left]:
        path.write_text("x")
    assert prune(backups, 3, set()) == [left]
    assert sorted(backups.iterdir()) == dumps


def test_a_target_older_than_postgresql_14_is_named_with_the_fix(pg_cluster: PostgresCluster) -> None:
    from golive.db import require_version

    with psycopg.connect(pg_cluster.create_database(f"version_{uuid.uuid4().hex[:8]}")) as conn:
        require_version(conn, 14, "target database")  # this machine's PostgreSQL 15: no complaint

    class Old:  # (no PostgreSQL 13 server can run here: what it answers to SHOW server_version_num)
        def execute(self, sql: str) -> Old:
            assert sql == "SHOW server_version_num"
            return self

        def fetchone(self) -> tuple[str]:
            return ("130012",)

    with pytest.raises(GoliveError) as old:
        require_version(Old(), 14, "target database")
    assert str(old.value) == ("the target database runs PostgreSQL 13; golive needs 14 or later — upgrade it to"
                              " PostgreSQL 14+ (Django 5.2 needs 14 too)")


def test_a_role_that_may_not_alter_the_database_gets_the_reason_and_nothing_held(pg_cluster: PostgresCluster) -> None:
    from golive.sync.backup import writes_are_held, writes_held

    name = f"hold_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_database(name)
    role = f"web_{uuid.uuid4().hex[:6]}"
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN")  # (trust auth on loopback: no password needed)
    with writes_held(pg_cluster.url(name, user=role)) as refused:
        assert refused is not None and refused.startswith("must be owner of database")
    with psycopg.connect(pg_cluster.url(name)) as conn:
        assert not writes_are_held(conn)
    with writes_held(pg_cluster.url(name)) as refused:  # its owner may: held, then released
        assert refused is None
        with psycopg.connect(pg_cluster.url(name)) as conn:
            assert writes_are_held(conn)
    with psycopg.connect(pg_cluster.url(name)) as conn:
        assert not writes_are_held(conn)


def test_an_owner_that_may_not_set_the_mark_holds_nothing_and_leaves_the_database_writable(
        pg_cluster: PostgresCluster) -> None:
    """The usual Django database: owned by the application's role, not a superuser. It may make its database
    read-only but (PostgreSQL 15) not set golive's mark: holding writes off then must not half happen — a
    read-only database nothing recognises as golive's hold would stay read-only for good."""
    from golive.sync.backup import writes_are_held, writes_held

    name, role = f"own_{uuid.uuid4().hex[:8]}", f"app_{uuid.uuid4().hex[:6]}"
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN")
    pg_cluster.psql(f'CREATE DATABASE "{name}" OWNER {role}')
    with writes_held(pg_cluster.url(name, user=role)) as refused:
        assert refused == (f'permission denied to set parameter "golive.restore_freeze"; `GRANT SET ON PARAMETER'
                           f' golive.restore_freeze TO {role}` as a superuser lets it')
    with psycopg.connect(pg_cluster.url(name, user=role)) as conn:
        assert not writes_are_held(conn)
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "off"  # (a new session writes)
    pg_cluster.psql(f"GRANT SET ON PARAMETER golive.restore_freeze TO {role}")
    with writes_held(pg_cluster.url(name, user=role)) as refused:  # granted: held, then released
        assert refused is None
        with psycopg.connect(pg_cluster.url(name, user=role)) as conn:
            assert writes_are_held(conn) and conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
    with psycopg.connect(pg_cluster.url(name, user=role)) as conn:
        assert not writes_are_held(conn) and conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "off"


def test_whether_writes_can_be_held_off_is_asked_before_anything_changes(pg_cluster: PostgresCluster) -> None:
    from golive.sync.backup import hold_refused, writes_held

    name, role, other = f"ask_{uuid.uuid4().hex[:8]}", f"app_{uuid.uuid4().hex[:6]}", f"web_{uuid.uuid4().hex[:6]}"
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN")
    pg_cluster.psql(f"CREATE ROLE {other} LOGIN")
    pg_cluster.psql(f'CREATE DATABASE "{name}" OWNER {role}')
    for user in (role, other, "postgres"):  # (the answer is what writes_held then finds)
        with psycopg.connect(pg_cluster.url(name, user=user)) as conn:
            said = hold_refused(conn)
        with writes_held(pg_cluster.url(name, user=user)) as refused:
            assert said == refused, user
    assert said is None  # (the superuser)
    with psycopg.connect(pg_cluster.url(name, user=role)) as conn:
        assert hold_refused(conn) == (f'permission denied to set parameter "golive.restore_freeze"; `GRANT SET ON'
                                      f' PARAMETER golive.restore_freeze TO {role}` as a superuser lets it')
    pg_cluster.psql(f"GRANT SET ON PARAMETER golive.restore_freeze TO {role}")
    with psycopg.connect(pg_cluster.url(name, user=role)) as conn:
        assert hold_refused(conn) is None


def test_the_plan_of_a_data_rollback_says_before_the_prompt_when_writes_will_not_be_held_off(
        dirfinal: Dir, cli, pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The init template's role owns the database but may not set golive's mark: the plan said "writes held off
    meanwhile", and only after restoring did the run say they had not been."""
    assert cli("sync", "--yes").exit_code == 0
    name, role = dirfinal.target_url.rsplit("/", 1)[1], f"app_{uuid.uuid4().hex[:6]}"
    plan = cli("rollback", "--dry-run", "--restore-data")
    assert plan.exit_code == 0 and "(writes held off meanwhile, its sessions ended; " in plan.stdout  # (a superuser)
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN")
    pg_cluster.psql(f'ALTER DATABASE "{name}" OWNER TO {role}')
    monkeypatch.setenv("GOLIVE_TEST_TARGET_URL", pg_cluster.url(name, user=role))
    plan = cli("rollback", "--dry-run", "--restore-data")
    assert plan.exit_code == 0, plan.stderr
    assert "writes held off meanwhile" not in plan.stdout
    assert (f'(writes NOT held off: permission denied to set parameter "golive.restore_freeze"; `GRANT SET ON PARAMETER'
            f" golive.restore_freeze TO {role}` as a superuser lets it — stop the new application first: what it writes"
            " between the keeping and the restore is lost; what it replaces is kept first in ") in plan.stdout


def test_a_dump_into_a_full_directory_names_it(tiny: Path, pg_cluster: PostgresCluster) -> None:
    url = pg_cluster.create_database(f"full_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as conn:  # (random text: the dump does not compress it to fit)
        conn.execute("CREATE TABLE note AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS body"
                     " FROM generate_series(1, 60000) g")
    fill(tiny)
    with pytest.raises(NoSpace) as full:
        dump(url, tiny / "backups")
    assert str(full.value).startswith(f"pg_dump of the target failed: {tiny / 'backups'} is full (pg_dump: error: could"
                                      " not write to output file: No space left on device) — free space in"
                                      f" {tiny / 'backups'} (")
    assert str(full.value).endswith(" KiB free now) or set [project].state_dir elsewhere, then run the command again")
    assert list((tiny / "backups").iterdir()) == []  # (no half-written dump left for a restore to pick up)


def test_a_data_rollback_that_cannot_keep_for_want_of_space_says_free_it_and_run_golive_again(
        dirfinal: Dir, cli, tiny: Path) -> None:
    """Its by-hand lines once said to restore the backup by hand: the rows users wrote since the sync, never
    kept, were then thrown away. Nothing was restored: the way on is golive's own restore, once there is room."""
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace('name = "sync-test"', f'name = "sync-test"\nstate_dir = "{tiny}/state"'))
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:
        app.execute("UPDATE auth_user SET email = 'moved@example.org' WHERE id = 3")
        app.execute("INSERT INTO auth_group (name) SELECT md5(g::text) || md5((g * 7)::text)"
                    " FROM generate_series(1, 40000) g")  # (more than the room left: the dump of the target stops)
    filler = fill(tiny)
    failed = cli("rollback", "--restore-data", "--yes")
    assert failed.exit_code == 4
    reconcile = tiny / "state" / "reconcile"
    assert f"pg_dump of the target failed: {reconcile} is full (pg_dump: error: could not write to output file: No space" \
           " left on device)" in failed.stderr
    manual = [line for line in failed.stderr.splitlines() if line.startswith("  by hand: ")]
    assert manual == [f"  by hand: free space in {reconcile} (or set [project].state_dir elsewhere), then run `golive"
                      " rollback --restore-data --yes` again (nothing was restored: it keeps what users wrote since the"
                      " sync, then restores)",
                      "  by hand: or keep the new database's data instead: `golive rollback --yes` (it lists what users"
                      f" wrote since the sync in {reconcile}/)"]
    assert dirfinal.count("auth_user") == 30  # (nothing restored)
    filler.unlink()
    again = cli("rollback", "--restore-data", "--yes")  # what the lines say
    assert again.exit_code == 0, again.stderr
    line = next(line for line in again.lines if line.startswith("    ! kept before the restore"))
    kept = Path(line.split(" kept in ")[1])
    assert json.loads((kept / "public.auth_user.ndjson").read_text())["email"] == "moved@example.org"
    assert dirfinal.count("auth_user") == 0


def test_a_restore_that_fails_after_the_keeping_says_run_golive_again_before_any_restore_by_hand(
        dirfinal: Dir, cli) -> None:
    """Writes are allowed again once it fails: a restore by hand later throws away what users write meanwhile,
    unkept. golive's restore again keeps it; by hand only once `golive rollback --yes` has listed it."""
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # (the restore cannot drop auth_user's key)
        app.execute("CREATE TABLE directory_badge (id serial PRIMARY KEY, user_id int REFERENCES auth_user (id))")
    failed = cli("rollback", "--yes", "--restore-data")
    assert failed.exit_code == 4
    kept = next(line.split(" kept in ")[1] for line in failed.lines if line.startswith("    ! kept before the restore"))
    manual = [line.removeprefix("  by hand: ") for line in failed.stderr.splitlines() if line.startswith("  by hand: ")]
    assert manual[:2] == [
        "fix what the error names, then run `golive rollback --restore-data --yes` again (nothing was restored: it"
        f" keeps what users wrote since the sync, then restores; what they wrote up to this attempt is kept in {kept})",
        "only if golive cannot restore it: stop the new application, then `golive rollback --yes` (it leaves the data"
        " and lists what users wrote since the sync in <state_dir>/reconcile/; go on only if it printed no `could not"
        " list` line), then:"]
    assert manual[2].startswith("pg_restore --clean --if-exists --no-owner -f restore.sql ")


def test_open_sessions_golives_role_may_not_end_are_said_before_the_prompt_and_by_the_hold(
        pg_cluster: PostgresCluster) -> None:
    """The hold ended the open sessions it could and passed over the others in silence (an application
    connected as a superuser, or as another role): they wrote on through the restore, and what they wrote was lost
    while the plan had said "writes held off meanwhile"."""
    from golive.sync.backup import hold_refused, writes_held

    name, role, other = f"ask_{uuid.uuid4().hex[:8]}", f"app_{uuid.uuid4().hex[:6]}", f"web_{uuid.uuid4().hex[:6]}"
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN")
    pg_cluster.psql(f"CREATE ROLE {other} LOGIN")
    pg_cluster.psql(f'CREATE DATABASE "{name}" OWNER {role}')
    pg_cluster.psql(f"GRANT SET ON PARAMETER golive.restore_freeze TO {role}")
    with psycopg.connect(pg_cluster.url(name, user="postgres"), autocommit=True) as superuser, \
            psycopg.connect(pg_cluster.url(name, user=other), autocommit=True) as web:
        with psycopg.connect(pg_cluster.url(name, user=role)) as conn:
            said = hold_refused(conn)
        assert said == (f"open sessions of postgres, {other} on the target may not be ended by {role} (a superuser's,"
                        f" or another role's without `GRANT pg_signal_backend TO {role}`): they can write on until"
                        " they reconnect")
        with writes_held(pg_cluster.url(name, user=role)) as refused:
            assert refused == said
        assert superuser.execute("SELECT 1").fetchone() == (1,) and web.execute("SELECT 1").fetchone() == (1,)
        pg_cluster.psql(f"GRANT pg_signal_backend TO {role}")  # (a superuser's session it may still not end)
        with psycopg.connect(pg_cluster.url(name, user=role)) as conn:
            said = hold_refused(conn)
        assert said == (f"open sessions of postgres on the target may not be ended by {role} (a superuser's, or"
                        f" another role's without `GRANT pg_signal_backend TO {role}`): they can write on until they"
                        " reconnect")
        with writes_held(pg_cluster.url(name, user=role)) as refused:  # (another role's session was never even tried:
            assert refused == said                                   # its backend_type is hidden from the role)
        with pytest.raises(psycopg.OperationalError):
            web.execute("SELECT 1")
        assert superuser.execute("SELECT 1").fetchone() == (1,)
