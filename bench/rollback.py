"""What a rollback of a sync costs on a 1,000,000-row table, SQLite -> PostgreSQL, in one run.

After a full sync (the backup before it taken as the sync step takes it) and 100 rows written by "the new
application", side by side: the sync itself; a pg_dump of the target (the reference: what `--restore-data`
adds to a rollback before restoring); the listing a plain `golive rollback` writes for reconciliation (rows
written since the backup, synced keys deleted since); and the keeping `--restore-data` does first (the
listing plus a dump of the target as it was). Prints seconds and ratios. Needs PostgreSQL's server binaries.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import psycopg

from golive.sandbox.postgres import PostgresCluster
from golive.sync.backup import dump
from golive.sync.engine import SyncEngine
from golive.sync.mapping import load_mapping
from golive.sync.reconcile import keep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # (run as a script: bench/ is a package of the repo)
from bench.sync import DDL, MAPPING, make_source


def main(rows: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        source = tmpdir / "flask.db"
        make_source(source, rows)
        (tmpdir / "mapping.toml").write_text(MAPPING)
        mapping = load_mapping(tmpdir / "mapping.toml")
        cluster = PostgresCluster().start()
        try:
            url = cluster.create_database("target")
            cluster.psql(DDL, "target")
            backup = dump(url, tmpdir / "backups", 3)
            engine = SyncEngine(f"sqlite:///{source}", url, mapping)
            started = time.monotonic()
            engine.run(mapping.tables, full=True)
            t_sync = time.monotonic() - started
            with psycopg.connect(url, autocommit=True) as app:
                app.execute("UPDATE directory_entry SET phone = 'changed' WHERE id %% %s = 0", (rows // 100,))
            started = time.monotonic()
            dump(url, tmpdir / "backups", 3)
            t_dump = time.monotonic() - started
            keys = {t.target: t.target_key for t in mapping.tables}
            started = time.monotonic()
            listed = keep(url, backup.snapshot, engine.xact, keys, tmpdir / "reconcile", dump=False)
            t_list = time.monotonic() - started
            started = time.monotonic()
            keep(url, backup.snapshot, engine.xact, keys, tmpdir / "reconcile")
            t_keep = time.monotonic() - started
        finally:
            cluster.stop()
    print(f"rows: {rows:,}; written since the sync: {sum(listed.written.values())}")
    print(f"full sync:                          {t_sync:6.2f} s")
    print(f"pg_dump of the target (reference):  {t_dump:6.2f} s")
    print(f"plain rollback's listing:           {t_list:6.2f} s   ratio to the sync: {t_list / t_sync:.3f}")
    print(f"--restore-data's keeping first:     {t_keep:6.2f} s   ratio to pg_dump: {t_keep / t_dump:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
