"""The final sync for real: a SQLite source written by the Flask models, a PostgreSQL target migrated
by Django's own migrations, `golive sync`, and migrated users logging in through Django."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from golive.sandbox.postgres import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
DJANGO = REPO / "examples" / "dirfinal" / "django_site"
SECRET = "tgt-pw-8c1e55"


@dataclass
class Dir:
    project: Path
    source: Path
    target_url: str  # without password, for the test's own connections

    def sha(self) -> str:
        return hashlib.sha256(self.source.read_bytes()).hexdigest()

    def count(self, table: str) -> int:
        with psycopg.connect(self.target_url) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def source_sql(self, sql: str) -> None:
        db = sqlite3.connect(self.source)
        db.execute(sql)
        db.commit()
        db.close()


def django(dirfinal: Dir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dirfinal.target_url, "PYTHONPATH": str(DJANGO)}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=DJANGO, env=env, capture_output=True, text=True,
                          timeout=120)


def login(d: Dir, username: str, password: str) -> bool:
    code = ("from django.contrib.auth import authenticate; "
            f"print('OK' if authenticate(username={username!r}, password={password!r}) else 'NO')")
    out = django(d, "shell", "-c", code)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1] == "OK"  # (newer Django shells print a banner line first)


def test_sync_then_users_log_in_through_django(dirfinal: Dir, cli) -> None:
    before = dirfinal.sha()
    result = cli("sync", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.lines]
    assert [e["event"] for e in events].count("result") == 1
    assert (events[-1]["event"], events[-1]["ok"], events[-1]["status"]) == ("result", True, "succeeded")  # the last line
    tables = {t["table"]: t for t in events[-1]["tables"]}
    assert list(tables) == ["auth_user", "directory_entry", "directory_family", "directory_familymember",
                            "directory_score"]
    assert (tables["auth_user"]["read"], tables["auth_user"]["inserted"], tables["auth_user"]["verified"]) == (30, 30, True)
    assert all(t["verified"] and t["rejected"] == 0 for t in tables.values())
    assert dirfinal.count("directory_entry") == 60 and dirfinal.count("directory_score") == 90
    verify = cli("sync", "--verify-only")
    assert verify.exit_code == 0, verify.stderr
    assert [line.split()[-2:] for line in verify.lines[1:]] == [["digests", "yes"]] * 5  # the sync's record
    db = sqlite3.connect(dirfinal.source)
    pbkdf2_user = db.execute("SELECT username FROM user WHERE password_hash LIKE 'pbkdf2%' LIMIT 1").fetchone()[0]
    scrypt_user = db.execute("SELECT username FROM user WHERE password_hash LIKE 'scrypt%' AND active = 1"
                             " LIMIT 1").fetchone()[0]
    db.close()
    assert login(dirfinal, pbkdf2_user, f"pw-{pbkdf2_user}")
    assert login(dirfinal, scrypt_user, f"pw-{scrypt_user}")
    assert not login(dirfinal, pbkdf2_user, "wrong password")
    # Django re-hashes a password with its own iteration count at login: verification sees that change
    after_login = cli("sync", "--verify-only", "--json")
    assert after_login.exit_code == 1
    assert after_login.stderr.endswith("before the cutover, rows testers changed in the new site (a login upgrades a"
                                       " password hash) come back from the old one with `golive sync --yes --full"
                                       " --source-wins`\n")  # (what to do, also in runbooks/cutover.md)
    [failed] = map(json.loads, after_login.lines)  # one document: the error, carrying each table's verification
    assert (failed["ok"], failed["exit_code"], failed["error"]["type"]) == (False, 1, "CheckFailed")
    users = failed["error"]["tables"][0]
    assert (users["table"], users["read"], users["verified"]) == ("auth_user", 30, False)
    assert users["checked"] == "digests, 1 range(s) row by row" and len(users["mismatched_keys"]) == 2
    [deep] = map(json.loads, cli("sync", "--verify-only", "--deep", "--json").lines)
    deep = deep["error"]["tables"][0]
    assert (deep["checked"], deep["mismatched_keys"]) == ("every row", users["mismatched_keys"])
    # a full sync now would put the Werkzeug-derived hashes back over the ones Django just wrote: it stops
    resync = cli("sync", "--yes", "--full")
    assert resync.exit_code == 1
    assert ("2 row(s) changed in the new database since golive wrote them would be overwritten: table auth_user, keys"
            f" {', '.join(users['mismatched_keys'])}; nothing was written") in resync.stderr
    healed = cli("sync", "--yes", "--full", "--source-wins")  # the runbook's way: the old site is the truth
    assert healed.exit_code == 0, healed.stderr
    assert cli("sync", "--verify-only").exit_code == 0
    assert login(dirfinal, pbkdf2_user, f"pw-{pbkdf2_user}")  # (the old site's hash logs in as well)
    with psycopg.connect(dirfinal.target_url) as conn:
        email = conn.execute("SELECT email FROM auth_user WHERE id = 1").fetchone()[0]
        assert email == email.lower() and email.endswith("@example.org")
        created = conn.execute("SELECT date_joined FROM auth_user WHERE id = 1").fetchone()[0]
        assert created.isoformat() == "2024-01-02T09:00:00+00:00"  # naive source read as UTC
    assert dirfinal.sha() == before  # the source was never written
    assert SECRET not in result.stdout + result.stderr + cli("history", "--json").stdout


def test_second_sync_moves_only_changes_and_keeps_rows_made_in_the_new_app(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url) as conn:  # a user of the new site scores a point
        new_id = conn.execute("INSERT INTO directory_score (user_id, points, reason, created_at)"
                              " VALUES (1, 5, 'new site', now()) RETURNING id").fetchone()[0]
    assert new_id == 91  # the sequence was moved past the synced ids
    dirfinal.source_sql("INSERT INTO score (id, user_id, points, reason, created_at)"
                        " VALUES (500, 2, 7, 'late', '2024-03-01 10:00:00')")
    dirfinal.source_sql("UPDATE entry SET phone = '+1-555-0000', updated_at = '2024-06-01 00:00:00.000000' WHERE id = 3")
    dirfinal.source_sql("DELETE FROM score WHERE id = 4")
    before = dirfinal.sha()
    second = cli("sync", "--yes", "--json")
    assert second.exit_code == 0, second.stderr
    tables = {t["table"]: t for t in json.loads(second.lines[-1])["tables"]}
    # the changed row, and the newest row of the last sync again (the overlap window re-reads it)
    assert (tables["directory_entry"]["mode"], tables["directory_entry"]["read"]) == ("incremental", 2)
    assert (tables["directory_entry"]["updated"], tables["directory_entry"]["unchanged"]) == (1, 59)
    assert (tables["directory_score"]["mode"], tables["directory_score"]["inserted"]) == ("full", 1)  # no `changed`
    assert tables["directory_score"]["deleted"] == 1
    assert (tables["auth_user"]["read"], tables["auth_user"]["unchanged"]) == (1, 30)  # only the overlap row
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT reason FROM directory_score WHERE id = %s", (new_id,)).fetchone() == ("new site",)
        assert conn.execute("SELECT count(*) FROM directory_score WHERE id = 4").fetchone() == (0,)
        assert conn.execute("SELECT phone FROM directory_entry WHERE id = 3").fetchone() == ("+1-555-0000",)
    # a change that did not move the change-tracking column escapes an incremental sync, not verification
    assert dirfinal.sha() == before
    dirfinal.source_sql("UPDATE entry SET phone = '+1-555-9999' WHERE id = 5")
    before = dirfinal.sha()
    assert cli("sync", "--yes").exit_code == 0
    missed = cli("sync", "--verify-only")
    assert missed.exit_code == 1 and missed.lines[2].split() == ["directory_entry", "60", "digests,", "1", "range(s)", "row",
                                                                 "by", "row", "no:", "5"]
    assert cli("sync", "--verify-only", "--deep").lines[2].split() == ["directory_entry", "60", "every", "row", "no:", "5"]
    full = cli("sync", "--yes", "--full", "--json")
    entry = next(t for t in json.loads(full.lines[-1])["tables"] if t["table"] == "directory_entry")
    assert (entry["mode"], entry["read"], entry["updated"]) == ("full", 60, 1)
    assert cli("sync", "--verify-only").exit_code == 0
    assert dirfinal.sha() == before


def test_a_rejected_row_stops_the_sync_before_anything_is_written(dirfinal: Dir, cli) -> None:
    dirfinal.source_sql("UPDATE user SET active = 'maybe' WHERE id = 7")
    result = cli("sync", "--yes")
    assert result.exit_code == 1
    assert ("1 row(s) rejected (max 0); first: table auth_user, key id=7, column is_active: 'maybe' is not a boolean"
            in result.stderr)
    assert dirfinal.count("auth_user") == 0
    rejects = sorted((dirfinal.project / ".golive" / "rejects").glob("*.ndjson"))
    assert json.loads(rejects[-1].read_text().splitlines()[0])["key"] == "id=7"
    # (the rejected rows' values are users' data: the owner's alone, as everything golive keeps aside)
    assert (rejects[-1].stat().st_mode & 0o777, rejects[-1].parent.stat().st_mode & 0o777) == (0o600, 0o700)
    # allowing the reject is not enough: user 7 owns entries, whose foreign keys would dangle
    allowed = cli("sync", "--yes", "--max-rejects", "1")
    assert allowed.exit_code == 1
    assert allowed.stderr.startswith("error: step sync all tables failed: 2 pre-check problem(s); first: table"
                                     " directory_entry, column owner_id: rows with key 6, 36 point at auth_user rows"
                                     " that do not exist (orphans) (all listed below) — ")
    assert allowed.stderr.splitlines()[1:] == [  # every problem, not the first alone (each a sync attempt to find)
        "  - table directory_entry, column owner_id: rows with key 6, 36 point at auth_user rows that do not exist"
        " (orphans)",
        "  - table directory_score, column user_id: rows with key 24, 44 point at auth_user rows that do not exist"
        " (orphans)"]
    run = json.loads(cli("history", "--json").stdout)["runs"][0]["id"]
    shown = cli("history", run)
    assert "  - [1] table directory_score, column user_id: rows with key 24, 44 point at auth_user rows that do not" \
           " exist (orphans)" in shown.stdout.splitlines(), shown.stdout
    failed = json.loads(cli("sync", "--yes", "--max-rejects", "1", "--json").stdout.splitlines()[-1])
    assert failed["error"]["details"] == [line.removeprefix("  - ") for line in allowed.stderr.splitlines()[1:]]
    assert dirfinal.count("auth_user") == 0  # one transaction: nothing of it was committed
    dirfinal.source_sql("UPDATE user SET active = 0 WHERE id = 7")
    assert cli("sync", "--yes").exit_code == 0
    assert dirfinal.count("auth_user") == 30


def test_sigkill_mid_copy_leaves_the_target_as_it_was(dirfinal: Dir, cli) -> None:
    env = {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "sync.run:copy:kill"}
    proc = subprocess.run([sys.executable, "-m", "golive", "sync", "--yes"], cwd=dirfinal.project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9
    assert dirfinal.count("auth_user") == 0 and dirfinal.count("directory_score") == 0
    assert cli("rollback", "--yes").exit_code == 0
    assert cli("sync", "--yes").exit_code == 0
    assert dirfinal.count("auth_user") == 30


def test_rollback_restore_data_puts_the_backup_back(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    assert dirfinal.count("auth_user") == 30
    plain = cli("-v", "rollback", "--yes", "--dry-run")
    assert plain.exit_code == 0
    backup = next((dirfinal.project / ".golive" / "backups").glob("target-*.dump")).name
    assert plain.lines[-1] == ("      target database: unchanged (left as it is; no row written since the sync;"
                               f" `golive rollback --restore-data` would restore the backup {backup})")  # nothing deleted
    planned = cli("rollback", "--dry-run", "--restore-data")
    assert planned.lines[-1].startswith(f"      target database: as it is now; no row written since the sync -> the backup"
                                        f" {backup} (writes held off meanwhile, its sessions ended; what it replaces is"
                                        " kept first in "), planned.stdout
    restored = cli("-v", "rollback", "--yes", "--restore-data")
    assert restored.exit_code == 0, restored.stderr
    assert any(line.startswith("    undo: restore the target from ") for line in restored.lines)
    assert dirfinal.count("auth_user") == 0 and dirfinal.count("directory_entry") == 0
    assert SECRET not in restored.stdout + restored.stderr
    again = cli("sync", "--yes", "--json")  # the sync state went with the data: this one is full again
    assert again.exit_code == 0, again.stderr
    users = next(t for t in json.loads(again.lines[-1])["tables"] if t["table"] == "auth_user")
    assert (users["mode"], users["inserted"]) == ("full", 30)


def test_restore_data_first_keeps_what_users_wrote_since_the_backup(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # the new application, after the cutover
        app.execute("UPDATE auth_user SET email = 'moved@example.org' WHERE id = 3")
        new_id = app.execute("INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,"
                             " is_staff, is_active, date_joined) VALUES ('!', false, 'newcomer', '', '',"
                             " 'new@example.org', false, true, now()) RETURNING id").fetchone()[0]
        app.execute("INSERT INTO auth_group (name) VALUES ('editors')")  # a table golive does not sync
        score = app.execute("DELETE FROM directory_score WHERE id = (SELECT min(id) FROM directory_score)"
                            " RETURNING id").fetchone()[0]
    planned = cli("rollback", "--dry-run", "--restore-data")  # the plan says how much the rollback will keep
    assert planned.lines[-1].startswith("      target database: as it is now; 3 row(s) written since the sync"
                                        " (public.auth_group 1, public.auth_user 2), kept first -> the backup "), planned.stdout
    result = cli("rollback", "--yes", "--restore-data")
    assert result.exit_code == 0, result.stderr
    kept = next(Path(line.split(" kept in ")[1]) for line in result.lines if line.startswith("    ! kept before the restore"))
    assert ("! kept before the restore: 3 row(s) written since the backup (public.auth_group 1, public.auth_user 2);"
            " 1 synced row(s) deleted since (directory_score 1)") in result.stdout
    users = [json.loads(line) for line in (kept / "public.auth_user.ndjson").read_text().splitlines()]
    assert sorted((u["id"], u["email"]) for u in users) == [(3, "moved@example.org"), (new_id, "new@example.org")]
    assert [json.loads(line)["name"] for line in (kept / "public.auth_group.ndjson").read_text().splitlines()] == ["editors"]
    assert [json.loads(line) for line in (kept / "deleted.ndjson").read_text().splitlines()] == [
        {"table": "directory_score", "key": str(score)}]
    assert sorted(p.name for p in kept.iterdir()) == ["before-restore.dump", "deleted.ndjson", "public.auth_group.ndjson",
                                                      "public.auth_user.ndjson", "summary.json"]
    assert {oct(p.stat().st_mode & 0o777) for p in kept.iterdir()} == {"0o600"}
    summary = json.loads((kept / "summary.json").read_text())
    assert summary["sync_rows_included"] is False and summary["written"] == {"public.auth_group": 1, "public.auth_user": 2}
    assert dirfinal.count("auth_user") == 0 and dirfinal.count("auth_group") == 0  # then the backup was restored
    assert SECRET not in result.stdout + result.stderr + (kept / "summary.json").read_text()


def test_a_plain_rollback_says_its_sync_can_no_longer_be_restored_and_what_it_could_not_list(
        dirfinal: Dir, cli, pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its undo said "`golive rollback --restore-data` restores the backup" after the sync was undone: run then,
    that undid the run before (the night's `freeze on`). And a target it could not reach to list the rows written
    since was a notice a script reading the result never saw (exit 0, ok)."""
    assert cli("sync", "--yes").exit_code == 0
    backup = next((dirfinal.project / ".golive" / "backups").glob("target-*.dump"))
    monkeypatch.setenv("GOLIVE_TEST_TARGET_URL", f"postgresql://postgres:{SECRET}@127.0.0.1:1/nothing")
    rolled = cli("-v", "rollback", "--yes", "--json")
    assert rolled.exit_code == 0, rolled.stderr
    events = [json.loads(line) for line in rolled.lines]
    assert {"phase": "undo", "message": f"the new database is left as it is; the backup taken before the sync stays"
            f" in {backup}, but with this sync undone `golive rollback --restore-data` no longer restores it"}.items() \
        <= next(e for e in events if e["event"] == "log" and e["phase"] == "undo").items()
    [notice] = events[-1]["notices"]
    assert notice.startswith("could not list the rows written to the new database since the sync (") and \
        notice.endswith("); they are still there"), notice
    assert SECRET not in rolled.stdout + rolled.stderr


def test_a_plain_rollback_lists_what_users_wrote_since_the_sync_and_leaves_it(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    assert cli("rollback", "--yes").exit_code == 0  # nothing written since: nothing to list, no folder
    assert not (dirfinal.project / ".golive" / "reconcile").exists() or \
        list((dirfinal.project / ".golive" / "reconcile").iterdir()) == []
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:
        app.execute("UPDATE auth_user SET email = 'moved@example.org' WHERE id = 4")
    result = cli("rollback", "--yes")
    assert result.exit_code == 0, result.stderr
    line = next(line for line in result.lines if line.startswith("    ! written to the new database since the sync"))
    assert ", to reconcile with the old application (the new database is left as it is): 1 row(s) written since the" \
           " backup (public.auth_user 1) kept in " in line
    kept = Path(line.split(" kept in ")[1])
    assert sorted(p.name for p in kept.iterdir()) == ["public.auth_user.ndjson", "summary.json"]  # no dump: no restore
    assert json.loads((kept / "public.auth_user.ndjson").read_text())["email"] == "moved@example.org"
    assert dirfinal.count("auth_user") == 30  # left as it is
    synced = json.loads(cli("history", "--json").stdout)["runs"][1]  # (the newest is the rollback)
    told = [line for line in cli("history", synced["id"]).lines if line.startswith("  ! rollback ")]
    assert len(told) == 1 and told[0].endswith(f"[1] {line.removeprefix('    ! ')}"), told


def test_a_plain_rollback_behind_a_migrations_lock_still_rolls_back_saying_what_it_could_not_list(
        dirfinal: Dir, cli) -> None:
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace("backup_keep = 3", "backup_keep = 3\nlock_timeout = 1"))
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url) as migration:
        migration.execute("LOCK TABLE auth_group IN ACCESS EXCLUSIVE MODE")
        result = cli("rollback", "--yes")
    assert result.exit_code == 0, result.stderr
    assert ("target database: unchanged (left as it is; rows written since the sync not counted (canceling statement"
            " due to lock timeout);") in result.stdout
    assert ("    ! could not list the rows written to the new database since the sync (canceling statement due to lock"
            " timeout); they are still there") in result.lines
    assert dirfinal.count("auth_user") == 30


def test_restore_data_holds_writes_off_ends_the_apps_sessions_and_allows_writes_after(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    app = psycopg.connect(dirfinal.target_url, application_name="django-web")  # mid-transaction: holds its lock
    app.execute("SELECT count(*) FROM auth_user")
    try:
        restored = cli("-v", "rollback", "--yes", "--restore-data")
        assert restored.exit_code == 0, restored.stderr
        assert "    undo: writes to the target held off: new sessions read-only, open ones ended" in restored.lines
        with pytest.raises(psycopg.OperationalError):  # its session was ended (its transaction wrote nothing)
            app.execute("SELECT 1")
    finally:
        app.close()
    assert dirfinal.count("auth_user") == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as later:  # writes allowed again, setting gone
        later.execute("INSERT INTO auth_group (name) VALUES ('after')")
        assert later.execute("SELECT count(*) FROM pg_db_role_setting r JOIN pg_database d ON d.oid = r.setdatabase"
                             " WHERE d.datname = current_database()").fetchone()[0] == 0


@pytest.mark.parametrize("restore", [True, False], ids=["finished", "given-up"])
def test_an_interrupted_data_rollback_leaves_writes_held_and_the_next_rollback_finishes_it(dirfinal: Dir, cli,
                                                                                          restore: bool) -> None:
    assert cli("sync", "--yes").exit_code == 0
    env = {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "sync.run:restore:kill"}
    proc = subprocess.run([sys.executable, "-m", "golive", "rollback", "--yes", "--restore-data"], cwd=dirfinal.project,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        app.execute("INSERT INTO auth_group (name) VALUES ('while held')")  # held off: nothing written is lost
    assert "writes=held (a data rollback was interrupted: `golive rollback --restore-data` finishes it)" in \
        next(line for line in cli("status").lines if line.startswith("sync:"))
    for args in (("sync", "--yes"), ("sync", "--verify-only")):
        refused = cli(*args)
        assert refused.exit_code == 1, refused.stderr
        assert "the target is read-only: a data rollback (`golive rollback --restore-data`) was interrupted" in \
            refused.stderr
    finished = cli("rollback", "--yes", *(["--restore-data"] if restore else []))
    assert finished.exit_code == 0, finished.stderr
    assert dirfinal.count("auth_user") == (0 if restore else 30)  # given up: the data stays as it is
    assert restore or ("    ! an interrupted data rollback had left the target read-only: writes are allowed again"
                       " (its data was not restored)") in finished.lines
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:
        app.execute("INSERT INTO auth_group (name) VALUES ('after')")
    assert "writes=" not in next(line for line in cli("status").lines if line.startswith("sync:"))


def test_an_interrupted_data_rollback_says_to_finish_it_with_restore_data(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    env = {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "sync.run:restore:pause",
           "GOLIVE_FAULT_MARKER": str(dirfinal.project / "paused")}
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--yes", "--restore-data"], cwd=dirfinal.project,
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (dirfinal.project / "paused").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C at the restore
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    # a plain `golive rollback` (what it said before) finishes it without restoring the data, exit 0
    assert err.rstrip().endswith("— run `golive rollback --restore-data --yes` again to finish it"), err
    finished = cli("rollback", "--yes", "--restore-data")
    assert finished.exit_code == 0, finished.stderr
    assert dirfinal.count("auth_user") == 0


def test_a_backup_that_waits_on_a_migrations_lock_stops_leaving_no_partial_dump(dirfinal: Dir, cli) -> None:
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace("backup_keep = 3", "backup_keep = 3\nlock_timeout = 1"))
    with psycopg.connect(dirfinal.target_url) as migration:  # a migration mid-way: the table locked
        migration.execute("LOCK TABLE auth_group IN ACCESS EXCLUSIVE MODE")
        stuck = cli("sync", "--yes")
    assert stuck.exit_code == 1
    assert ("pg_dump of the target waited for a lock another session holds on public.auth_group (a migration"
            " running?) and stopped") in stuck.stderr
    assert list((dirfinal.project / ".golive" / "backups").iterdir()) == []  # no partial dump a restore could pick
    assert dirfinal.count("auth_user") == 0
    assert cli("sync", "--yes").exit_code == 0


def test_a_sync_that_waits_on_the_new_apps_row_lock_stops_with_nothing_written(dirfinal: Dir, cli) -> None:
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace("backup_keep = 3", "backup_keep = 3\nlock_timeout = 1"))
    assert cli("sync", "--yes").exit_code == 0
    dirfinal.source_sql("UPDATE user SET email = 'renamed@example.org', updated_at = '2031-01-01 00:00:00' WHERE id = 3")
    with psycopg.connect(dirfinal.target_url) as app:  # the new application, mid-transaction on that user
        app.execute("SELECT 1 FROM auth_user WHERE id = 3 FOR UPDATE")
        stuck = cli("sync", "--yes")
    assert stuck.exit_code == 1
    assert ("the sync of table auth_user waited 1 s for a lock another session holds on the target (the new"
            " application writing, or a migration) and stopped; nothing was written") in stuck.stderr
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT email FROM auth_user WHERE id = 3").fetchone()[0] != "renamed@example.org"
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT email FROM auth_user WHERE id = 3").fetchone()[0] == "renamed@example.org"


def test_a_source_the_old_app_keeps_locked_is_one_line_not_a_traceback(dirfinal: Dir, cli,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("golive.sync.source.BUSY_SECONDS", 0.2)
    said = f"error: the source database {dirfinal.source} stayed locked by another process for 0.2 s (the old application"

    def locked(*args: str) -> None:
        writer = sqlite3.connect(dirfinal.source, isolation_level=None)  # the old app, mid-write
        writer.execute("BEGIN EXCLUSIVE")
        try:
            result = cli(*args)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert result.exit_code == 1 and result.stderr.startswith(said), result.stderr

    locked("sync", "--dry-run")
    locked("sync", "--yes")
    assert dirfinal.count("auth_user") == 0
    assert cli("sync", "--yes").exit_code == 0
    locked("sync", "--verify-only")


@pytest.mark.parametrize("source, said, code", [
    ("sqlite:///{tmp}/missing.db", "error: source database {tmp}/missing.db does not exist — check [source].url", 2),
    ("sqlite:///{tmp}/notes.txt", "error: source database {tmp}/notes.txt cannot be read: file is not a database", 1),
    (f"postgresql://flask:{SECRET}@127.0.0.1:1/old", "error: cannot connect to the source database"
                                                     " postgresql://flask:***@127.0.0.1:1/old: connection failed", 1),
])
def test_a_source_that_cannot_be_read_is_one_line_naming_it(dirfinal: Dir, cli, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, source: str, said: str,
                                                             code: int) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace(f'url = "sqlite:///{dirfinal.source}"', 'url = "env:GOLIVE_TEST_SOURCE"'))
    monkeypatch.setenv("GOLIVE_TEST_SOURCE", source.format(tmp=tmp_path))
    for args in (("sync", "--dry-run"), ("sync", "--yes"), ("sync", "--verify-only")):
        result = cli(*args)
        assert result.exit_code == code and result.stderr.startswith(said.format(tmp=tmp_path)), (args, result.stderr)
        assert "internal error" not in result.stderr and SECRET not in result.stderr


def test_restore_data_blocked_by_a_table_made_since_names_it_and_changes_no_data(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # a migration after the cutover
        app.execute("CREATE TABLE directory_badge (id serial PRIMARY KEY, user_id int REFERENCES auth_user (id))")
    failed = cli("rollback", "--yes", "--restore-data")
    assert failed.exit_code == 4
    assert ("failed: ERROR:  cannot drop constraint auth_user_pkey on table public.auth_user because other objects"
            " depend on it — its one transaction was rolled back: the target is as it was") in failed.stderr
    backup = next((dirfinal.project / ".golive" / "backups").glob("target-*.dump"))
    assert f"  by hand: pg_restore --clean --if-exists --no-owner -f restore.sql {backup}  (then, only if it" \
           " succeeded:)" in failed.stderr
    assert ("  by hand: psql -X -v ON_ERROR_STOP=1 --single-transaction -c 'DROP SCHEMA IF EXISTS golive CASCADE'"
            " -f restore.sql -d <target>") in failed.stderr
    assert dirfinal.count("auth_user") == 30
    again = cli("sync", "--yes", "--json")  # golive's state went back with the data: the next sync is incremental
    assert again.exit_code == 0, again.stderr
    users = next(t for t in json.loads(again.lines[-1])["tables"] if t["table"] == "auth_user")
    assert (users["mode"], users["inserted"], users["verified"]) == ("incremental", 0, True)


def test_a_damaged_backup_is_found_before_the_target_is_touched(dirfinal: Dir, cli) -> None:
    dirfinal.source_sql("UPDATE entry SET phone = '+1-555-0101' WHERE id = 1")  # (the backup of a synced target)
    assert cli("sync", "--yes").exit_code == 0
    assert cli("sync", "--yes", "--full").exit_code == 0
    backup = max((dirfinal.project / ".golive" / "backups").glob("target-*.dump"))
    backup.write_bytes(backup.read_bytes()[: backup.stat().st_size * 2 // 3])  # cut short (a full disk, a bad copy)
    failed = cli("rollback", "--yes", "--restore-data")
    assert failed.exit_code == 4
    assert f"reading the backup {backup} failed: pg_restore: error: " in failed.stderr
    assert dirfinal.count("auth_user") == 30 and dirfinal.count("directory_score") == 90  # untouched
    assert not list(backup.parent.glob(".restore-*"))  # (its script went too)


def test_failed_attempts_never_prune_the_backup_a_data_rollback_needs(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    backups = dirfinal.project / ".golive" / "backups"
    (needed,) = backups.glob("target-*.dump")
    (backups / "target-20250101-000000-000000.dump.partial").write_bytes(b"PGDMP")  # (what a killed pg_dump leaves)
    dirfinal.source_sql("UPDATE user SET active = 'maybe' WHERE id = 7")
    for _ in range(4):  # more failed attempts than [target].backup_keep (3): each dumped the target first
        assert cli("sync", "--yes", "--full").exit_code == 1
    left = sorted(backups.iterdir())
    assert needed in left and len(left) == 3 + 1  # the newest 3, and the one the sync's undo restores
    assert not list(backups.glob("*.partial"))
    assert oct(backups.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in left} == {"0o600"}  # (every password hash of the site)
    status = json.loads(cli("status", "--json").stdout)["parts"]["sync"]
    assert status["backup"] == needed.name  # not the newest file: a failed attempt's dump restores nothing
    restored = cli("rollback", "--yes", "--restore-data")
    assert restored.exit_code == 0, restored.stderr
    assert dirfinal.count("auth_user") == 0
    assert json.loads(cli("status", "--json").stdout)["parts"]["sync"]["backup"] == "none"


def test_status_shows_the_last_sync_and_the_backup_a_data_rollback_would_restore(dirfinal: Dir, cli) -> None:
    before = cli("status", "--json")
    assert before.exit_code == 0, before.stderr
    assert json.loads(before.stdout)["parts"]["sync"] == {"last": "never", "backup": "none"}
    assert cli("sync", "--yes").exit_code == 0
    after = cli("status")
    assert after.exit_code == 0, after.stderr
    line = next(line for line in after.lines if line.startswith("sync:"))
    backup = next((dirfinal.project / ".golive" / "backups").glob("target-*.dump")).name
    rows = sum(dirfinal.count(t) for t in ("auth_user", "directory_entry", "directory_family", "directory_familymember",
                                           "directory_score"))
    assert line.endswith(f", mode=full, tables=5, synced_rows={rows}, backup={backup}"), line
    assert SECRET not in after.stdout + after.stderr


def test_the_plan_says_what_was_synced_last_and_whether_this_sync_is_incremental(dirfinal: Dir, cli,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first = cli("sync", "--dry-run")
    assert first.exit_code == 0, first.stderr
    assert "      table user -> auth_user: create 30 source rows, full, verified" in first.lines
    assert cli("sync", "--yes").exit_code == 0
    second = cli("sync", "--dry-run")
    user = next(line for line in second.lines if line.startswith("      table user -> auth_user: "))
    assert user.startswith("      table user -> auth_user: 30 rows synced (full, ") and \
        user.endswith(" UTC) -> 30 source rows, incremental, verified"), user
    assert cli("sync", "--dry-run", "--full").lines[2].endswith(" -> 30 source rows, full, verified")
    monkeypatch.setenv("GOLIVE_TEST_TARGET_URL", f"postgresql://golive:{SECRET}@127.0.0.1:1/nowhere")
    down = cli("sync", "--yes")  # the target unreachable: said before any prompt, and no run is started
    assert (down.exit_code, down.stdout) == (1, "")
    assert down.stderr.startswith("error: cannot connect to the target database postgresql://golive:***@127.0.0.1:1/")
    assert SECRET not in down.stderr


def test_emails_equal_but_for_case_are_caught_before_commit(dirfinal: Dir, cli) -> None:
    dirfinal.source_sql("UPDATE user SET email = upper((SELECT email FROM user WHERE id = 2)) WHERE id = 5")
    result = cli("sync", "--yes")
    assert result.exit_code == 1
    db = sqlite3.connect(dirfinal.source)
    email = db.execute("SELECT lower(email) FROM user WHERE id = 2").fetchone()[0]
    assert (f"first: table auth_user, column email: the same value once transformed: 2={email}; 5={email}"
            in result.stderr)
    assert dirfinal.count("auth_user") == 0


def test_nul_bytes_and_unknown_hashes_are_rejected_naming_table_key_and_column(dirfinal: Dir, cli) -> None:
    dirfinal.source_sql("UPDATE entry SET name = 'bad' || char(0) || 'name' WHERE id = 9")
    dirfinal.source_sql("UPDATE user SET password_hash = 'md5$abc$def' WHERE id = 4")
    dirfinal.source_sql("UPDATE entry SET phone = CAST(X'2B31FF35' AS TEXT) WHERE id = 12")  # not UTF-8
    result = cli("sync", "--yes")
    assert result.exit_code == 1
    assert ("3 row(s) rejected (max 0); first: table auth_user, key id=4, column password: password hash format"
            " 'unknown:md5' has no Django equivalent" in result.stderr)
    rejects = sorted((dirfinal.project / ".golive" / "rejects").glob("*.ndjson"))[-1].read_text().splitlines()
    assert [json.loads(line) for line in rejects[1:]] == [
        {"table": "directory_entry", "key": "id=9", "column": "name", "reason": "NUL byte in text (PostgreSQL cannot store it)"},
        {"table": "directory_entry", "key": "id=12", "column": "phone",
         "reason": "invalid UTF-8 in text (PostgreSQL cannot store it)"}]
    assert dirfinal.count("directory_entry") == 0


def test_media_copied_with_manifest_incrementally_and_referenced_files_checked(dirfinal: Dir, cli, tmp_path) -> None:
    photos, published = tmp_path / "flask-static", tmp_path / "django-media"
    for i in range(1, 61, 2):  # the seed gives odd entries a photo
        (photos / "photos").mkdir(parents=True, exist_ok=True)
        (photos / "photos" / f"{i}.jpg").write_bytes(bytes([i]) * (100 + i))
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text() + f'\n[[sync.media]]\nfrom = "{tmp_path}/no-such-folder"\nto = "{published}"\n')
    for args in (["--dry-run"], ["--yes"]):  # said by the plan: no run, no backup
        wrong = cli("sync", *args)
        assert (wrong.exit_code, wrong.stderr) == (2, f"error: [[sync.media]] from {tmp_path}/no-such-folder does not"
                                                      " exist — set from to the old application's media folder\n")
    assert cli("history").stdout.startswith("no runs")
    config.write_text(config.read_text().replace(f"{tmp_path}/no-such-folder", str(photos)))
    planned = cli("sync", "--dry-run")
    assert planned.lines[-1] == f"      media {photos} -> {published}: create 30 file(s), 30 new or changed, verified"
    first = cli("sync", "--yes", "--json")
    assert first.exit_code == 0, first.stderr
    media = json.loads(first.lines[-1])["media"]
    assert [(m["files"], m["copied"], m["unchanged"]) for m in media] == [(30, 30, 0)]
    assert (published / "photos" / "7.jpg").read_bytes() == bytes([7]) * 107
    assert json.loads((dirfinal.project / ".golive" / "media-manifest-0.json").read_text())["photos/7.jpg"]["size"] == 107
    (photos / "photos" / "9.jpg").write_bytes(b"retouched")
    planned = cli("sync", "--dry-run")
    assert planned.lines[-1] == f"      media {photos} -> {published}: copied before -> 30 file(s), 1 new or changed, verified"
    second = json.loads(cli("sync", "--yes", "--json").lines[-1])["media"]
    assert [(m["copied"], m["unchanged"], m["bytes_copied"]) for m in second] == [(1, 29, 9)]
    # a photo replaced by one of the same size and mtime (cp -p, rsync -a): --verify-only names it (it checked no
    # media at all), and a full sync copies it
    seven = photos / "photos" / "7.jpg"
    stamp = seven.stat()
    seven.write_bytes(bytes([8]) * 107)
    os.utime(seven, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    for deep in ([], ["--deep"]):
        differs = cli("sync", "--verify-only", *deep)
        assert differs.exit_code == 1, differs.stdout + differs.stderr
        assert "no: photos/7.jpg (changed in from since the last sync)" in differs.stdout, differs.stdout
        doc = json.loads(cli("sync", "--verify-only", *deep, "--json").stdout)
        assert [m["differ"] for m in doc["error"]["media"]] == [["photos/7.jpg (changed in from since the last sync)"]]
    assert cli("sync", "--yes", "--full").exit_code == 0
    assert (published / "photos" / "7.jpg").read_bytes() == bytes([8]) * 107
    verified = json.loads(cli("sync", "--verify-only", "--deep", "--json").stdout)
    assert [(m["files"], m["verified"]) for m in verified["media"]] == [(30, True)]
    (photos / "photos" / "11.jpg").unlink()
    missing = cli("sync", "--yes", "--full")
    assert missing.exit_code == 1
    assert ("first: table directory_entry, key id=11, column photo: file photos/11.jpg is in none of the media folders"
            in missing.stderr)


@pytest.mark.parametrize("changes", [1, 99])
def test_a_media_file_that_changes_while_copied_is_copied_again_never_put_in_place_unverified(
        dirfinal: Dir, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: int) -> None:
    from golive.sync import media

    photos, published = tmp_path / "flask-static", tmp_path / "django-media"
    (photos / "photos").mkdir(parents=True)
    for i in range(1, 61, 2):
        (photos / "photos" / f"{i}.jpg").write_bytes(bytes([i]) * 100)
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text() + f'\n[[sync.media]]\nfrom = "{photos}"\nto = "{published}"\n')
    growing, real, copies = photos / "photos" / "9.jpg", media._copy_once, []

    def written_meanwhile(src: Path, tmp: Path) -> str:  # the old application appends to 9.jpg during the copy
        digest = real(src, tmp)
        if src == growing and len(copies) < changes:
            copies.append(tmp.read_bytes())
            with src.open("ab") as fh:
                fh.write(b"more")
            os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**6))
        return digest

    monkeypatch.setattr(media, "_copy_once", written_meanwhile)
    monkeypatch.setattr(media.time, "sleep", lambda s: None)
    result = cli("sync", "--yes")
    leftovers = sorted(p.name for p in (published / "photos").iterdir())
    assert not [name for name in leftovers if name.endswith(".golive-tmp")]
    if changes == 1:  # copied again, as it is now
        assert result.exit_code == 0, result.stderr
        assert (published / "photos" / "9.jpg").read_bytes() == growing.read_bytes() == bytes([9]) * 100 + b"more"
        return
    assert result.exit_code == 1
    assert (f"error: step sync all tables failed: media file {growing} changed while it was copied, 3 times; it was not"
            f" put in {published} — stop what writes to it (`golive freeze on` for the old application), then run the"
            " sync again") in result.stderr
    assert "9.jpg" not in leftovers and len(copies) == 3
    assert dirfinal.count("auth_user") == 0


def test_a_source_row_never_overwrites_a_row_made_in_the_new_app(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url) as conn:
        conn.execute("INSERT INTO directory_score (id, user_id, points, reason, created_at)"
                     " VALUES (700, 1, 3, 'new site', now())")
    dirfinal.source_sql("INSERT INTO score (id, user_id, points, reason, created_at)"
                        " VALUES (700, 2, 9, 'old site', '2024-03-01 10:00:00')")
    plan = cli("sync", "--dry-run")  # said before the freeze window, not found in it
    assert plan.exit_code == 0, plan.stderr
    assert "rows made there hold keys the source has too (id 700): the sync stops on them — delete them there or" \
           " give them other keys first" in " ".join(plan.stdout.split()), plan.stdout
    result = cli("sync", "--yes")
    assert result.exit_code == 1
    assert ("first: table directory_score: rows with key 700 exist in the target but were not synced by golive"
            " (made in the new application?); golive never overwrites them: delete them there or give them other keys"
            " (rows made in the new database after a rehearsal take the keys the old application hands out next)"
            in result.stderr)
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT reason FROM directory_score WHERE id = 700").fetchone() == ("new site",)


def test_a_row_rejected_under_max_rejects_is_read_again_by_the_next_incremental_sync(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    dirfinal.source_sql("UPDATE user SET active = 'maybe', updated_at = '2025-01-01 00:00:00.000000' WHERE id = 7")
    dirfinal.source_sql("UPDATE user SET email = 'later8@example.org', updated_at = '2025-06-01 00:00:00.000000'"
                        " WHERE id = 8")
    allowed = cli("sync", "--yes", "--max-rejects", "1", "--json")
    assert allowed.exit_code == 0, allowed.stderr
    users = next(t for t in json.loads(allowed.lines[-1])["tables"] if t["table"] == "auth_user")
    assert (users["rejected"], users["updated"]) == (1, 1)
    # fixed by hand, without moving updated_at: the held-back watermark still reaches it
    dirfinal.source_sql("UPDATE user SET active = 1, email = 'fixed7@example.org' WHERE id = 7")
    again = cli("sync", "--yes", "--json")
    assert again.exit_code == 0, again.stderr
    users = next(t for t in json.loads(again.lines[-1])["tables"] if t["table"] == "auth_user")
    assert (users["mode"], users["rejected"], users["updated"]) == ("incremental", 0, 1)
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT email FROM auth_user WHERE id = 7").fetchone() == ("fixed7@example.org",)


def test_a_source_schema_that_drifted_from_the_mapping_is_refused_at_the_plan(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0  # the rehearsal
    dirfinal.source_sql("ALTER TABLE entry RENAME COLUMN phone TO phone_number")  # the old app migrated since
    said = ("error: mapping: source table entry has no column phone (it has: id, name, phone_number, email, photo,"
            " approved, owner_id, created_at, updated_at) — fix [[table]] directory_entry in mapping.toml: the old"
            " application's schema differs from the mapping\n")
    for args in (["--dry-run"], ["--yes"], ["--verify-only"]):
        refused = cli("sync", *args)
        assert (refused.exit_code, refused.stderr) == (2, said), args
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT count(*) FROM directory_entry WHERE phone = 'phone'").fetchone()[0] == 0


def test_a_sync_while_the_old_app_is_not_frozen_says_so(dirfinal: Dir, cli) -> None:
    config = dirfinal.project / "golive.toml"
    flag = dirfinal.project / "maintenance.flag"
    config.write_text(config.read_text().replace("\n[target]", f'\n[source.freeze]\nmethod = "file"\nflag_file = "{flag}"\n'
                                                 "\n[target]"))
    warned = ("warning: the old application is not frozen: what it writes after this sync reaches the new database only"
              " with the next sync (for the final sync, `golive freeze on` first)\n")
    rehearsal = cli("sync", "--dry-run")
    assert (rehearsal.exit_code, rehearsal.stderr) == (0, warned)
    assert cli("freeze", "on", "--yes").exit_code == 0
    final = cli("sync", "--yes")
    assert (final.exit_code, final.stderr) == (0, "")


def test_a_sync_whose_freeze_status_cannot_be_read_says_so(dirfinal: Dir, cli) -> None:
    """A freeze status golive could not read (a status command that fails; a postgres source a role's own setting
    keeps writable) gave no warning at all: the sync ran as if the old application were frozen."""
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace("\n[target]", '\n[source.freeze]\nmethod = "command"\non = ["true"]\n'
                                                 'off = ["true"]\nstatus = ["sh", "-c", "echo status broken; exit 3"]\n'
                                                 "\n[target]"))
    rehearsal = cli("sync", "--dry-run")
    assert rehearsal.exit_code == 0
    assert rehearsal.stderr == ("warning: cannot tell that the old application is frozen: freeze status command `sh -c"
                                " 'echo status broken; exit 3'` exited 3: status broken (`golive freeze status` says"
                                " more)\n")


def test_verification_that_finds_more_than_three_keys_says_how_many(dirfinal: Dir, cli) -> None:
    """The table line showed the first three keys that differ and nothing else: `no: 7, 8, 500` for four."""
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url) as conn:
        conn.execute("UPDATE directory_score SET points = points + 100 WHERE id IN (3, 4, 9, 12, 40)")
    checked = cli("sync", "--verify-only", "--deep")
    line = next(line for line in checked.lines if line.startswith("directory_score"))
    assert line.endswith("no: 3, 4, 9, … (5 in all; --json lists them)"), line


def test_after_a_data_restore_the_restored_rows_are_golives_own(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    dirfinal.source_sql("UPDATE score SET points = points + 1 WHERE id = 1")
    assert cli("sync", "--yes").exit_code == 0
    restored = cli("rollback", "--yes", "--restore-data")  # the target as the second sync's backup saw it
    assert restored.exit_code == 0, restored.stderr
    again = cli("sync", "--yes", "--full")  # every row compared: none may pass for someone else's
    assert again.exit_code == 0, again.stderr
    assert "written in the new database" not in cli("sync", "--dry-run").stdout
    with psycopg.connect(dirfinal.target_url) as conn:  # a tester's edit in the new app is still caught
        conn.execute("UPDATE directory_score SET points = 0 WHERE id = 2")
    planned = cli("sync", "--dry-run")  # and shown in the plan, before the freeze window is spent on it
    assert ("      table score -> directory_score: 90 rows synced (full, " in planned.stdout and
            " UTC), 1 row(s) written in the new database since golive's syncs (a sync stops before overwriting a"
            " mapped column one of them changed) -> 90 source rows, full, verified" in planned.stdout)
    caught = cli("sync", "--yes", "--full")
    assert caught.exit_code == 1
    assert "1 row(s) changed in the new database since golive wrote them would be overwritten: table directory_score," \
           " keys 2; nothing was written" in caught.stderr


def test_a_second_data_rollback_keeps_only_what_users_wrote_not_the_first_restores_rows(dirfinal: Dir, cli) -> None:
    assert cli("sync", "--yes").exit_code == 0
    dirfinal.source_sql("UPDATE score SET points = points + 1 WHERE id = 1")
    assert cli("sync", "--yes").exit_code == 0
    first = cli("rollback", "--yes", "--restore-data")
    assert first.exit_code == 0, first.stderr
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # the new application writes one row
        app.execute("UPDATE auth_user SET email = 'moved@example.org' WHERE id = 3")
    planned = cli("rollback", "--dry-run", "--restore-data")
    assert planned.lines[-1].startswith("      target database: as it is now; 1 row(s) written since the sync"
                                        " (public.auth_user 1), kept first -> the backup "), planned.stdout
    second = cli("rollback", "--yes", "--restore-data")
    assert second.exit_code == 0, second.stderr
    assert "! kept before the restore: 1 row(s) written since the backup (public.auth_user 1)" in second.stdout
    kept = next(Path(line.split(" kept in ")[1]) for line in second.lines if line.startswith("    ! kept before the restore"))
    assert sorted(p.name for p in kept.iterdir()) == ["before-restore.dump", "public.auth_user.ndjson", "summary.json"]
    assert [json.loads(line)["email"] for line in (kept / "public.auth_user.ndjson").read_text().splitlines()] == \
        ["moved@example.org"]


def test_a_users_edit_a_restore_brought_back_still_stops_a_sync_that_would_overwrite_it(dirfinal: Dir, cli) -> None:
    """A restore writes every row again. A row the new application changed before the backup was taken comes back
    written by the restore, one of golive's own transactions: without the restore's note of who first wrote it
    (golive.carried), the next sync took it for golive's and put the source's version over it, unseen."""
    assert cli("sync", "--yes").exit_code == 0
    with psycopg.connect(dirfinal.target_url, autocommit=True) as app:  # the new application edits a synced row
        app.execute("UPDATE auth_user SET email = 'moved@example.org' WHERE id = 3")
    dirfinal.source_sql("UPDATE score SET points = points + 1 WHERE id = 1")
    assert cli("sync", "--yes").exit_code == 0  # (incremental: user 3 is not read, the edit stays)
    restored = cli("rollback", "--yes", "--restore-data")  # the second sync's backup holds the edit
    assert restored.exit_code == 0, restored.stderr
    planned = cli("sync", "--dry-run", "--full")
    assert "1 row(s) written in the new database since golive's syncs" in planned.stdout, planned.stdout
    caught = cli("sync", "--yes", "--full")
    assert caught.exit_code == 1, caught.stdout + caught.stderr
    assert "1 row(s) changed in the new database since golive wrote them would be overwritten: table auth_user," \
           " keys 3; nothing was written" in caught.stderr
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT email FROM auth_user WHERE id = 3").fetchone()[0] == "moved@example.org"


def sync_waiting_for_a_lock(dirfinal: Dir, watch: psycopg.Connection) -> subprocess.Popen[str]:
    """`golive sync --yes` as a process, once it waits for a lock another session holds on the target."""
    sync = subprocess.Popen([sys.executable, "-m", "golive", "sync", "--yes"], cwd=dirfinal.project,
                            env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not watch.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()").fetchone():
        assert sync.poll() is None and time.monotonic() < deadline, sync.communicate()
        time.sleep(0.05)
    return sync


def test_a_write_the_new_app_commits_while_the_sync_runs_is_not_overwritten_unseen(dirfinal: Dir, cli) -> None:
    """The new application changes user 3 in a transaction that is still open when a sync starts, and commits
    while the sync waits. The sync's checks for rows changed by others ran before the commit; without the table
    lock its merge then waited for the row and wrote the source's version over the committed one, unseen."""
    assert cli("sync", "--yes").exit_code == 0
    dirfinal.source_sql("UPDATE user SET email = 'source@example.org', updated_at = '2031-01-01 00:00:00' WHERE id = 3")
    with psycopg.connect(dirfinal.target_url) as app, psycopg.connect(dirfinal.target_url, autocommit=True) as watch:
        app.execute("UPDATE auth_user SET email = 'app@example.org' WHERE id = 3")  # not committed yet
        sync = sync_waiting_for_a_lock(dirfinal, watch)
        app.commit()  # while the sync waits
        out, err = sync.communicate(timeout=60)
    assert sync.returncode == 1, out + err
    assert ("error: step sync all tables failed: 1 row(s) changed in the new database since golive wrote them would be"
            " overwritten: table auth_user, keys 3; nothing was written") in err
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT email FROM auth_user WHERE id = 3").fetchone()[0] == "app@example.org"


def test_a_target_not_migrated_yet_is_said_by_the_plan_before_any_prompt_or_run(dirfinal: Dir, cli, pg_cluster,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"unmigrated_{uuid.uuid4().hex[:8]}"
    pg_cluster.create_database(name)
    monkeypatch.setenv("GOLIVE_TEST_TARGET_URL", pg_cluster.url(name, password=SECRET))
    for args in (["--dry-run"], ["--yes"]):  # (the plan said "create 40 source rows"; the run then failed)
        said = cli("sync", *args)
        assert (said.exit_code, said.stderr) == (2, (
            "error: the target database has no table auth_user — run the new application's migrations first"
            " (python manage.py migrate), or fix the mapping\n"))
    assert cli("history").stdout.startswith("no runs")
    assert not list((dirfinal.project / ".golive").glob("backups/*"))  # no dump taken for a sync that cannot run


def test_a_deadlock_with_the_new_app_is_one_line_and_nothing_written(dirfinal: Dir, cli) -> None:
    """The app holds user 3 (FOR UPDATE); the sync locks the table and waits for that row; the app then writes the
    table and waits for the sync: PostgreSQL ends one of them — the sync, which waited first."""
    assert cli("sync", "--yes").exit_code == 0
    dirfinal.source_sql("UPDATE user SET email = 'source@example.org', updated_at = '2031-01-01 00:00:00' WHERE id = 3")
    with psycopg.connect(dirfinal.target_url) as app, psycopg.connect(dirfinal.target_url, autocommit=True) as watch:
        app.execute("SELECT 1 FROM auth_user WHERE id = 3 FOR UPDATE")
        sync = sync_waiting_for_a_lock(dirfinal, watch)
        app.execute("UPDATE auth_user SET first_name = 'App' WHERE id = 3")  # waits for the sync's table lock
        app.commit()
        out, err = sync.communicate(timeout=60)
    assert sync.returncode == 1, out + err
    assert ("the sync of table auth_user and another session on the target (the new application) each waited for a"
            " lock the other held; PostgreSQL stopped the sync and nothing was written") in err
    with psycopg.connect(dirfinal.target_url) as conn:
        email, first_name = conn.execute("SELECT email, first_name FROM auth_user WHERE id = 3").fetchone()
    assert (first_name, email != "source@example.org") == ("App", True)  # the app's write stands; the sync's is not in


def test_rows_the_new_app_changed_only_outside_the_mapping_do_not_stop_the_sync(dirfinal: Dir, cli) -> None:
    """Django sets auth_user.last_login at every login (testers during the rehearsal): a column the mapping does
    not feed. Those rows are not golive's versions any more, but a sync that overwrites their mapped columns
    loses nothing — it must not stop the final sync. An edit of a mapped column still does."""
    assert cli("sync", "--yes").exit_code == 0
    logged_in = django(dirfinal, "shell", "-c", "from django.contrib.auth.models import User, update_last_login;"
                       " [update_last_login(None, u) for u in User.objects.all()];"
                       " User.objects.create_user('tester', 'tester@example.org', 'pw-tester')")  # (in the same range)
    assert logged_in.returncode == 0, logged_in.stderr
    dirfinal.source_sql("UPDATE user SET email = 'new-3@example.org', updated_at = '2031-01-01 00:00:00' WHERE id = 3")
    dirfinal.source_sql("DELETE FROM score WHERE user_id = 4")
    dirfinal.source_sql("DELETE FROM family_member WHERE user_id = 4")
    dirfinal.source_sql("UPDATE entry SET owner_id = NULL, updated_at = '2031-01-01 00:00:00' WHERE owner_id = 4")
    dirfinal.source_sql("DELETE FROM user WHERE id = 4")
    planned = cli("sync", "--dry-run").stdout
    assert "31 row(s) written in the new database since golive's syncs" in planned  # (said, but not a stop)
    synced = cli("sync", "--yes")
    assert synced.exit_code == 0, synced.stderr
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT email, last_login IS NOT NULL FROM auth_user WHERE id = 3").fetchone() == \
            ("new-3@example.org", True)  # the source's email, the new app's last_login
        assert conn.execute("SELECT count(*) FROM auth_user WHERE id = 4").fetchone()[0] == 0
        conn.execute("UPDATE auth_user SET first_name = 'Tess' WHERE id = 5")  # a tester's edit: a mapped column
    dirfinal.source_sql("UPDATE user SET email = 'new-5@example.org', updated_at = '2031-01-02 00:00:00' WHERE id = 5")
    caught = cli("sync", "--yes")
    assert caught.exit_code == 1
    assert "would be overwritten: table auth_user, keys 5; nothing was written" in caught.stderr


def test_a_parent_deleted_by_a_cascade_the_watermark_cannot_see_is_one_line_and_full_fixes_it(dirfinal: Dir,
                                                                                               cli) -> None:
    """The old database deletes user 4 and its ON DELETE SET NULL clears entry.owner_id without touching
    entry.updated_at: the incremental sync deletes the user, keeps the entries as they were, and the deferred
    foreign key fails at commit."""
    assert cli("sync", "--yes").exit_code == 0
    dirfinal.source_sql("DELETE FROM score WHERE user_id = 4")
    dirfinal.source_sql("DELETE FROM family_member WHERE user_id = 4")
    dirfinal.source_sql("UPDATE entry SET owner_id = NULL WHERE owner_id = 4")  # (updated_at not moved)
    dirfinal.source_sql("DELETE FROM user WHERE id = 4")
    failed = cli("sync", "--yes")
    assert failed.exit_code == 1
    assert ('the sync would delete a row other rows still refer to (update or delete on table "auth_user" violates'
            ' foreign key constraint "directory_entry_owner_id_') in failed.stderr
    assert ('Key (id)=(4) is still referenced from table "directory_entry"); nothing was written — if the old'
            " database changed those rows without moving their `changed` column (an ON DELETE cascade or SET NULL does"
            " not), `golive sync --full` compares every row; if the new application made them, the row they refer to"
            " must stay: change or delete them in the new database first") in failed.stderr
    assert cli("sync", "--yes", "--full").exit_code == 0
    with psycopg.connect(dirfinal.target_url) as conn:
        assert conn.execute("SELECT count(*) FROM auth_user WHERE id = 4").fetchone()[0] == 0


CUSTOM = '''\
def boom(value):
    raise ValueError("kaboom " + str(value))


def as_dict(value):
    return {"a": value}
'''


def _custom_mapping(dirfinal: Dir, monkeypatch: pytest.MonkeyPatch, transform: str, modules: dict[str, str]) -> None:
    """The example mapping with auth_user.email through ``transform``, and ``modules`` importable."""
    folder = dirfinal.project / "transforms"
    folder.mkdir()
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    mapping = (REPO / "examples" / "dirfinal" / "mapping.toml").read_text()
    lower = 'email = { from = "email", transform = "lower" }'
    (dirfinal.project / "mapping.toml").write_text(mapping.replace(lower, lower.replace("lower", transform), 1))
    config = dirfinal.project / "golive.toml"
    config.write_text(config.read_text().replace(str(REPO / "examples" / "dirfinal" / "mapping.toml"),
                                                 str(dirfinal.project / "mapping.toml")))


@pytest.mark.parametrize(("module", "error"), [
    ('import os\nraise RuntimeError("needs DJANGO_SETTINGS_MODULE")\n', "RuntimeError: needs DJANGO_SETTINGS_MODULE"),
    ("def f(value:\n    return value\n", "SyntaxError: "),
])
def test_a_custom_transform_module_that_fails_to_load_is_a_config_error_naming_it(dirfinal: Dir, cli, monkeypatch,
                                                                                   module: str, error: str) -> None:
    _custom_mapping(dirfinal, monkeypatch, "badmod:f", {"badmod": module})
    for args in (("sync", "--yes"), ("sync", "--verify-only")):
        result = cli(*args)
        assert result.exit_code == 2, result
        line = 1 + (dirfinal.project / "mapping.toml").read_text().splitlines().index(
            'email = { from = "email", transform = "badmod:f" }')  # (the line is named)
        assert (f"{dirfinal.project / 'mapping.toml'}:{line}: table auth_user, column email: transform 'badmod:f' cannot"
                f" be imported: module badmod failed as it loaded: {error}") in result.stderr
        assert "internal error" not in result.stderr
    assert dirfinal.count("auth_user") == 0


def test_a_custom_transform_that_raises_names_table_key_column_and_transform(dirfinal: Dir, cli, monkeypatch) -> None:
    _custom_mapping(dirfinal, monkeypatch, "mytx:boom", {"mytx": CUSTOM})
    db = sqlite3.connect(dirfinal.source)
    email = db.execute("SELECT email FROM user WHERE id = 1").fetchone()[0]
    db.close()
    result = cli("sync", "--yes")
    assert result.exit_code == 1
    assert (f"failed: table auth_user, key id=1, column email: transform mytx:boom failed: ValueError: kaboom {email} —"
            " fix the transform (a value it cannot carry over should raise golive.sync.transforms.Reject, which rejects"
            " the row) or the source value") in result.stderr
    assert dirfinal.count("auth_user") == 0


def test_a_custom_transform_returning_what_the_column_cannot_hold_is_a_reject(dirfinal: Dir, cli, monkeypatch) -> None:
    _custom_mapping(dirfinal, monkeypatch, "mytx:as_dict", {"mytx": CUSTOM})
    result = cli("sync", "--yes")
    assert result.exit_code == 1
    assert ("30 row(s) rejected (max 0); first: table auth_user, key id=1, column email: a dict ({'a':"
            in result.stderr), result.stderr
    assert "is not text for a varchar column" in result.stderr
    assert dirfinal.count("auth_user") == 0
