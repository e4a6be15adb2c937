"""The sync line of `golive status`: when the target was last synced, how much golive put there, and
the backup a data rollback would restore (from the journal: ``rollback_backup``)."""

from __future__ import annotations

from typing import Any

from golive.core.status import Part


def status(config: Any) -> Part | None:
    """The backup (``backup`` in both) is the journal's to say: `golive status` adds it (``rollback_backup``)."""
    if config.target is None:
        return None
    from golive.db import connect, resolve_url
    from golive.sync import state
    from golive.sync.backup import read_only, writes_are_held

    info: dict[str, str] = {"last": "never"}
    values: dict[str, Any] = {"ok": True, "last_sync": None, "mode": None, "tables": None, "synced_rows": None,
                              "writes": "open"}
    with connect(resolve_url(config.target.url), what="target database") as conn:
        if writes_are_held(conn):
            info["writes"] = "held (a data rollback was interrupted: `golive rollback --restore-data` finishes it)"
            values |= {"ok": False, "writes": "held"}
        elif read_only(conn):
            info["writes"] = "read-only (not by golive: `ALTER DATABASE … RESET default_transaction_read_only`)"
            values |= {"ok": False, "writes": "read-only"}
        if state.exists(conn):
            row = conn.execute("SELECT max(synced_at), count(*), coalesce(sum(synced_count), 0),"
                               " (SELECT mode FROM golive.sync_state ORDER BY synced_at DESC LIMIT 1)"
                               " FROM golive.sync_state").fetchone()
            if row[1]:
                last = row[0].astimezone().isoformat(timespec="seconds")
                info |= {"last": last, "mode": str(row[3]), "tables": str(row[1]), "synced_rows": str(row[2])}
                values |= {"last_sync": last, "mode": str(row[3]), "tables": int(row[1]), "synced_rows": int(row[2])}
    return Part(info, values)


def rollback_backup(journal: Any) -> str:
    """The dump a data rollback would restore first: the newest sync not undone yet took it before writing
    (a failed attempt's dump, newer on disk, restores nothing)."""
    from pathlib import Path

    needed = journal.needed("backup")
    return Path(needed[0]).name if needed else "none"
