"""A throwaway PostgreSQL cluster on a free loopback port, made with initdb/pg_ctl.

For tests and the sandbox: durability is traded for speed (fsync off), authentication is trust on
loopback, and the cluster lives in a temp directory removed by ``stop()``. PostgreSQL will not run
as root, so when golive runs as root the server runs as the ``postgres`` user (created by Debian's
``postgresql`` package).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from golive.sandbox.owner import Watcher

__all__ = ["PostgresCluster", "find_bin_dir"]


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<v>/bin with initdb, or the directory of initdb on PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]), reverse=True)
    if versions:
        return versions[0].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    def __init__(self, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        """``settings``: postgresql.conf lines beyond the sandbox's own (``{"max_prepared_transactions": "4"}``)."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb) are not installed: apt-get install postgresql")
        self.bin = bin_dir
        self.port = port or _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="golive-pg-"))
        self.data = self.root / "data"
        self._user = "postgres" if os.geteuid() == 0 else None
        self._watcher: Watcher | None = None
        self.settings = dict(settings or {})

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> PostgresCluster:
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 50\n")
            conf.writelines(f"{name} = '{value}'\n" for name, value in self.settings.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-t", "60", "start")
        self._watch_owner()
        return self

    def _watch_owner(self) -> None:
        """pg_ctl detaches the server: if this process dies without stop(), the watcher stops it."""
        pg_ctl = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        if self._user:
            pg_ctl = ["runuser", "-u", self._user, "--", *pg_ctl]
        self._watcher = Watcher(pg_ctl, ["rm", "-rf", str(self.root)])

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql://{auth}127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                               "-d", self.url(database), "-c", sql], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of ``template``'s, when given: no one may be connected to it); its URL."""
        self.psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watcher is not None:  # (stopped here: nothing left for it to do)
            self._watcher.cancel()
            self._watcher = None
