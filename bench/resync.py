"""What protecting the new database's own edits costs a full re-sync of a 1,000,000-row table, in one run.

After a first full sync (which does no check: the table was empty), the same full sync again, in
alternating rounds: with the check for rows someone other than golive wrote since (the scan of the
target for row versions golive did not write, `golive.sync.conflicts`) and with that check turned off.
Prints seconds per round and the ratio of the medians. Needs PostgreSQL's server binaries.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from golive.sandbox.postgres import PostgresCluster
from golive.sync import conflicts
from golive.sync.engine import SyncEngine
from golive.sync.mapping import load_mapping

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # (run as a script: bench/ is a package of the repo)
from bench.sync import DDL, MAPPING, make_source


def main(rows: int = 1_000_000, rounds: int = 5) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_source(folder / "flask.db", rows)
        (folder / "mapping.toml").write_text(MAPPING)
        mapping = load_mapping(folder / "mapping.toml")
        source = f"sqlite:///{folder / 'flask.db'}"
        cluster = PostgresCluster().start()
        checked = conflicts.changed_by_others
        times: dict[str, list[float]] = {"check": [], "no check": []}
        try:
            cluster.create_database("target")
            cluster.psql(DDL, "target")
            url = cluster.url("target")
            SyncEngine(source, url, mapping).run(mapping.tables, full=True)
            for n in range(rounds):
                for label in times:
                    conflicts.changed_by_others = checked if label == "check" else (lambda *a, **k: [])  # type: ignore[assignment]
                    started = time.monotonic()
                    SyncEngine(source, url, mapping).run(mapping.tables, full=True)
                    times[label].append(time.monotonic() - started)
                    print(f"round {n + 1}  {label:<8}  full re-sync {times[label][-1]:6.2f} s", flush=True)
        finally:
            conflicts.changed_by_others = checked
            cluster.stop()
    ratio = statistics.median(times["check"]) / statistics.median(times["no check"])
    print(f"rows: {rows:,}; median with the check / without: {ratio:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
