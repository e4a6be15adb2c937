"""Sync from a PostgreSQL source: the same directory-entries table as `bench/sync.py`, held by a
PostgreSQL database instead of SQLite, in one run: golive full sync, `--verify-only` (the source
hashes its own rows for the digest record: only hashes travel) and `--verify-only --deep` (every
row read, transformed and compared). Prints the times and the ratios to the full sync."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from golive.sandbox.postgres import PostgresCluster
from golive.sync.engine import SyncEngine
from golive.sync.mapping import load_mapping

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # (run as a script: bench/ is a package of the repo)
from bench.sync import DDL, MAPPING

SOURCE = """CREATE TABLE entry (id bigint PRIMARY KEY, name text, phone text, email text, photo text, approved int,
owner_id bigint, created_at timestamp, updated_at timestamp);
INSERT INTO entry SELECT g, 'Name ' || (g::bigint * 7919 % 1000003), '+1-555-' || lpad(g::text, 7, '0'),
CASE WHEN g % 4 = 0 THEN '' ELSE 'e' || g || '@example.org' END, CASE WHEN g % 2 = 1 THEN 'photos/' || g || '.jpg' END,
(g % 3 <> 0)::int, NULL, timestamp '2020-01-01' + g * interval '30 s', timestamp '2020-01-01' + g * interval '30 s'
FROM generate_series(1, {rows}) g"""


def main(rows: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "mapping.toml").write_text(MAPPING)
        mapping = load_mapping(Path(tmp) / "mapping.toml")
        cluster = PostgresCluster().start()
        try:
            source = cluster.create_database("old")
            cluster.psql(SOURCE.format(rows=rows), "old")
            cluster.create_database("target")
            cluster.psql(DDL, "target")
            target = cluster.url("target")
            started = time.monotonic()
            [full] = SyncEngine(source, target, mapping).run(mapping.tables, full=True)
            t_full = time.monotonic() - started
            started = time.monotonic()
            [quick] = SyncEngine(source, target, mapping).verify_only(mapping.tables)
            t_quick = time.monotonic() - started
            started = time.monotonic()
            [deep] = SyncEngine(source, target, mapping).verify_only(mapping.tables, deep=True)
            t_deep = time.monotonic() - started
        finally:
            cluster.stop()
    print(f"rows: {rows:,} from PostgreSQL; verified: {full.verified}, {quick.verified} ({quick.checked}),"
          f" {deep.verified} ({deep.checked})")
    print(f"golive full sync:          {t_full:7.2f} s  {rows / t_full:12,.0f} rows/s")
    print(f"golive verification only:  {t_quick:7.2f} s   ratio to full time: {t_quick / t_full:.3f}")
    print(f"  the same, --deep:         {t_deep:7.2f} s   ratio to full time: {t_deep / t_full:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
