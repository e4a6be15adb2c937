"""Backups of the target database with pg_dump (custom format), and their restore with pg_restore.

A dump runs in a snapshot golive exports and holds open, and the snapshot's text (``xmin:xmax:xip``) is
kept with the backup: it says exactly which transactions' rows the dump saw, which is how a restore
knows what it would throw away (:mod:`golive.sync.reconcile`). The password never reaches a command
line (where `ps` would show it): it goes in PGPASSWORD.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from golive.errors import GoliveError, first_line
from golive.secrets import REDACTOR

__all__ = ["FROZEN_MARK", "Backup", "NoSpace", "dump", "dump_in", "held_error", "ms_setting", "no_space", "prune", "read_only",
           "read_only_error", "release_writes", "restore", "writes_are_held", "writes_held"]


def _tool(name: str) -> str:
    from golive.sandbox.postgres import find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is not None and (bin_dir / name).exists():
        return str(bin_dir / name)
    found = shutil.which(name)
    if found is None:
        raise GoliveError(f"{name} is not installed", hint="apt-get install postgresql-client")
    return found


def _split(url: str) -> tuple[str, dict[str, str]]:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = {"PGCONNECT_TIMEOUT": "10", **os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


class NoSpace(GoliveError):
    """A file golive writes on this machine (a dump, a restore's script, a reconcile file) did not fit in
    ``directory``: nothing was changed in the target by it."""

    def __init__(self, what: str, directory: Path, said: str, then: str = "run the command again") -> None:
        self.directory = directory
        try:
            free = f"{shutil.disk_usage(directory if directory.exists() else directory.parent).free // 1024} KiB free now"
        except OSError:
            free = "free space unknown"
        super().__init__(f"{what} failed: {directory} is full ({said})",
                         hint=f"free space in {directory} ({free}) or set [project].state_dir elsewhere, then {then}")


def no_space(exc: OSError) -> bool:
    """Whether a write failed for want of room (a full disk, or the user's quota)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _run(command: list[str], env: dict[str, str], what: str, into: Path | None = None) -> None:
    """Run a PostgreSQL client; ``into``: the directory of the file it writes on this machine (a full one is
    named: NoSpace)."""
    # umask 077: what pg_dump and pg_restore write (every password hash of the site) is the owner's alone,
    # also while it is written
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, umask=0o077)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        said = _said(lines)
        if into is not None and "No space left on device" in said and "ERROR:" not in said:  # (not the server's disk)
            raise NoSpace(what, into, REDACTOR(said))
        if "lock timeout" in said or ("statement timeout" in said and any("LOCK TABLE " in line for line in lines)):
            locked = next((line.split("LOCK TABLE ")[1].split(" IN ")[0] for line in lines if "LOCK TABLE " in line), "a table")
            raise GoliveError(f"{what} waited for a lock another session holds on {locked} (a migration running?)"
                              " and stopped", hint="let it finish (or end it), then run again; [target].lock_timeout"
                              " sets the wait")
        raise GoliveError(f"{what} failed: {REDACTOR(said)}", hint="check the target database and disk space")


def _said(lines: list[str]) -> str:
    """The line of a pg_dump/pg_restore/psql complaint that says what went wrong (not its detail or command;
    without psql's ``psql:<stdin>:N:`` position)."""
    said = next((line for line in lines if " error: " in line or "ERROR:" in line), lines[-1] if lines else "")
    return said.split(": ", 1)[1] if said.startswith("psql:") and ": " in said else said


def ms_setting(seconds: float) -> str:
    """Seconds as a PostgreSQL time setting (``lock_timeout``, ``--lock-wait-timeout``), at least 1 ms."""
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(frozen=True)
class Backup:
    path: Path
    snapshot: str  # the snapshot the dump ran in, as PostgreSQL writes a pg_snapshot: "xmin:xmax:xip,…"


@contextmanager
def snapshot(url: str, lock_timeout: float = 30.0) -> Iterator[tuple[Any, str, str]]:
    """A read-only REPEATABLE READ transaction on ``url`` whose snapshot is exported: (connection,
    snapshot id for ``pg_dump --snapshot``, the snapshot's text), held open until the block ends. Its
    statements wait at most ``lock_timeout`` for a lock (a migration's)."""
    from psycopg import IsolationLevel

    from golive.db import connect

    with connect(url, autocommit=False, what="target database") as conn:
        conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
        exported, text = conn.execute("SELECT pg_export_snapshot(), pg_current_snapshot()::text").fetchone()
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (ms_setting(lock_timeout),))
        try:
            yield conn, exported, text
        finally:
            conn.rollback()


def dump_in(url: str, exported: str, path: Path, lock_timeout: float = 30.0, full: Path | None = None) -> None:
    """pg_dump -Fc the database as the exported snapshot ``exported`` (held open by the caller) sees it;
    a table another session holds locked (a migration running) is waited for ``lock_timeout`` seconds.
    ``full``: the directory a full disk is named by (``path``'s own, unless it goes with a failure)."""
    conninfo, env = _split(url)
    partial = path.with_name(path.name + ".partial")  # (a failed dump leaves no file a restore could pick up)
    try:
        _run([_tool("pg_dump"), "-Fc", f"--snapshot={exported}", f"--lock-wait-timeout={ms_setting(lock_timeout)}",
              "-f", str(partial), "-d", conninfo], env, "pg_dump of the target", into=full or path.parent)
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)


def dump(url: str, directory: Path, lock_timeout: float = 30.0) -> Backup:
    """pg_dump -Fc the target into ``directory`` (old dumps go by ``prune``, once the run is journaled)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        if no_space(exc):
            raise NoSpace("pg_dump of the target", directory, first_line(exc)) from None
        raise
    path = directory / f"target-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}.dump"
    with snapshot(url, lock_timeout) as (_, exported, text):
        dump_in(url, exported, path, lock_timeout)
    return Backup(path, text)


def prune(directory: Path, keep: int, needed: set[str]) -> list[Path]:
    """Remove the dumps beyond the newest ``keep``, except those a step that can still be undone names
    (``needed``: a data rollback restores them, however many failed attempts came after), and what a
    killed pg_dump left half written. Called with the run lock held (no dump is being written). Returns
    what it removed."""
    dumps = sorted(directory.glob("target-*.dump"))
    gone = [old for old in dumps[:-keep] if str(old) not in needed] + sorted(directory.glob("target-*.dump.partial"))
    for old in gone:
        old.unlink(missing_ok=True)
    return gone


# a database-level setting golive adds while it holds writes off the target, so that whatever runs next knows
FROZEN_MARK = "golive.restore_freeze"


@contextmanager
def writes_held(url: str) -> Iterator[str | None]:
    """Writes to the target held off while a data rollback keeps and replaces its data: new sessions start
    read-only (``ALTER DATABASE … SET default_transaction_read_only``) and the open ones are ended; put back
    after, also when the block fails. Yields None, or why it could not be done (the role may not alter the
    database). If golive dies inside, the target stays read-only (nothing written is lost) and carries
    ``FROZEN_MARK``: the next rollback or sync puts it back (``release_writes``)."""
    import psycopg
    from psycopg import sql

    from golive.db import connect

    with connect(url, what="target database") as conn:
        conn.execute("SET default_transaction_read_only = off")  # (held off already: an interrupted rollback)
        database = sql.Identifier(conn.execute("SELECT current_database()").fetchone()[0])
        try:
            # both or neither: read-only without the mark is a hold nothing golive runs would ever recognise or
            # release (the database's owner may set the first; PostgreSQL 15 lets only a superuser, or a role
            # granted SET on it, set a custom parameter such as the mark)
            with conn.transaction():
                conn.execute(sql.SQL("ALTER DATABASE {} SET {} = on").format(database,
                                                                               sql.Identifier(*FROZEN_MARK.split("."))))
                conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(database))
        except psycopg.errors.InsufficientPrivilege as exc:
            why = first_line(exc)
            if FROZEN_MARK in why:
                role = conn.execute("SELECT current_user").fetchone()[0]
                why += f"; `GRANT SET ON PARAMETER {FROZEN_MARK} TO {role}` as a superuser lets it"
            yield why
            return
        try:
            # (each waited for up to 5 s; another role's session may go on until it reconnects)
            for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                       " AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchall():
                with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            yield None
        finally:
            release_writes(conn)


def writes_are_held(conn: Any) -> bool:
    """Whether golive holds writes off the target (``writes_held``, left so by an interrupted rollback)."""
    return bool(conn.execute("SELECT count(*) FROM pg_db_role_setting r, unnest(r.setconfig) s WHERE r.setrole = 0"
                             " AND r.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
                             " AND s LIKE %s", (f"{FROZEN_MARK}=%",)).fetchone()[0])


def held_error() -> GoliveError:
    """What a sync or verification says while writes are held off (an interrupted data rollback)."""
    return GoliveError("the target is read-only: a data rollback (`golive rollback --restore-data`) was interrupted",
                       hint="run `golive rollback --restore-data --yes` to finish it (or `golive rollback --yes` to"
                            " keep the data and allow writes again)")


def read_only(conn: Any) -> bool:
    """Whether new sessions on the target start read-only (after ``writes_are_held``: not golive's hold)."""
    return bool(conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on")


def read_only_error() -> GoliveError:
    return GoliveError("the target database is read-only (default_transaction_read_only is on for it, and not by"
                       " golive: no data rollback holds it); nothing was written",
                       hint="if nothing else needs it read-only, `ALTER DATABASE … RESET default_transaction_read_only`"
                            " as its owner, then sync again")


def release_writes(conn: Any) -> bool:
    """Writes allowed again on the target, if golive held them off (True then)."""
    from psycopg import sql

    if not writes_are_held(conn):
        return False
    conn.execute("SET default_transaction_read_only = off")  # (this session began while they were held off)
    database = sql.Identifier(conn.execute("SELECT current_database()").fetchone()[0])
    conn.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(database))
    conn.execute(sql.SQL("ALTER DATABASE {} RESET {}").format(database, sql.Identifier(*FROZEN_MARK.split("."))))
    return True


def restore(url: str, path: Path, lock_timeout: float = 30.0) -> None:
    """Put the target back as the dump has it, in one transaction: who wrote each row noted first
    (:mod:`golive.sync.reconcile`), golive's own sync state (schema ``golive``) dropped, then pg_restore's
    script (``--clean``) run by psql, the notes filed again. (The state goes because
    objects made after the dump are not touched by --clean, and a watermark newer than the data would make
    the next incremental sync skip rows; a dump that has it brings it back. Dropped in the same transaction,
    a failed restore leaves state and data together as they were.)

    A lock another session holds (the new application, mid-transaction) is waited for ``lock_timeout``
    seconds; then the restore is cancelled, its one transaction rolled back, naming the sessions. (A
    watchdog does it: pg_restore's script sets ``lock_timeout`` to 0, whatever PGOPTIONS says.)"""
    if not path.exists():
        raise GoliveError(f"backup {path} is gone", hint="restore the target by hand from another backup")
    from golive.sync.conflicts import RESTORE_MARK  # (the restored rows are golive's own writes)
    from golive.sync.reconcile import CARRY, CARRY_NOTED  # (but for those a user wrote: noted first)

    conninfo, env = _split(url)
    env["PGAPPNAME"] = name = f"golive-restore-{os.getpid()}"  # (the watchdog finds its session by this)
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c default_transaction_read_only=off".strip()  # (writes_held)
    # the whole script first, checked, then run: a script cut short by a failing pg_restore would otherwise
    # reach its end in psql and be committed, half a restore (it is owner-only, next to the dumps, and goes)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".restore-", suffix=".sql") as script, \
            tempfile.TemporaryFile("w+") as errors:
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "-f", script.name, str(path)], env,
             f"reading the backup {path}", into=path.parent)
        proc = subprocess.Popen([_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                                 "-c", CARRY, "-c", "DROP SCHEMA IF EXISTS golive CASCADE", "-f", script.name,
                                 "-c", CARRY_NOTED, "-c", RESTORE_MARK, "-d", conninfo],
                                env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        try:
            blockers = _watch(url, proc, name, lock_timeout)
        finally:
            if proc.poll() is None:  # (interrupted: the restore's transaction dies with its connection)
                proc.terminate()
                proc.wait()
        if blockers is not None:
            raise _locked(path, lock_timeout, "the target untouched", blockers)
        if proc.returncode != 0:
            errors.seek(0)
            raise GoliveError(f"the restore of {path} failed: {REDACTOR(_said(errors.read().strip().splitlines()))}",
                              hint="its one transaction was rolled back: the target is as it was; fix the cause,"
                                   " then run the rollback again")


def _watch(url: str, proc: subprocess.Popen[str], name: str, lock_timeout: float) -> str | None:
    """Wait for the restore (psql); if its session waits longer than ``lock_timeout`` for a lock, cancel it
    and say who holds the lock (None: it finished, well or not)."""
    from golive.db import connect

    with connect(url, what="target database") as watch:
        while True:
            try:
                proc.wait(timeout=0.2)
                return None
            except subprocess.TimeoutExpired:
                pass
            row = watch.execute(
                "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE application_name = %s"
                " AND wait_event_type = 'Lock' AND now() - query_start > make_interval(secs => %s)",
                (name, lock_timeout)).fetchone()
            if row is not None:
                blockers = _sessions(watch, row[1])
                watch.execute("SELECT pg_cancel_backend(%s)", (row[0],))
                proc.wait()
                return blockers


def _sessions(conn: Any, pids: list[int]) -> str:
    rows = conn.execute(
        "SELECT pid, coalesce(nullif(application_name, ''), usename), coalesce(host(client_addr), 'local'), state"
        " FROM pg_stat_activity WHERE pid = ANY(%s) ORDER BY pid", (pids,)).fetchall()
    return f"{len(rows)} session(s): " + ("; ".join(f"pid {pid} {who} from {addr} ({state})"
                                                   for pid, who, addr, state in rows[:5]) or "gone since")


def _locked(path: Path, lock_timeout: float, left: str, holders: str) -> GoliveError:
    return GoliveError(
        f"the restore of {path.name} waited {lock_timeout:g} s for a lock other sessions hold on the target and"
        f" stopped, {left}; held by {holders}",
        hint="stop the new application (or end those sessions: SELECT pg_terminate_backend(pid)), then run"
             " `golive rollback --restore-data` again; [target].lock_timeout sets the wait")
