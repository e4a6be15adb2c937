"""Freeze steps, one per method of ``[source.freeze]``:

- ``file``: a maintenance flag file the old app checks; on = write it, undo = put back what was there.
- ``command``: shell commands ``on``/``off``/``status`` (status exit 0 = frozen, 1 = not frozen, anything
  else = unknown: an error). After on/off, status is asked again for up to ``confirm_timeout`` seconds
  (apps take a moment to reload). The undo runs the opposite command whatever status says: it reverses
  what apply did (a status that disagrees with on must not leave the app in maintenance).
- ``postgres``: ``ALTER DATABASE … SET default_transaction_read_only = on`` and end the other
  sessions (so none keeps writing), refused when a role's own setting would keep it writable; undo restores
  the setting that was there before (ending the sessions again when that is read-only).

``Freeze(on=True)`` freezes, ``Freeze(on=False)`` unfreezes; each is undone by doing the opposite when
the state before was the opposite. A status golive cannot read stops ``freeze on`` and ``freeze off``
before anything is changed (the off command is named, to run by hand).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.errors import ConfigError, GoliveError
from golive.freeze.command import Notify, StatusUnknown, ask_status, last_line, left_running, run, shown
from golive.freeze.postgres import pg_frozen, pg_read_only, pg_refusal, pg_set, pg_url

if TYPE_CHECKING:
    from golive.config.models import Freeze as FreezeConfig
    from golive.config.models import GoliveConfig

__all__ = ["Freeze", "frozen"]

LABEL = {True: "frozen", False: "writable"}
# how often status is asked again while a freeze takes effect
RECHECK_EVERY = 0.5
# (in the state folder) the process group of the on or off command running now: freeze.command.end_leftover
RECORD = "freeze-command.json"


def _config(ctx: StepContext | None, config: GoliveConfig | None = None) -> tuple[GoliveConfig, FreezeConfig]:
    config = config or (ctx.config if ctx else None)
    if config is None:
        raise ConfigError("freeze needs a config")
    source = config.require("source")
    if source.freeze is None:
        raise ConfigError(f"{config.path} has no [source.freeze] section", hint='add [source.freeze] method = "file" …')
    return config, source.freeze


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


def frozen(config: GoliveConfig, *, notify: Notify | None = None, timeout: float | None = None) -> bool:
    """Whether the old application is frozen now, by the configured method (StatusUnknown when the status
    command gives no readable answer; ``timeout``: at most this long for it, instead of status_timeout)."""
    config, freeze = _config(None, config)
    if freeze.method == "file":
        assert freeze.flag_file is not None
        return config.resolve(freeze.flag_file).exists()
    if freeze.method == "command":
        assert freeze.status is not None  # (the config requires it)
        limit = freeze.wait("status_timeout")
        return ask_status(freeze.status, min(timeout or limit, limit), notify)
    return pg_frozen(config)


def _state(config: GoliveConfig, notify: Notify | None = None) -> bool:
    """What the step sets and its undo restores: as :func:`frozen`, but for "postgres" the database's setting
    alone (a role's own setting, not golive's to change, makes :func:`frozen` an error)."""
    if _config(None, config)[1].method == "postgres":
        return pg_read_only(config)
    return frozen(config, notify=notify)


def _as_left(ctx: StepContext, now: bool) -> bool:
    """The freeze as the freeze undos planned ahead of this one in the same rollback leave it (`rollback
    --through`: a `freeze off` newer than the `freeze on` is undone first, freezing again); else as it is now."""
    from golive.core.runner import UNDONE_FIRST

    states = [bool(p.record["frozen"]) for p in ctx.options.get(UNDONE_FIRST, [])
              if p.step.kind == Freeze.kind and p.record and "frozen" in p.record]
    return states[-1] if states else now


def _leftover(config: GoliveConfig, freeze: FreezeConfig) -> str:
    """What a plan adds when the on or off command a stopped golive left running is ended first (run does)."""
    left = left_running(config.state_dir / RECORD) if freeze.method == "command" else None
    return "" if left is None else (f" (first ending the {left[1]} command a stopped golive left running, process"
                                    f" group {left[0]})")


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
        on = bool(self.params["on"])
        try:
            state = _state(config, notify=ctx.notice)
        except StatusUnknown as exc:  # (never act on a state golive cannot read: on could not be checked)
            way = (f"or run the off command by hand: `{shown(freeze.off)}`" if not on and freeze.off else
                   "a freeze golive cannot check is not made")
            raise StatusUnknown(f"cannot tell whether the old application is frozen: {exc.message}; nothing was"
                                " changed", hint=f"{exc.hint}; {way}") from None
        if freeze.method == "postgres" and on:  # (found now, before anything is changed)
            blocked = pg_refusal(config, changing=not state)
            if blocked is not None:
                raise blocked
        return [Change(f"old application ({freeze.method})" + _leftover(config, freeze), LABEL[state], LABEL[on])]

    def snapshot(self, ctx: StepContext) -> Record:
        config, freeze = _config(ctx)
        record: dict[str, Any] = {"method": freeze.method, "frozen": _state(config, notify=ctx.notice)}
        if freeze.method == "postgres":  # (named by the by-hand line if the undo cannot reach it)
            from golive.db import database_name

            record["database"] = database_name(pg_url(config))
        if freeze.method == "command":  # (likewise: the exact command to run by hand)
            record.update(on_command=freeze.on, off_command=freeze.off)
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
        config, freeze = _config(ctx)
        phase = "undo" if restore else "apply"
        if freeze.method == "file":
            path = Path(before["flag_file"])
            text = before["flag_text"] if restore else None
            try:
                if on:
                    ctx.log(phase, f"flag file {path}: write")
                    path.write_text(text or f"frozen by golive at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")
                else:
                    ctx.log(phase, f"flag file {path}: remove")
                    path.unlink(missing_ok=True)
            except OSError as exc:
                raise GoliveError(f"flag file {path}: {exc.strerror or exc}",
                                  hint="check [source.freeze].flag_file and its folder's permissions") from None
        elif freeze.method == "command":
            command = freeze.on if on else freeze.off
            assert command is not None
            ctx.log(phase, f"run the {'on' if on else 'off'} command `{shown(command)}`")
            done = run(command, "on" if on else "off", freeze.wait("timeout"), ctx.notice,
                       record=config.state_dir / RECORD)
            if done.returncode != 0:
                raise GoliveError(f"freeze command `{shown(command)}` exited {done.returncode}: {last_line(done)}",
                                  hint="fix the command or the app")
        else:
            pg_set(ctx, on, phase)

    def _runs_on_undo(self, record: Record) -> bool:
        """Whether the undo runs a command whatever status says: apply ran the one that changed the state."""
        return record.get("method") == "command" and bool(record["frozen"]) != bool(self.params["on"])

    def undo(self, ctx: StepContext, record: Record) -> None:
        method = record.get("method")
        # command: exact, not state-based (a status that disagrees with on must not keep the old app in
        # maintenance): the opposite of what apply ran, which must be safe to run again
        if method == "file" or self._runs_on_undo(record):
            self._set(ctx, bool(record["frozen"]), record, restore=True)
        elif method == "postgres":
            config, _ = _config(ctx)
            # (read-only again: pg_set refuses what would keep it writable, even when the setting is back)
            if record["frozen"] or pg_read_only(config):
                self._set(ctx, bool(record["frozen"]), record, restore=True)

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        """From the state now (someone may have unfrozen by hand since) back to the state before the run."""
        config, freeze = _config(ctx)
        try:
            now = _state(config)
        except GoliveError:  # (the source unreachable: what the journal says; the undo itself will say more)
            return super().undo_plan(ctx, changes, record)
        now = _as_left(ctx, now)
        back = bool(record["frozen"])
        what = f"old application ({freeze.method})"
        if self._runs_on_undo(record) and now == back:
            command = freeze.off if not back else freeze.on
            what += f" (status says {LABEL[now]} already; `{shown(command or [])}` runs all the same)"
        elif now != bool(self.params["on"]):
            what += " (changed since the run)"
        return [Change(what + _leftover(config, freeze), LABEL[now], LABEL[back])]

    def check(self, ctx: StepContext) -> list[str]:
        config, freeze = _config(ctx)
        want = bool(self.params["on"])
        if freeze.method != "command":
            try:
                return [] if frozen(config) == want else [f"the old application is not {LABEL[want]} ({freeze.method})"]
            except GoliveError as exc:  # (postgres: read-only, but a role's own setting keeps it writable)
                return [str(exc)]
        return self._confirm(ctx, freeze, want)

    def _confirm(self, ctx: StepContext, freeze: FreezeConfig, want: bool) -> list[str]:
        """Ask status until it agrees, for at most confirm_timeout seconds (the app may reload first)."""
        assert ctx.config is not None and freeze.status is not None
        command, status = shown((freeze.on if want else freeze.off) or []), shown(freeze.status)
        wait = freeze.wait("confirm_timeout")
        deadline, waited = time.monotonic() + wait, False
        while True:
            try:
                if frozen(ctx.config, notify=ctx.notice) == want:
                    return []
                answer = f"`{status}` still exits {1 if want else 0} ({'not frozen' if want else 'frozen'})"
            except StatusUnknown as exc:  # (an app reloading may not answer for a moment: asked again too)
                answer = exc.message
            if time.monotonic() >= deadline:
                break
            if not waited:
                waited = True
                ctx.notice(f"waiting up to {wait:g}s ([source.freeze].confirm_timeout) for `{status}`"
                           f" to say {'frozen' if want else 'not frozen'} after `{command}`")
            time.sleep(RECHECK_EVERY)
        return [f"the old application is not {LABEL[want]} {wait:g}s after `{command}` succeeded:"
                f" {answer} — make status check what {'on' if want else 'off'} changes, or raise"
                " [source.freeze].confirm_timeout if the app takes longer"]

    def manual_undo(self, record: Record) -> list[str]:
        state = LABEL[bool(record["frozen"])]
        method = record.get("method")
        if method == "postgres" and record.get("database"):
            name = '"' + str(record["database"]).replace('"', '""') + '"'
            setting = "SET default_transaction_read_only = on" if record["frozen"] else \
                "RESET default_transaction_read_only"
            return [f"make the old application {state} again: on the source server, as the owner of database"
                    f" {record['database']}, run `ALTER DATABASE {name} {setting};`"
                    + (" and end its open sessions" if record["frozen"] else " (its new sessions can then write)")]
        if method == "file" and record.get("flag_file"):
            path = str(record["flag_file"])
            if record["frozen"]:
                return [f"make the old application frozen again: put its flag file back: {path}"
                        f" (e.g. `touch {shown([path])}`)"]
            return [f"make the old application writable again: remove its flag file: `rm -f {shown([path])}`"]
        command = record.get("on_command" if record["frozen"] else "off_command")
        if method == "command" and command:
            return [f"make the old application {state} again: run the {'on' if record['frozen'] else 'off'}"
                    f" command `{shown(command)}`"]
        return [f"make the old application {state} again by its {method} method"]
