"""Sync speed: a 1,000,000-row directory-entries table, SQLite -> PostgreSQL, in one run.

1. `psql \\copy` of the same rows from a CSV (the physical reference: no transforms, no checks);
2. golive full sync (transforms, COPY into staging, merge, pre-checks, verification before commit);
3. golive incremental sync after 1% of the rows changed;
4. golive verification alone (`--verify-only`: the source rows' digests and the target's range sums
   against the record the syncs left), and the same with `--deep` (every row transformed and compared).
Prints rows/s and the ratios. Goals: full >= 0.5 of \\copy rows/s; incremental <= 0.1 of the full
sync's time; verification <= 0.5 of the full sync's time. Needs PostgreSQL's server binaries.
"""

from __future__ import annotations

import csv
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from golive.sandbox.postgres import PostgresCluster
from golive.sync.engine import SyncEngine
from golive.sync.mapping import load_mapping

DDL = """CREATE TABLE directory_entry (id bigint PRIMARY KEY, name varchar(120) NOT NULL, phone varchar(40) NOT NULL,
email varchar(254), photo varchar(255), approved boolean NOT NULL, owner_id bigint,
created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)"""
MAPPING = """[options]
source_timezone = "UTC"
[[table]]
source = "entry"
target = "directory_entry"
key = "id"
changed = "updated_at"
[table.columns]
id = "id"
name = { from = "name", transform = "strip" }
phone = "phone"
email = { from = "email", transform = "null_if_empty" }
photo = "photo"
approved = { from = "approved", transform = "bool" }
owner_id = "owner_id"
created_at = { from = "created_at", transform = "to_utc" }
updated_at = { from = "updated_at", transform = "to_utc" }
"""


def make_source(path: Path, rows: int) -> None:
    rng = random.Random(1)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE entry (id INTEGER PRIMARY KEY, name TEXT, phone TEXT, email TEXT, photo TEXT,"
               " approved INTEGER, owner_id INTEGER, created_at DATETIME, updated_at DATETIME)")
    start = datetime(2020, 1, 1)
    batch = []
    for i in range(1, rows + 1):
        stamp = str(start + timedelta(seconds=i * 30))
        batch.append((i, f"Name {rng.randint(1, 10**6)}", f"+1-555-{i:07d}", f"e{i}@example.org" if i % 4 else "",
                      f"photos/{i}.jpg" if i % 2 else None, i % 3 != 0, None, stamp, stamp))
        if len(batch) == 50_000:
            db.executemany("INSERT INTO entry VALUES (?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    db.executemany("INSERT INTO entry VALUES (?,?,?,?,?,?,?,?,?)", batch)
    db.commit()
    db.close()


def export_csv(source: Path, out: Path) -> None:
    db = sqlite3.connect(source)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        for row in db.execute("SELECT id, name, phone, nullif(email, ''), photo, CASE approved WHEN 1 THEN 't' ELSE 'f'"
                              " END, owner_id, created_at || '+00', updated_at || '+00' FROM entry"):
            writer.writerow(["" if v is None else v for v in row])
    db.close()


def main(rows: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        source, csv_path = tmpdir / "flask.db", tmpdir / "entries.csv"
        make_source(source, rows)
        export_csv(source, csv_path)
        (tmpdir / "mapping.toml").write_text(MAPPING)
        mapping = load_mapping(tmpdir / "mapping.toml")
        cluster = PostgresCluster().start()
        try:
            cluster.create_database("ref")
            cluster.create_database("target")
            cluster.psql(DDL, "ref")
            cluster.psql(DDL, "target")
            started = time.monotonic()
            subprocess.run([str(cluster.bin / "psql"), "-X", "-q", "-d", cluster.url("ref"), "-c",
                            f"\\copy directory_entry FROM '{csv_path}' CSV NULL ''"], check=True)
            t_copy = time.monotonic() - started

            engine = SyncEngine(f"sqlite:///{source}", cluster.url("target"), mapping)
            started = time.monotonic()
            engine.run(mapping.tables, full=True)
            t_full = time.monotonic() - started

            db = sqlite3.connect(source)
            changed = rows // 100
            db.execute("UPDATE entry SET phone = phone || '9', updated_at = ? WHERE id % 100 = 0",
                       (str(datetime(2030, 1, 1)),))
            db.commit()
            db.close()
            started = time.monotonic()
            [incremental] = SyncEngine(f"sqlite:///{source}", cluster.url("target"), mapping).run(mapping.tables)
            t_incr = time.monotonic() - started

            started = time.monotonic()
            [verified] = SyncEngine(f"sqlite:///{source}", cluster.url("target"), mapping).verify_only(mapping.tables)
            t_verify = time.monotonic() - started

            started = time.monotonic()
            [deep] = SyncEngine(f"sqlite:///{source}", cluster.url("target"), mapping).verify_only(mapping.tables,
                                                                                                     deep=True)
            t_deep = time.monotonic() - started
        finally:
            cluster.stop()
    print(f"rows: {rows:,}; changed for the incremental run: {changed:,} (updated {incremental.updated:,},"
          f" read {incremental.read:,}); verified: {verified.verified} ({verified.checked}), deep: {deep.verified}")
    print(f"psql \\copy (reference):   {t_copy:7.2f} s  {rows / t_copy:12,.0f} rows/s")
    print(f"golive full sync:          {t_full:7.2f} s  {rows / t_full:12,.0f} rows/s   ratio to \\copy rows/s:"
          f" {t_copy / t_full:.2f} (goal >= 0.5)")
    print(f"golive incremental (1%):   {t_incr:7.2f} s   ratio to full time: {t_incr / t_full:.3f} (goal <= 0.1)")
    print(f"golive verification only:  {t_verify:7.2f} s   ratio to full time: {t_verify / t_full:.3f} (goal <= 0.5)")
    print(f"  the same, --deep:         {t_deep:7.2f} s   ratio to full time: {t_deep / t_full:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
