"""Swap under load: a steady-state load through Apache, then a swap and an undo under the same load.

Prints requests, failures, retries and p50/p99/max latency in steady state and during each phase,
and how long each phase took. Goals: 0 failures; p99 during the swap <= 2x the steady-state p99.
Needs a Docker engine, Apache and busybox-static (what `make test` installs). The swap and the
undo run as `golive` subprocesses, so their work does not share the load generator's interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from golive.sandbox.bluegreen import BlueGreen, build_images
from golive.sandbox.load import Load


def golive(project: Path, *args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "golive", *args], cwd=project, check=True, capture_output=True,
                   env={**os.environ, "NO_COLOR": "1"})
    return time.monotonic() - started


def main(clients: int = 8, steady: float = 3.0) -> None:
    import docker

    client = docker.from_env()
    prefix = f"golive-bench-{uuid.uuid4().hex[:6]}"
    tags = build_images(client, prefix)
    with tempfile.TemporaryDirectory() as tmp:
        env = BlueGreen(Path(tmp), client, tags).up()
        took: dict[str, float] = {"steady": steady}
        load = Load(env.apache.url + "/version", clients=clients, max_seconds=120).start()
        try:
            time.sleep(steady)
            load.phase = "swap"
            took["swap"] = golive(env.project, "swap", "--yes")
            load.phase = "after swap"
            time.sleep(1.0)
            took["after swap"] = 1.0
            load.phase = "undo"
            took["undo"] = golive(env.project, "rollback", "--yes")
            load.phase = "after undo"
            time.sleep(1.0)
            took["after undo"] = 1.0
        finally:
            result = load.stop()
            env.down()
            for tag in tags.values():
                client.images.remove(tag, force=True)
    print(f"load: {clients} keep-alive clients through Apache to busybox httpd containers")
    print(f"{'phase':<12}{'seconds':>8}{'requests':>10}{'failures':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for phase in ("steady", "swap", "after swap", "undo", "after undo"):
        samples = [s for s in result.samples if s.phase == phase]
        failures = sum(not 200 <= s.status < 300 for s in samples)
        print(f"{phase:<12}{took[phase]:>8.2f}{len(samples):>10}{failures:>10}{result.latency(phase, 0.5) * 1000:>9.2f}"
              f"{result.latency(phase, 0.99) * 1000:>9.2f}{result.latency(phase, 1.0) * 1000:>9.2f}")
    steady_p99 = result.latency("steady", 0.99)
    print(f"total requests {result.requests}, failures {result.failures}, keep-alive retries {result.retries}")
    print(f"p99 swap / steady: {result.latency('swap', 0.99) / steady_p99:.2f} (goal <= 2)")
    print(f"p99 undo / steady: {result.latency('undo', 0.99) / steady_p99:.2f} (goal <= 2)")
    print(f"answers in order: {' -> '.join(result.bodies())}")


if __name__ == "__main__":
    main()
