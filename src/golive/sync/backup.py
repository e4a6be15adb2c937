"""Backups of the target database with pg_dump (custom format), and their restore with pg_restore.

A dump runs in a snapshot golive exports and holds open, and the snapshot's text (``xmin:xmax:xip``) is
kept with the backup: it says exactly which transactions' rows the dump saw, which is how a restore
knows what it would throw away (:mod:`golive.sync.reconcile`). The password never reaches a command
line (where `ps` would show it): it goes in PGPASSWORD.

No client golive starts (pg_dump, pg_restore, the restore's psql) outlives it: each is killed with it
(PR_SET_PDEATHSIG), so a golive killed outright cannot leave a restore running on its own, to commit later
behind the back of whatever runs next. The restore's session on the server gives up by itself too: its
client gone (``client_connection_check_interval``), or a lock waited for longer than ``lock_timeout``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from golive.errors import GoliveError, first_line
from golive.secrets import REDACTOR

__all__ = ["FROZEN_MARK", "Backup", "NoSpace", "dump", "dump_in", "held_error", "hold_refused", "ms_setting", "no_space",
           "prune", "read_only", "read_only_error", "release_writes", "restore", "writes_are_held", "writes_held"]


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


@functools.cache
def _prctl() -> Any:
    import ctypes

    return getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # (loaded here, not in the forked child)


def _dies_with_golive() -> Callable[[], None] | None:
    """For Popen's ``preexec_fn``: the child is SIGKILLed when golive dies, however it dies (Linux's
    PR_SET_PDEATHSIG; it is tied to the thread that starts the child: golive's main thread); a golive already
    gone by then is seen too (the child's parent is no longer the one that forked it)."""
    prctl, parent = _prctl(), os.getpid()
    if prctl is None:
        return None

    def arm() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # (1: PR_SET_PDEATHSIG)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


def _run(command: list[str], env: dict[str, str], what: str, into: Path | None = None) -> None:
    """Run a PostgreSQL client (it dies with golive); ``into``: the directory of the file it writes on this
    machine (a full one is named: NoSpace)."""
    # umask 077: what pg_dump and pg_restore write (every password hash of the site) is the owner's alone,
    # also while it is written
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600, umask=0o077,
                          preexec_fn=_dies_with_golive(), start_new_session=True)  # (not the terminal's SIGHUP)
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
    killed golive left: a dump half written, a restore's script (users' data). Called with the run lock held
    (no dump is being written, no restore runs). Returns what it removed."""
    dumps = sorted(directory.glob("target-*.dump"))
    gone = [old for old in dumps[:-keep] if str(old) not in needed] + sorted(directory.glob("target-*.dump.partial"))
    for old in gone:
        old.unlink(missing_ok=True)
    return gone + _leftover_scripts(directory)


def _leftover_scripts(directory: Path) -> list[Path]:
    """Remove the restore scripts a killed golive left in ``directory`` (each a full SQL copy of the target);
    with the run lock held, no restore is running."""
    gone = sorted(directory.glob(_SCRIPT.replace("XXXX", "*")))
    for old in gone:
        old.unlink(missing_ok=True)
    return gone


_SCRIPT = ".restore-XXXX.sql"  # (a restore's script, next to the dumps, while it runs)


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
            # (each waited for up to 5 s)
            for (pid,) in conn.execute(f"SELECT pid FROM pg_stat_activity WHERE {_SESSIONS}").fetchall():
                with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            # a session golive's role may not end (a superuser's, another role's) writes on: the hold is not whole
            yield _unended(conn, _UNENDABLE)
        finally:
            release_writes(conn)


def hold_refused(conn: Any) -> str | None:
    """Why ``writes_held`` would not be let hold writes off the target (as it would say it), or None: it may.
    Asked of the server, nothing changed (for a plan, before the prompt)."""
    superuser, owner, database, role, version = conn.execute(
        "SELECT r.rolsuper, pg_has_role(d.datdba, 'USAGE'), d.datname, current_user,"
        " current_setting('server_version_num')::int FROM pg_roles r, pg_database d"
        " WHERE r.rolname = current_user AND d.datname = current_database()").fetchone()
    if superuser:
        return None
    if not owner:
        return f"must be owner of database {database}"
    if version < 150000:  # (before PostgreSQL 15 only a superuser may set a custom parameter such as the mark)
        return f'permission denied to set parameter "{FROZEN_MARK}" (PostgreSQL {version // 10000}: only a superuser may)'
    if not conn.execute("SELECT has_parameter_privilege(%s, 'SET')", (FROZEN_MARK,)).fetchone()[0]:
        return (f'permission denied to set parameter "{FROZEN_MARK}"; `GRANT SET ON PARAMETER {FROZEN_MARK} TO'
                f' {role}` as a superuser lets it')
    return _unended(conn, _UNENDABLE)


# the target's open sessions golive's role may not end (PostgreSQL lets a role end the sessions of roles whose
# privileges it has, or any but a superuser's with pg_signal_backend; a superuser, any)
# the target's other client sessions: pg_stat_activity hides another role's backend_type (NULL) from a role
# without pg_read_all_stats, and such sessions were passed over — not even tried
_SESSIONS = ("datname = current_database() AND pid <> pg_backend_pid() AND usesysid IS NOT NULL"
             " AND coalesce(backend_type, 'client backend') = 'client backend'")
_UNENDABLE = f"""
SELECT DISTINCT usename FROM pg_stat_activity
WHERE {_SESSIONS} AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
  AND ((SELECT rolsuper FROM pg_roles WHERE oid = usesysid)
       OR NOT (pg_has_role(current_user, usesysid, 'USAGE') OR pg_has_role(current_user, 'pg_signal_backend', 'USAGE')))
ORDER BY 1
"""


def _unended(conn: Any, query: str) -> str | None:
    """Why open sessions of the target would go on writing through the hold (``query``'s roles), or None."""
    roles = [row[0] for row in conn.execute(query).fetchall()]
    if not roles:
        return None
    role = conn.execute("SELECT current_user").fetchone()[0]
    return (f"open sessions of {', '.join(roles)} on the target may not be ended by {role} (a superuser's, or another"
            f" role's without `GRANT pg_signal_backend TO {role}`): they can write on until they reconnect")


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
    seconds; then the restore is cancelled, its one transaction rolled back, naming the sessions. The server
    does it (``lock_timeout`` in PGOPTIONS: the script's own ``SET lock_timeout = 0`` is turned into a RESET to
    it), and gives up as well when psql is gone (``client_connection_check_interval``); a watchdog names who
    held the lock, and cancels a wait the server did not bound. psql, like pg_restore, dies with golive."""
    if not path.exists():
        raise GoliveError(f"backup {path} is gone", hint="restore the target by hand from another backup")
    from golive.db import connect
    from golive.sync.conflicts import RESTORE_MARK  # (the restored rows are golive's own writes)
    from golive.sync.reconcile import CARRY, CARRY_NOTED  # (but for those a user wrote: noted first)

    _leftover_scripts(path.parent)  # (a killed golive's: the run lock is held)
    conninfo, env = _split(url)
    env["PGAPPNAME"] = name = f"golive-restore-{os.getpid()}"  # (the watchdog finds its session by this)
    before, after = _SCRIPT.split("XXXX")
    # the whole script first, checked, then run: a script cut short by a failing pg_restore would otherwise
    # reach its end in psql and be committed, half a restore (it is owner-only, next to the dumps, and goes)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=before, suffix=after) as script, \
            tempfile.TemporaryFile("w+") as errors, connect(url, what="target database") as watch:
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "-f", script.name, str(path)], env,
             f"reading the backup {path}", into=path.parent)
        bounded = _bound_lock_waits(Path(script.name))
        # (writes_held leaves new sessions read-only; a session whose psql is gone ends within a second: 14+)
        checks = int(watch.execute("SHOW server_version_num").fetchone()[0]) >= 140000
        env["PGOPTIONS"] = " ".join([env.get("PGOPTIONS", ""), "-c default_transaction_read_only=off",
                                     f"-c lock_timeout={ms_setting(lock_timeout)}",
                                     *(["-c client_connection_check_interval=1000"] if checks else [])]).strip()
        proc = subprocess.Popen([_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                                 "-c", CARRY, "-c", "DROP SCHEMA IF EXISTS golive CASCADE", "-f", script.name,
                                 "-c", CARRY_NOTED, "-c", RESTORE_MARK, "-d", conninfo],
                                env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True,
                                preexec_fn=_dies_with_golive(), start_new_session=True)
        try:
            blockers, cancelled = _watch(watch, proc, name, lock_timeout + (_MARGIN if bounded else 0.0))
        finally:
            if proc.poll() is None:  # (interrupted: the restore's transaction dies with its connection)
                proc.terminate()
                proc.wait()
        errors.seek(0)
        said = _said(errors.read().strip().splitlines())
        if cancelled or (proc.returncode != 0 and "lock timeout" in said):
            raise _locked(path, lock_timeout, "the target untouched", blockers or "sessions golive did not see"
                          " (it looks every 0.2 s)")
        if proc.returncode != 0:
            raise GoliveError(f"the restore of {path} failed: {REDACTOR(said)}",
                              hint="its one transaction was rolled back: the target is as it was; fix the cause,"
                                   " then run the rollback again")


# what the watchdog waits beyond ``lock_timeout`` for the server's own cancel before it cancels a lock wait itself
_MARGIN = 2.0

# pg_restore's script sets ``lock_timeout`` to 0 (waits unbounded); the same bytes, RESET to the session's own
_NO_LOCK_WAIT, _SESSION_LOCK_WAIT = b"\nSET lock_timeout = 0;\n", b"\nRESET lock_timeout;  \n"


def _bound_lock_waits(script: Path) -> bool:
    """Turn the script's ``SET lock_timeout = 0`` (in its first lines) into a RESET to the session's
    ``lock_timeout`` (PGOPTIONS), in place; whether it was there."""
    with script.open("r+b") as out:
        at = out.read(64 * 1024).find(_NO_LOCK_WAIT)
        if at < 0:
            return False
        out.seek(at)
        out.write(_SESSION_LOCK_WAIT)
    return True


def _watch(watch: Any, proc: subprocess.Popen[str], name: str, wait: float) -> tuple[str | None, bool]:
    """Wait for the restore (psql), noting who holds a lock its session waits for; if it waits longer than
    ``wait`` (a wait the server did not bound), cancel it. Returns who held the lock last seen (None: no
    wait seen) and whether it was cancelled here."""
    blockers = None
    while True:
        try:
            proc.wait(timeout=0.2)
            return blockers, False
        except subprocess.TimeoutExpired:
            pass
        row = watch.execute(
            "SELECT pid, pg_blocking_pids(pid), now() - query_start > make_interval(secs => %s) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'", (wait, name)).fetchone()
        if row is not None and row[1]:
            blockers = _sessions(watch, row[1])
        if row is not None and row[2]:
            watch.execute("SELECT pg_cancel_backend(%s)", (row[0],))
            proc.wait()
            return blockers, True


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
