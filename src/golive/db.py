"""The PostgreSQL gateway: the only module that imports ``psycopg``. Connection errors are turned
into golive errors that name the database without its password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from golive.errors import GoliveError, first_line
from golive.secrets import REDACTOR, SecretRef

__all__ = ["connect", "database_name", "open_connection", "require_version", "resolve_url"]


def resolve_url(url: SecretRef | str) -> str:
    return url.resolve(url=True) if isinstance(url, SecretRef) else url


def database_name(url: str) -> str:
    """The database libpq connects to for ``url``: its dbname (path or ``dbname=``), else $PGDATABASE, else the
    user's name (the URL's, else $PGUSER, else the OS user's)."""
    import os
    import pwd

    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return str(params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user")
               or os.environ.get("PGUSER") or pwd.getpwuid(os.geteuid()).pw_name)


def open_connection(url: str, *, autocommit: bool = True, what: str = "database", **kwargs: Any) -> Any:
    """A psycopg connection (the caller closes it); a failure names the database without its password."""
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        raise GoliveError(f"cannot connect to the {what} {REDACTOR(url)}: {first_line(exc)}",
                          hint="check that it runs and that the URL and credentials are right") from None
    # dates and intervals as psycopg reads them (and golive writes them): a database or role set to another style
    # (`ALTER DATABASE … SET DateStyle = 'German'`) would make every date unreadable; for this session only
    conn.execute("SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'")
    if not autocommit:
        conn.commit()  # (kept for the session; the caller's first statement begins its own transaction)
    return conn


@contextmanager
def connect(url: str, *, autocommit: bool = True, what: str = "database") -> Iterator[Any]:
    conn = open_connection(url, autocommit=autocommit, what=what)
    try:
        yield conn
    finally:
        conn.close()


def require_version(conn: Any, major: int, what: str) -> None:
    """A clear error when the server is older than PostgreSQL ``major`` (golive uses its functions)."""
    number = int(conn.execute("SHOW server_version_num").fetchone()[0])
    if number < major * 10000:
        raise GoliveError(f"the {what} runs PostgreSQL {number // 10000}; golive needs {major} or later",
                          hint=f"upgrade it to PostgreSQL {major}+ (Django 5.2 needs 14 too)")
