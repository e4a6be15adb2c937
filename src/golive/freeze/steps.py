"""Freeze steps, one per method of ``[source.freeze]``:

- ``file``: a maintenance flag file the old app checks; on = write it, undo = put back what was there.
- ``command``: shell commands ``on``/``off``/``status`` (status exit 0 = frozen).
- ``postgres``: ``ALTER DATABASE … SET default_transaction_read_only = on`` and end the other
  sessions (so none keeps writing); undo restores the setting that was there before.

``Freeze(on=True)`` freezes, ``Freeze(on=False)`` unfreezes; both are undone by doing the opposite
only if the state before was the opposite.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.errors import ConfigError, GoliveError

if TYPE_CHECKING:
    from golive.config.models import Freeze as FreezeConfig
    from golive.config.models import GoliveConfig

__all__ = ["Freeze", "frozen"]


def _config(ctx: StepContext | None, config: GoliveConfig | None = None) -> tuple[GoliveConfig, FreezeConfig]:
    config = config or (ctx.config if ctx else None)
    if config is None:
        raise ConfigError("freeze needs a config")
    source = config.require("source")
    if source.freeze is None:
        raise ConfigError(f"{config.path} has no [source.freeze] section", hint='add [source.freeze] method = "file" …')
    return config, source.freeze


def _run(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GoliveError(f"freeze {what} command `{' '.join(command)}` could not run: {exc}",
                          hint=f"fix [source.freeze].{what}") from None


def _pg_url(config: GoliveConfig) -> str:
    """The source's URL for method "postgres": a SQLite source (from "env:NAME", unknown until now) is a
    config error, not a connection that fails."""
    from golive.db import resolve_url

    url = resolve_url(config.require("source").url)
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f'source.freeze.method: "postgres" needs a postgresql:// source; source.url'
                          f' ({config.require("source").url}) is {url.partition(":")[0]}',
                          hint='fix source.url, or use method "file" or "command"')
    return url


def _pg_read_only(config: GoliveConfig) -> bool:
    from golive.db import connect, database_name

    url = _pg_url(config)
    with connect(url, what="source database") as conn:
        # set by golive (`on`) or by hand in any spelling PostgreSQL takes for a boolean (true, yes, 1, ...):
        # the setting is stored as written, and a boolean's text input reads every such spelling
        # (PostgreSQL checked the value when it was set: the cast cannot fail)
        row = conn.execute(
            "SELECT coalesce(bool_or(substr(c, length('default_transaction_read_only=') + 1)::boolean), false)"
            " FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setrole = 0 AND s.setdatabase = (SELECT oid"
            " FROM pg_database WHERE datname = %s) AND lower(c) LIKE 'default\\_transaction\\_read\\_only=%%'",
            (database_name(url),)).fetchone()
        return bool(row[0])


def _check_method(config: GoliveConfig) -> None:
    """What can be known wrong before a freeze runs: a flag file whose folder does not exist."""
    config, freeze = _config(None, config)
    if freeze.method == "file":
        assert freeze.flag_file is not None
        path = config.resolve(freeze.flag_file)
        if not path.parent.is_dir():
            raise ConfigError(f"[source.freeze].flag_file {path}: its folder {path.parent} does not exist",
                              hint="fix flag_file: it must be the path the old application checks (the folder is not"
                                   " made: a flag the app never looks at freezes nothing)")


def frozen(config: GoliveConfig) -> bool:
    """Whether the old application is frozen now, by the configured method."""
    config, freeze = _config(None, config)
    if freeze.method == "file":
        assert freeze.flag_file is not None
        return config.resolve(freeze.flag_file).exists()
    if freeze.method == "command":
        if not freeze.status:
            raise ConfigError('method "command" needs status = [...] to tell whether writes are frozen')
        return _run(freeze.status, "status").returncode == 0
    return _pg_read_only(config)


def _pg_set(ctx: StepContext, read_only: bool, end_sessions: bool) -> None:
    from psycopg import sql

    from golive.db import connect, database_name

    assert ctx.config is not None
    url = _pg_url(ctx.config)
    name = database_name(url)
    with connect(url, what="source database") as conn:
        ctx.log("apply" if read_only else "undo", f"database {name}: default_transaction_read_only = "
                f"{'on' if read_only else 'off'}")
        conn.execute("SET default_transaction_read_only = off")  # this session must write, even when frozen
        setting = "SET default_transaction_read_only = on" if read_only else "RESET default_transaction_read_only"
        conn.execute(sql.SQL("ALTER DATABASE {} " + setting).format(sql.Identifier(name)))
        if end_sessions:
            ended = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                 " WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone()
            ctx.log("apply", f"database {name}: ended {ended[0]} open session(s)")


def _as_left(ctx: StepContext, now: bool) -> bool:
    """The freeze as the freeze undos planned ahead of this one in the same rollback leave it (`rollback
    --through`: a `freeze off` newer than the `freeze on` is undone first, freezing again); else as it is now."""
    from golive.core.runner import UNDONE_FIRST

    states = [bool(p.record["frozen"]) for p in ctx.options.get(UNDONE_FIRST, [])
              if p.step.kind == Freeze.kind and p.record and "frozen" in p.record]
    return states[-1] if states else now


class Freeze(Step):
    kind = "freeze.set"

    def __init__(self, on: bool = True) -> None:
        super().__init__(on=on)

    @property
    def title(self) -> str:
        return "freeze writes" if self.params["on"] else "unfreeze writes"

    def plan(self, ctx: StepContext) -> list[Change]:
        config, freeze = _config(ctx)
        _check_method(config)
        state = frozen(config)
        label = {True: "frozen", False: "writable"}
        return [Change(f"old application ({freeze.method})", label[state], label[self.params["on"]])]

    def snapshot(self, ctx: StepContext) -> Record:
        config, freeze = _config(ctx)
        record: dict[str, Any] = {"method": freeze.method, "frozen": frozen(config)}
        if freeze.method == "postgres":  # (named by the by-hand line if the undo cannot reach it)
            from golive.db import database_name

            record["database"] = database_name(_pg_url(config))
        if freeze.method == "file":
            assert freeze.flag_file is not None
            path = config.resolve(freeze.flag_file)
            record["flag_file"] = str(path)
            record["flag_text"] = path.read_text() if path.exists() else None
        return record

    def apply(self, ctx: StepContext, before: Record) -> Record:
        self._set(ctx, bool(self.params["on"]), before)
        return before

    def _set(self, ctx: StepContext, on: bool, before: Record, restore: bool = False) -> None:
        _, freeze = _config(ctx)
        if freeze.method == "file":
            path = Path(before["flag_file"])
            text = before["flag_text"] if restore else None
            try:
                if on:
                    ctx.log("apply", f"flag file {path}: write")
                    path.write_text(text or f"frozen by golive at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")
                else:
                    ctx.log("apply", f"flag file {path}: remove")
                    path.unlink(missing_ok=True)
            except OSError as exc:
                raise GoliveError(f"flag file {path}: {exc.strerror or exc}",
                                  hint="check [source.freeze].flag_file and its folder's permissions") from None
        elif freeze.method == "command":
            command = freeze.on if on else freeze.off
            assert command is not None
            done = _run(command, "on" if on else "off")
            if done.returncode != 0:
                raise GoliveError(f"freeze command `{' '.join(command)}` exited {done.returncode}:"
                                  f" {(done.stderr or done.stdout).strip()[:200]}", hint="fix the command or the app")
        else:
            _pg_set(ctx, on, end_sessions=on and not restore)

    def undo(self, ctx: StepContext, record: Record) -> None:
        config, _ = _config(ctx)
        if frozen(config) != record["frozen"] or record.get("method") == "file":
            self._set(ctx, bool(record["frozen"]), record, restore=True)

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        """From the state now (someone may have unfrozen by hand since) back to the state before the run."""
        config, freeze = _config(ctx)
        try:
            now = frozen(config)
        except GoliveError:  # (the source unreachable: what the journal says; the undo itself will say more)
            return super().undo_plan(ctx, changes, record)
        now = _as_left(ctx, now)
        label = {True: "frozen", False: "writable"}
        moved = now != bool(self.params["on"])
        return [Change(f"old application ({freeze.method})" + (" (changed since the run)" if moved else ""),
                       label[now], label[bool(record["frozen"])])]

    def check(self, ctx: StepContext) -> list[str]:
        config, freeze = _config(ctx)
        if frozen(config) != self.params["on"]:
            return [f"the old application is not {'frozen' if self.params['on'] else 'writable'} ({freeze.method})"]
        return []

    def manual_undo(self, record: Record) -> list[str]:
        state = "frozen" if record["frozen"] else "writable"
        if record.get("method") == "postgres" and record.get("database"):
            name = '"' + str(record["database"]).replace('"', '""') + '"'
            setting = "SET default_transaction_read_only = on" if record["frozen"] else \
                "RESET default_transaction_read_only"
            return [f"make the old application {state} again: on the source server, as the owner of database"
                    f" {record['database']}, run `ALTER DATABASE {name} {setting};`"
                    + (" and end its open sessions" if record["frozen"] else " (its new sessions can then write)")]
        return [f"make the old application {state} again by its {record['method']} method"]
