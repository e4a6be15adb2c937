"""Method "postgres": the source database made read-only (``ALTER DATABASE … SET
default_transaction_read_only``) and its other sessions ended, so none keeps writing — whenever golive makes
it read-only: ``freeze on``, and the undo of a ``freeze off``.

A role's own setting (``ALTER ROLE … [IN DATABASE …] SET default_transaction_read_only = off``) wins over the
database's, so such a role's sessions would still write: the freeze refuses it before changing anything (golive
does not alter roles: a role's setting holds in every database, and is the operator's to change), and a database
made read-only while one exists is not frozen (:func:`pg_frozen` says why). A transaction prepared in the
database (``PREPARE TRANSACTION``) commits its writes read-only or not: the freeze refuses while one waits.

Privileges: the URL's role must own the database (or be a superuser) to alter it. To end another
role's session it must be a superuser, a member of that role, or of ``pg_signal_backend``; a
superuser's session only a superuser can end. The sessions it cannot end are found before anything
is changed, and named with the way out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from golive.errors import ConfigError, GoliveError

if TYPE_CHECKING:
    from golive.config.models import GoliveConfig
    from golive.core.step import StepContext

__all__ = ["pg_frozen", "pg_read_only", "pg_refusal", "pg_set", "pg_url"]

# the other sessions of the database (a session without a role is a background worker, not a writer),
# with whether the URL's role may end each (PostgreSQL's rule for pg_terminate_backend)
_SESSIONS = """
SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.client_port, r.rolsuper,
       me.rolsuper OR (NOT r.rolsuper AND (pg_has_role(a.usesysid, 'USAGE')
                                          OR pg_has_role('pg_signal_backend', 'USAGE'))) AS can_end
FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid, pg_roles me
WHERE me.rolname = current_user AND a.datname = %s AND a.pid <> pg_backend_pid()
ORDER BY a.pid
"""
# the transactions prepared in the database (PREPARE TRANSACTION): COMMIT PREPARED writes whatever the setting
_PREPARED = "SELECT gid, owner, prepared FROM pg_prepared_xacts WHERE database = %s ORDER BY prepared, gid"
# each role's own default_transaction_read_only: for every database (false) and for this one (true)
_ROLE_SETTINGS = """
SELECT r.rolname, s.setdatabase <> 0, substr(c, length('default_transaction_read_only=') + 1)::boolean
FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = %s))
  AND lower(c) LIKE 'default\\_transaction\\_read\\_only=%%'
ORDER BY r.rolname
"""


def pg_url(config: GoliveConfig) -> str:
    """The source's URL for method "postgres": a SQLite source (from "env:NAME", unknown until now) is a
    config error, not a connection that fails."""
    from golive.db import resolve_url

    url = resolve_url(config.require("source").url)
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f'source.freeze.method: "postgres" needs a postgresql:// source; source.url'
                          f' ({config.require("source").url}) is {url.partition(":")[0]}',
                          hint='fix source.url, or use method "file" or "command"')
    return url


def pg_read_only(config: GoliveConfig) -> bool:
    """Whether the database's own setting makes it read-only (what golive sets and undoes)."""
    from golive.db import connect

    with connect(pg_url(config), what="source database") as conn:
        return _database_read_only(conn, _name(conn))


def pg_frozen(config: GoliveConfig) -> bool:
    """Whether the old application is frozen: the database read-only, and no role's own setting keeping its
    sessions writable (an error naming them when one does: "on" would be untrue, "off" would hide the cause)."""
    from golive.db import connect

    with connect(pg_url(config), what="source database") as conn:
        name = _name(conn)
        if not _database_read_only(conn, name):
            return False
        roles = _writable_roles(conn, name)
    if roles:
        raise _writable_error(name, roles, f"database {name} is read-only, but it is not frozen: ", "")
    return True


def _name(conn: Any) -> str:
    """The database the connection is to (a URL without a database name connects to the user's)."""
    return str(conn.execute("SELECT current_database()").fetchone()[0])


def _database_read_only(conn: Any, name: str) -> bool:
    # set by golive (`on`) or by hand in any spelling PostgreSQL takes for a boolean (true, yes, 1, ...):
    # the setting is stored as written, and a boolean's text input reads every such spelling
    # (PostgreSQL checked the value when it was set: the cast cannot fail)
    row = conn.execute(
        "SELECT coalesce(bool_or(substr(c, length('default_transaction_read_only=') + 1)::boolean), false)"
        " FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setrole = 0 AND s.setdatabase = (SELECT oid"
        " FROM pg_database WHERE datname = %s) AND lower(c) LIKE 'default\\_transaction\\_read\\_only=%%'",
        (name,)).fetchone()
    return bool(row[0])


def _writable_roles(conn: Any, name: str) -> list[tuple[str, list[bool]]]:
    """The roles whose own setting keeps their sessions writable in the database made read-only, each with the
    settings to reset (True: the one for this database, False: the role's, for every database). PostgreSQL
    takes a role's setting in the database over the role's, and the role's over the database's."""
    settings: dict[str, dict[bool, bool]] = {}
    for role, in_database, value in conn.execute(_ROLE_SETTINGS, (name,)).fetchall():
        settings.setdefault(str(role), {})[bool(in_database)] = bool(value)
    # (a read-only setting of the role here keeps it read-only; reset only this database's false one and the
    # role's own false one still keeps it writable: both are named)
    return [(role, [scope for scope in (True, False) if of.get(scope) is False])
            for role, of in settings.items() if of.get(True, of.get(False)) is False]


def _writable_error(name: str, roles: list[tuple[str, list[bool]]], lead: str, done: str) -> GoliveError:
    where = {True: f"in database {name}", False: "in every database"}
    resets = [f"ALTER ROLE {_quoted(role)}" + (f" IN DATABASE {_quoted(name)}" if scope else "")
              + " RESET default_transaction_read_only" for role, scopes in roles for scope in scopes]
    described = "; ".join(f"{role} ({', '.join(where[scope] for scope in scopes)})" for role, scopes in roles)
    return GoliveError(f"{lead}{len(roles)} role(s) set their own default_transaction_read_only = off, which PostgreSQL"
                       f" takes over the database's, so their sessions still write: {described}{done}",
                       hint="as a superuser: " + "; ".join(resets) + " — then freeze again")


def _quoted(name: str) -> str:
    import re

    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _describe(row: tuple[Any, ...], me: str) -> str:
    pid, user, app, addr, port, superuser = row[:6]
    client = f"from {addr}" if addr else "local socket" if port == -1 else f"client not visible to {me}"
    return f"{user}{' (superuser)' if superuser else ''}: {app or 'no application_name'}, pid {pid}, {client}"


def _unendable_error(name: str, me: str, rows: list[tuple[Any, ...]], done: str) -> GoliveError:
    others = [r for r in rows if not r[5]]
    pids = ", ".join(str(r[0]) for r in rows)
    ways = ([f"GRANT pg_signal_backend TO {_quoted(me)} (as a superuser)"] if others else []) + [
        f"end them by hand (as a superuser: SELECT pg_terminate_backend(pid) for pid {pids})",
        "or freeze as a superuser (the role of source.url)"]
    return GoliveError(f"database {name}: {len(rows)} open session(s) that role {me} cannot end: "
                       + "; ".join(_describe(r, me) for r in rows) + f"; {done}",
                       hint=", ".join(ways) + (" — a superuser's session only a superuser can end" if
                                               len(others) < len(rows) else ""))


def pg_refusal(config: GoliveConfig, changing: bool = True) -> GoliveError | None:
    """Why making the database read-only would not freeze the old application, or None (reads only): a role
    whose own setting keeps it writable; when ``changing`` (the setting is not on yet), also a session the URL's
    role cannot end."""
    from golive.db import connect

    with connect(pg_url(config), what="source database") as conn:
        return _refusal(conn, _name(conn), changing)


def _refusal(conn: Any, name: str, changing: bool) -> GoliveError | None:
    roles = _writable_roles(conn, name)
    if roles:
        return _writable_error(name, roles, f"database {name}: ", "; nothing was changed")
    prepared = conn.execute(_PREPARED, (name,)).fetchall()
    if prepared:
        return _prepared_error(name, prepared)
    if not changing:
        return None
    me = str(conn.execute("SELECT current_user").fetchone()[0])
    rows = [r for r in conn.execute(_SESSIONS, (name,)).fetchall() if not r[6]]
    return _unendable_error(name, me, rows, "nothing was changed") if rows else None


def _prepared_error(name: str, rows: list[tuple[Any, ...]]) -> GoliveError:
    from datetime import UTC

    gids = [_literal(str(gid)) for gid, _, _ in rows]
    return GoliveError(f"database {name}: {len(rows)} prepared transaction(s) would still write after the freeze (COMMIT"
                       " PREPARED commits them, read-only or not): " + "; ".join(
                           f"{gid} (owner {owner}, prepared {when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)"
                           for gid, (_, owner, when) in zip(gids, rows, strict=True)) + "; nothing was changed",
                       hint=f"connected to database {name} as their owner or a superuser, end each: COMMIT PREPARED"
                            f" {gids[0]} (or ROLLBACK PREPARED {gids[0]}, losing its writes)"
                            + (", and so on" if len(rows) > 1 else "") + " — then freeze again")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _end_sessions(ctx: StepContext, conn: Any, name: str, phase: str = "apply") -> None:
    import psycopg

    me = str(conn.execute("SELECT current_user").fetchone()[0])
    ended, failed = 0, []
    for row in conn.execute(_SESSIONS, (name,)).fetchall():
        try:
            ended += bool(conn.execute("SELECT pg_terminate_backend(%s)", (row[0],)).fetchone()[0])
        except psycopg.errors.InsufficientPrivilege:
            failed.append(row)
    ctx.log(phase, f"database {name}: ended {ended} open session(s)")
    if failed:
        raise _unendable_error(name, me, failed, f"ended {ended} other(s)")


def pg_set(ctx: StepContext, read_only: bool, phase: str) -> None:
    """Make the database read-only (refused first when that would not freeze it; then every other session is
    ended: one opened before keeps writing) or writable again, whether ``phase`` is an apply or an undo."""
    import psycopg
    from psycopg import sql

    from golive.db import connect

    assert ctx.config is not None
    with connect(pg_url(ctx.config), what="source database") as conn:
        name = _name(conn)
        if read_only:
            changing = not _database_read_only(conn, name)
            blocked = _refusal(conn, name, changing)
            if blocked is not None:
                raise blocked
            if not changing:  # (the undo of an unfreeze run again: read-only already, its sessions ended then)
                return
        ctx.log(phase, f"database {name}: default_transaction_read_only = {'on' if read_only else 'off'}")
        conn.execute("SET default_transaction_read_only = off")  # this session must write, even when frozen
        setting = "SET default_transaction_read_only = on" if read_only else "RESET default_transaction_read_only"
        try:
            conn.execute(sql.SQL("ALTER DATABASE {} " + setting).format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            me = str(conn.execute("SELECT current_user").fetchone()[0])
            raise GoliveError(f"database {name}: role {me} may not alter it (ALTER DATABASE … {setting} needs its"
                              " owner or a superuser)", hint=f"as a superuser: ALTER DATABASE {_quoted(name)} OWNER TO"
                              f" {_quoted(me)}; or freeze as the owner (the role of source.url)") from None
        if read_only:
            _end_sessions(ctx, conn, name, phase)
