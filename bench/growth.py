"""An incremental sync that brings more new rows than the target holds: a PostgreSQL source table of 30,000 rows
synced, then 100,000 rows added (a rehearsal taken early, a busy month since), against a full sync of the same
130,000 rows into an empty target, in one run. Prints both times and the ratio. Goal: incremental / full <= 5 —
the same order: an incremental digests the rows it reads as it goes and checks each new key against the target,
work sized for a few rows that a full sync does otherwise. The check for rows the new application made (keys golive
never synced that the target has) once took 3.5 minutes here (87× the full sync): the planner walked the target's
index against every new key, betting on an early match.

``python bench/growth.py [SYNCED] [ADDED]``. Needs PostgreSQL's server binaries.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from golive.sandbox.postgres import PostgresCluster
from golive.sync.engine import SyncEngine
from golive.sync.mapping import load_mapping

DDL = "CREATE TABLE ev (id bigint PRIMARY KEY, v int, at timestamptz)"
MAPPING = ('[[table]]\nsource = "ev"\ntarget = "ev"\nkey = "id"\nchanged = "at"\n[table.columns]\nid = "id"\nv = "v"\n'
           'at = "at"\n')


def main(synced: int = 30_000, added: int = 100_000) -> None:
    cluster = PostgresCluster().start()
    try:
        source = cluster.create_database("source")
        cluster.psql(f"{DDL}; INSERT INTO ev SELECT g, g, now() FROM generate_series(1, {synced}) g", "source")
        for name in ("incremental", "full"):
            cluster.create_database(name)
            cluster.psql(DDL, name)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "mapping.toml").write_text(MAPPING)
            mapping = load_mapping(Path(tmp) / "mapping.toml")
        SyncEngine(source, cluster.url("incremental"), mapping).run(mapping.tables)
        cluster.psql(f"INSERT INTO ev SELECT g, g, now() FROM generate_series({synced + 1}, {synced + added}) g",
                     "source")
        started = time.monotonic()
        [incremental] = SyncEngine(source, cluster.url("incremental"), mapping).run(mapping.tables)
        t_incr = time.monotonic() - started
        started = time.monotonic()
        [full] = SyncEngine(source, cluster.url("full"), mapping).run(mapping.tables)
        t_full = time.monotonic() - started
    finally:
        cluster.stop()
    assert incremental.mode == "incremental" and incremental.inserted == added and full.inserted == synced + added
    print(f"rows synced first: {synced:,}; added since: {added:,}")
    print(f"golive incremental ({added:,} new):  {t_incr:7.2f} s")
    print(f"golive full sync ({synced + added:,}):    {t_full:7.2f} s")
    print(f"incremental / full: {t_incr / t_full:.2f} (goal <= 5)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
