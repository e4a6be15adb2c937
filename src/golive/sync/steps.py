"""The sync step: back up the target (pg_dump), then sync and verify in one target transaction.

Its undo leaves the new database as it is (rows users wrote there since are not thrown away),
unless the rollback asks for data (`golive rollback --restore-data`): then the backup taken before
the sync is restored.
"""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.errors import ConfigError, GoliveError, UndoFailed, first_line

if TYPE_CHECKING:
    from golive.config.models import GoliveConfig
    from golive.sync.engine import SyncEngine
    from golive.sync.mapping import TableMap
    from golive.sync.media import MediaUndo

__all__ = ["Sync", "engine_for"]


def engine_for(config: GoliveConfig, options: dict[str, Any] | None = None) -> tuple[SyncEngine, tuple[TableMap, ...]]:
    from golive.db import resolve_url
    from golive.sync.engine import SyncEngine
    from golive.sync.mapping import load_mapping

    options = options or {}
    sync = config.sync
    mapping = load_mapping(config.resolve(sync.mapping if sync else Path("mapping.toml")))
    tables = mapping.select(options.get("tables"))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    engine = SyncEngine(resolve_url(config.require("source").url), resolve_url(config.require("target").url), mapping,
                        max_rejects=options.get("max_rejects", sync.max_rejects if sync else 0),
                        reject_file=config.state_dir / "rejects" / f"{stamp}.ndjson", progress=options.get("progress"),
                        media_roots=tuple((config.resolve(m.from_), config.resolve(m.to)) for m in sync.media)
                        if sync else (),
                        lock_timeout=config.require("target").lock_timeout,
                        source_wins=bool(options.get("source_wins")), overwritten_dir=config.state_dir / "overwritten")
    return engine, tables


def _written_by_others(conn: Any, tables: list[TableMap]) -> dict[str, int]:
    """For the plan: rows of each table whose version golive did not write (golive.sync.conflicts), the new
    application's own included; nothing when golive does not keep track yet (a scan per table: 0.2 s a
    million rows)."""
    from golive.sync import conflicts
    from golive.sync.source import ident

    if conn.execute("SELECT to_regclass('golive.tracking')").fetchone()[0] is None:
        return {}
    track = conflicts.tracking(conn)
    if track is None:
        return {}
    counts = {}
    for t in tables:
        where, params = track.condition(track.carried(conn, t.target))
        counts[t.target] = int(conn.execute(f"SELECT count(*) FROM {ident(t.target)} t{where}", params).fetchone()[0])
    return counts


def _made_there(conn: Any, source: Any, table: TableMap, types: dict[str, Any]) -> list[int]:
    """For the plan: keys the source holds that rows made in the new database hold too (a tester's row after the
    rehearsal took the id the old application hands out next) — the sync stops on them; at most 6, in order. Only
    for a table keyed by one integer column that golive tracks, among the rows it did not write (usually few)."""
    from golive.sync import conflicts, state
    from golive.sync.engine import _int_key
    from golive.sync.source import ident
    from golive.sync.verify import as_int_key

    track = conflicts.tracking(conn)
    if track is None or not _int_key(table, types):
        return []
    before = state.load(conn, table.target, int_key=True)
    if before is None:
        return []
    where, params = track.condition(track.carried(conn, table.target))
    key = ident(table.target_key[0])
    theirs = [k for (k,) in conn.execute(f"SELECT t.{key} FROM {ident(table.target)} t{where} ORDER BY 1", params)
              if k not in before.keys][:1000]
    if not theirs:
        return []
    found: list[int] = []
    for batch in source.batches(table, columns=ident(table.key[0]), ranges=[(k, k + 1) for k in theirs]):
        found += (as_int_key(row[0]) for row in batch)
    return sorted(found)[:6]


def _config(ctx: StepContext) -> GoliveConfig:
    if ctx.config is None:
        raise ConfigError("sync needs a config with [source], [target] and [sync]")
    return ctx.config


def _key_columns(config: GoliveConfig) -> dict[str, tuple[str, ...]]:
    """Each mapped target table's key columns (none if the mapping no longer loads: deleted keys unnamed)."""
    from golive.sync.mapping import load_mapping

    sync = config.sync
    try:
        mapping = load_mapping(config.resolve(sync.mapping if sync else Path("mapping.toml")))
    except GoliveError:
        return {}
    return {t.target: t.target_key for t in mapping.tables}


class Sync(Step):
    kind = "sync.run"

    def __init__(self, tables: list[str] | None = None, full: bool = False) -> None:
        super().__init__(tables=tables, full=full)

    @property
    def title(self) -> str:
        return "sync " + (", ".join(self.params["tables"]) if self.params["tables"] else "all tables")

    def plan(self, ctx: StepContext) -> list[Change]:
        """Per table: what golive synced there last (its state in the target), and what this sync reads."""
        from golive.db import connect, require_version
        from golive.sync import state
        from golive.sync.backup import held_error, read_only, read_only_error, writes_are_held
        from golive.sync.checks import parents_first
        from golive.sync.conflicts import describe
        from golive.sync.media import pending
        from golive.sync.source import Source, unlocked

        engine, tables = engine_for(_config(ctx), {"tables": self.params["tables"]})
        last: dict[str, tuple[Any, ...]] = {}
        others: dict[str, int] = {}
        with connect(engine.target_url, what="target database") as target:  # (unreachable: said before any prompt)
            require_version(target, 14, "target database")
            if writes_are_held(target):
                raise held_error()
            if read_only(target):
                raise read_only_error()
            types = {t.target: engine.target_types(target, t) for t in tables}  # a table not migrated yet, a column
            parents_first(target, tables)  # renamed: said here, not after the prompt
            if state.exists(target):
                last = {row[0]: row[1:] for row in target.execute(
                    "SELECT target, synced_count, mode, synced_at, watermark FROM golive.sync_state")}
                others = _written_by_others(target, [t for t in tables if t.target in last])
            changes = []
            with unlocked(engine.source_url), contextlib.closing(Source(engine.source_url)) as source:
                for t in tables:
                    source.check(t)
                    count, mode, when, watermark = last.get(t.target, (None, None, None, None))
                    before = None if mode is None else \
                        f"{count if count is not None else '?'} rows synced ({mode}, {when:%Y-%m-%d %H:%M:%S %Z})"
                    how = "incremental" if before is not None and t.changed and watermark is not None and \
                        not self.params.get("full") else "full"
                    written = f", {others[t.target]} row(s) written in the new database since golive's syncs (a" \
                        " sync stops before overwriting a mapped column one of them changed)" if others.get(t.target) \
                        else ""
                    clash = _made_there(target, source, t, types[t.target]) if others.get(t.target) else []
                    if clash:  # (found before the freeze window, not in it)
                        shown = ", ".join(map(str, clash[:5])) + (", …" if len(clash) > 5 else "")
                        written += f"; rows made there hold keys the source has too ({t.target_key[0]} {shown}): the" \
                            " sync stops on them — delete them there or give them other keys first"
                    changes.append(Change(f"table {t.label()}", before + written if before else before,
                                          f"{source.count(t)} source rows, {how}, verified"))
        config = _config(ctx)
        for i, pair in enumerate(config.sync.media if config.sync else []):  # (copied first, by the run)
            manifest = config.state_dir / f"media-manifest-{i}.json"
            files, fresh, edited = pending(config.resolve(pair.from_), config.resolve(pair.to), manifest)
            then = "overwritten, theirs kept first" if ctx.options.get("source_wins") else \
                "the sync stops before copying (--source-wins overwrites them, keeping theirs first)"
            stop = f"; {len(edited)} file(s) in {pair.to} changed since golive copied them (or not golive's):" \
                f" {describe(edited)} — {then}" if edited else ""
            changes.append(Change(f"media {pair.from_} -> {pair.to}", "copied before" if manifest.exists() else None,
                                  f"{files} file(s), {fresh} new or changed, verified{stop}"))
        return changes

    def snapshot(self, ctx: StepContext) -> Record:
        from golive.db import resolve_url
        from golive.sync.backup import dump

        config = _config(ctx)
        target = config.require("target")
        backup = dump(resolve_url(target.url), config.state_dir / "backups", target.lock_timeout)
        ctx.log("apply", f"backup of the target: {backup.path}")
        # the dump's snapshot: what a restore would lose is what it did not see (golive.sync.reconcile)
        return {"backup": str(backup.path), "backup_snapshot": backup.snapshot}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        shown = ctx.options.get("progress")

        def progress(table: str, done: int, total: int, phase: str = "copy") -> None:
            if phase == "copy":
                ctx.checkpoint("copy")  # a crash here is a crash in the middle of a COPY
            if shown is not None:
                shown(table, done, total, phase)

        engine, tables = engine_for(_config(ctx), {**ctx.options, "progress": progress, "tables": self.params["tables"]})
        undo: list[MediaUndo] = []  # (the media copied first; put back if the database's part fails)
        try:
            media = self._media(ctx, undo)
            results = engine.run(tables, full=bool(self.params.get("full")))
        except BaseException as exc:
            self._put_media_back(ctx, undo, exc)
            raise
        for u in undo:
            u.discard()
        for r in results:
            ctx.log("apply", f"table {r.table} ({r.mode}): read {r.read}, inserted {r.inserted}, updated {r.updated},"
                    f" deleted {r.deleted}, unchanged {r.unchanged}, rejected {r.rejected}, verified")
            if r.note:
                ctx.notice(f"table {r.table}: {r.note}")
            if r.hash_formats:
                ctx.log("apply", f"table {r.table}: password hashes by format: "
                        + ", ".join(f"{k} {v}" for k, v in sorted(r.hash_formats.items())))
        for table, path in engine.overwritten.items():
            ctx.notice(f"table {table}: rows changed in the new database since golive wrote them were overwritten"
                       f" (--source-wins); their versions are kept in {path}")
        ctx.options["results"], ctx.options["media"] = results, media
        return {**before, "results": [r.as_dict() for r in results], "media": [m.as_dict() for m in media],
                "sync_transaction": engine.xact}

    def _media(self, ctx: StepContext, undo: list[MediaUndo]) -> list[Any]:
        """Copy the media folders first (the rows about to arrive point at the files), recording in ``undo``
        what was replaced or added; someone else's files are kept first (--source-wins) or stop the sync."""
        from golive.sync.conflicts import stamp
        from golive.sync.media import MediaUndo, sync_media

        config = _config(ctx)
        done = []
        shown, kept = ctx.options.get("progress"), config.state_dir / "overwritten" / stamp()
        for i, pair in enumerate(config.sync.media if config.sync else []):
            label = f"media {pair.from_}"

            def progress(done: int, total: int, label: str = label) -> None:
                if shown is not None:
                    shown(label, done, total)

            saved = config.state_dir / "media-undo" / str(i)
            shutil.rmtree(saved, ignore_errors=True)  # (a crashed sync's: golive's older copies, nobody's edits)
            folder = kept / ("media" if i == 0 else f"media-{i}")
            undo.append(MediaUndo(saved, kept=folder))
            result = sync_media(config.resolve(pair.from_), config.resolve(pair.to),
                                config.state_dir / f"media-manifest-{i}.json", progress,
                                source_wins=bool(ctx.options.get("source_wins")), kept=folder, undo=undo[-1],
                                full=bool(self.params.get("full")))
            ctx.log("apply", f"media {pair.from_} -> {pair.to}: {result.files} file(s), {result.copied} copied"
                    f" ({result.bytes_copied} bytes), {result.unchanged} unchanged, verified")
            for note in result.notes:
                ctx.notice(f"media {pair.from_}: {note}")
            if result.overwritten:
                ctx.notice(f"media {pair.to}: {len(result.overwritten)} file(s) changed there since golive copied them"
                           f" were overwritten (--source-wins); their versions are kept in {folder}")
            done.append(result)
        return done

    @staticmethod
    def _put_media_back(ctx: StepContext, undo: list[MediaUndo], exc: BaseException) -> None:
        """The sync failed after copying media: the media folders as they were, or a line saying what is not."""
        for u in reversed(undo):
            problems = u.put_back()
            if not problems:
                ctx.log("undo", f"media: {len(u.replaced)} replaced file(s) put back, {len(u.added)} added removed")
                continue
            message = (f"{first_line(exc)}; and {len(problems)} media file(s) the sync had copied could not be put"
                       f" back (first: {problems[0]})")
            if not isinstance(exc, Exception):
                ctx.notice(message)
                continue
            raise GoliveError(message, hint=f"their versions before the sync are in {u.saved}: put them back by"
                              " hand") from exc

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        backup = Path(record.get("backup", "?")).name
        written, some = self._written_since(ctx, record)
        listed, first = (", listed for reconciliation", ", kept first") if some else ("", "")
        if not ctx.options.get("restore_data"):
            if self._restore_committed(ctx, record):
                return [Change("target database", f"the backup {backup}'s data, read-only (an interrupted data"
                               " rollback had restored it)", f"the backup {backup}'s data, left as it is; writes"
                               " allowed again")]
            kept = f"left as it is{f'; {written}{listed}' if written else ''}; `golive rollback --restore-data`" \
                   f" would restore the backup {backup}"
            return [Change("target database", kept, kept)]
        return [Change("target database", f"as it is now{f'; {written}{first}' if written else ''}",
                       f"the backup {backup} ({self._held(ctx)}; what it replaces is kept first in"
                       f" {ctx.state_dir / 'reconcile'}/)")]

    @staticmethod
    def _held(ctx: StepContext) -> str:
        """For the plan of a data rollback: whether writes will be held off meanwhile (the role may), or why not."""
        from golive.db import connect, resolve_url
        from golive.sync.backup import hold_refused

        try:
            with connect(resolve_url(_config(ctx).require("target").url), what="target database") as conn:
                refused = hold_refused(conn)
        except Exception as exc:  # (the restore itself says, if it comes to it)
            return f"writes held off meanwhile if the role may (not checked: {first_line(exc)})"
        if refused is None:
            return "writes held off meanwhile, its sessions ended"
        return (f"writes NOT held off: {refused} — stop the new application first: what it writes between the keeping"
                " and the restore is lost")

    @staticmethod
    def _written_since(ctx: StepContext, record: Record) -> tuple[str, bool]:
        """For the plan: how much users wrote since the sync, which the rollback keeps ("" if not known), and
        whether there is any."""
        from golive.db import resolve_url
        from golive.sync.reconcile import count_written

        if "results" not in record or record.get("backup_snapshot") is None:
            return "", False  # (no sync committed, or a backup that cannot tell rows apart)
        target = _config(ctx).require("target")
        after = Sync._restored_first(ctx)
        try:
            counts = count_written(resolve_url(target.url), record["backup_snapshot"], record.get("sync_transaction"),
                                   target.lock_timeout, after=after)
        except Exception as exc:  # (a plan that cannot count says so; the rollback is not held up by it)
            return f"rows written since the sync not counted ({first_line(exc)})", False
        since = "since the sync" + (" and brought back by the newer sync's restore before it" if after else "")
        if not counts:
            return f"no row written {since}", False
        return (f"{sum(counts.values())} row(s) written {since}"
                f" ({', '.join(f'{t} {n}' for t, n in sorted(counts.items()))})"), True

    @staticmethod
    def _restored_first(ctx: StepContext) -> str | None:
        """The snapshot of the backup the same data rollback restores just before this one (a newer sync's), if
        any: the target this undo finds is that backup's, so what it keeps is counted from what that brings back."""
        from golive.core.runner import UNDONE_FIRST

        if not ctx.options.get("restore_data"):
            return None
        newer = [p.record for p in ctx.options.get(UNDONE_FIRST, []) if p.step.kind == Sync.kind and p.record]
        return str(newer[-1]["backup_snapshot"]) if newer and newer[-1].get("backup_snapshot") else None

    def undo(self, ctx: StepContext, record: Record) -> None:
        from golive.db import resolve_url
        from golive.sync.backup import restore, writes_held
        from golive.sync.reconcile import Kept, keep

        if not ctx.options.get("restore_data"):
            ctx.log("undo", f"the new database is left as it is; the backup taken before the sync stays in"
                    f" {record['backup']}, but with this sync undone `golive rollback --restore-data` no longer"
                    " restores it")
            # (a sync that committed: users may have written since, for the old app to take; unless an interrupted
            # data rollback restored the backup, keeping what they wrote first)
            if "results" in record and not self._release(ctx, record):
                self._reconcile(ctx, record)
            return
        config = _config(ctx)
        url, backup = resolve_url(config.require("target").url), Path(record["backup"])
        if not backup.exists():
            raise UndoFailed(f"backup {backup} is gone; nothing was restored", manual=[
                f"put the backup back at {backup}, then run `golive rollback --restore-data --yes` again; or keep the"
                " new database's data: `golive rollback --yes` (it lists what users wrote since the sync in"
                f" {config.state_dir / 'reconcile'}/)"])
        wait = config.require("target").lock_timeout
        kept: Kept | None = None
        # nothing users wrote is lost: writes are held off (new sessions read-only, open ones ended), what the
        # restore replaces is kept (a failure here stops it), then the backup restored, then writes allowed again
        try:
            with writes_held(url) as refused:
                if refused:
                    ctx.notice(f"writes to the target could not be held off for the restore ({refused}): what the new"
                               " application writes between the keeping and the restore is lost — stop it first")
                else:
                    ctx.log("undo", "writes to the target held off: new sessions read-only, open ones ended")
                kept = keep(url, record.get("backup_snapshot"), record.get("sync_transaction"), _key_columns(config),
                            config.state_dir / "reconcile", wait, dumps_kept=config.require("target").backup_keep,
                            checkpoint=lambda: ctx.checkpoint("keep"))
                ctx.notice(f"kept before the restore: {kept.describe()}")
                ctx.log("undo", f"restore the target from {backup}")
                ctx.checkpoint("restore")
                restore(url, backup, wait)
        except Exception as exc:  # (the restore is one transaction: whatever failed, nothing was restored)
            raise UndoFailed(exc.message if isinstance(exc, GoliveError) else first_line(exc),
                             hint=exc.hint if isinstance(exc, GoliveError) else None,
                             manual=self._again(config.state_dir, record, exc, kept)) from exc
        if not refused:
            ctx.log("undo", "writes to the target allowed again")

    def _again(self, state_dir: Path, record: Record, exc: Exception, kept: Any) -> list[str]:
        """What to do after a data rollback that failed before anything was restored: golive's restore again,
        which keeps what users wrote first — never a restore by hand that would throw it away unkept."""
        from golive.sync.backup import NoSpace

        fix = (f"free space in {exc.directory} (or set [project].state_dir elsewhere)" if isinstance(exc, NoSpace)
               else "fix what the error names")
        again = [f"{fix}, then run `golive rollback --restore-data --yes` again (nothing was restored: it keeps what"
                 " users wrote since the sync, then restores"
                 + (f"; what they wrote up to this attempt is kept in {kept.directory})" if kept and kept.directory
                    else ")")]
        if kept is None:  # (not even kept: no restore by hand, which would throw the rows away)
            return [*again, "or keep the new database's data instead: `golive rollback --yes` (it lists what users"
                            f" wrote since the sync in {state_dir / 'reconcile'}/)"]
        return again + self.manual_undo(record)[1:]

    @staticmethod
    def _release(ctx: StepContext, record: Record) -> bool:
        """Writes allowed again if an interrupted data rollback left them held off (this one leaves the data),
        saying whether its restore had committed (golive killed between the commit and allowing writes); True
        then."""
        from golive.db import connect, resolve_url
        from golive.sync.backup import release_writes

        try:
            with connect(resolve_url(_config(ctx).require("target").url), what="target database") as conn:
                restored = Sync._restored(conn, record)
                released = release_writes(conn)
        except GoliveError:
            return False  # (unreachable: nothing held, or nothing to do about it now; status says so)
        if released and restored:
            ctx.notice("an interrupted data rollback had left the target read-only: writes are allowed again (its"
                       f" restore had committed: the target holds the data of the backup {Path(record['backup']).name};"
                       " what users wrote before it was kept first, in the newest folder of"
                       f" {ctx.state_dir / 'reconcile'}/)")
        elif released:
            ctx.notice("an interrupted data rollback had left the target read-only: writes are allowed again"
                       + (" (its data was not restored)" if record.get("sync_transaction") is not None else ""))
        return released and restored

    @staticmethod
    def _restore_committed(ctx: StepContext, record: Record) -> bool:
        """For the plan: whether an interrupted data rollback left writes held off after its restore committed."""
        from golive.db import connect, resolve_url
        from golive.sync.backup import writes_are_held

        try:
            with connect(resolve_url(_config(ctx).require("target").url), what="target database") as conn:
                return writes_are_held(conn) and Sync._restored(conn, record)
        except GoliveError:
            return False

    @staticmethod
    def _restored(conn: Any, record: Record) -> bool:
        """Whether a restore has taken the sync's data back since: golive's state in the target no longer knows
        the sync's transaction (a backup taken before the sync has it so, or has no state at all)."""
        if record.get("sync_transaction") is None:
            return False  # (not known: not claimed either way)
        if conn.execute("SELECT to_regclass('golive.writers')").fetchone()[0] is None:
            return True
        return not conn.execute("SELECT EXISTS (SELECT FROM golive.writers WHERE xact = %s)",
                                (int(record["sync_transaction"]),)).fetchone()[0]

    @staticmethod
    def _reconcile(ctx: StepContext, record: Record) -> None:
        """A rollback that leaves the data: the rows written since the sync, listed for reconciliation with
        the old application (they stay in the new database, so a failure here only says so)."""
        from golive.db import resolve_url
        from golive.sync.reconcile import keep

        config = _config(ctx)
        target = config.require("target")
        try:
            kept = keep(resolve_url(target.url), record.get("backup_snapshot"), record.get("sync_transaction"),
                        _key_columns(config), config.state_dir / "reconcile", target.lock_timeout, dump=False)
        except Exception as exc:  # (whatever it is, the rows stay where they are: the rollback goes on)
            ctx.notice(f"could not list the rows written to the new database since the sync ({first_line(exc)});"
                       " they are still there")
            return
        if not kept.told_apart:
            ctx.notice("the rows written to the new database since the sync cannot be told apart (its backup was"
                       " taken by an older golive); they are still there")
        if kept.directory is not None:
            ctx.notice(f"written to the new database since the sync, to reconcile with the old application (the new"
                       f" database is left as it is): {kept.describe()}")

    def manual_undo(self, record: Record) -> list[str]:
        # what golive runs, the rows users wrote listed first (a restore by hand does not keep them); its own
        # restore, again, is the way: a restore by hand only when golive cannot do it
        return ["fix what the error names, then run the same `golive rollback` again (with --restore-data it keeps"
                " what users wrote since the sync first, then restores)",
                "only if golive cannot restore it: stop the new application, then `golive rollback --yes` (it leaves"
                " the data and lists what users wrote since the sync in <state_dir>/reconcile/; go on only if it"
                " printed no `could not list` line), then:",
                f"pg_restore --clean --if-exists --no-owner -f restore.sql {record['backup']}  (then, only if it"
                " succeeded:)",
                "psql -X -v ON_ERROR_STOP=1 --single-transaction -c 'DROP SCHEMA IF EXISTS golive CASCADE'"
                " -f restore.sql -d <target>  (rows restored by hand are not golive's: if the next sync names"
                " them as changed in the new database, `golive sync --source-wins`)",
                "ALTER DATABASE <target> RESET default_transaction_read_only; ALTER DATABASE <target> RESET"
                " golive.restore_freeze  (if `golive status` shows writes=held)"]
