"""What each part of a swap costs the live site, one part at a time, under the load of `bench/swap.py`.

A swap does several things besides the switch itself; on a small machine each takes CPU from Apache,
docker-proxy and the containers serving the live colour. This runs them one by one, with a pause
between, under a paced load through Apache to the blue container (map mode, nothing is switched),
and prints each part's p99 latency against the steady state's:

- ``golive swap --dry-run``: a golive process starting, loading its config and asking Docker for the
  plan (what every `golive swap` pays before it does anything);
- ``container start``: dockerd creating and starting a container with a published port (what every
  swap pays to start the idle colour; run from a separate process, as golive does through dockerd);
- ``container remove``: dockerd stopping and removing it (what `swap finalize` pays);
- ``configtest``: Apache parsing its configuration (`apache2 -t`, run before every switch);
- each of the first two again under ``chrt --idle 0`` (Linux SCHED_IDLE: runs only on an idle CPU).

Needs a Docker engine, Apache and busybox-static (what `make test` installs). Run it under
``flock /tmp/golive-bench.lock`` so benchmarks do not overlap.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from golive.sandbox.bluegreen import BlueGreen, build_images, free_port
from golive.sandbox.load import Load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s per client")
    parser.add_argument("--repeat", type=int, default=3, help="times each part runs")
    args = parser.parse_args()

    import docker

    client = docker.from_env()
    tags = build_images(client, "golive-bench")
    name, port = f"golive-part-{uuid.uuid4().hex[:6]}", free_port()
    start = [sys.executable, "-c", "import docker; docker.from_env().containers.run("
             f"{tags['green']!r}, name={name!r}, detach=True, ports={{'8000/tcp': ('127.0.0.1', {port})}})"]
    remove = ["docker", "rm", "-f", name]
    with tempfile.TemporaryDirectory() as tmp:
        env = BlueGreen(Path(tmp), client, tags, switch="map").up()
        dry_run = [sys.executable, "-m", "golive", "swap", "--dry-run"]
        parts = {
            "golive swap --dry-run": dry_run,
            "container start": start,
            "container remove": remove,
            "configtest": list(env.apache.test_command),
            "idle: golive --dry-run": ["chrt", "--idle", "0", *dry_run],
            "idle: container start": ["chrt", "--idle", "0", *start],
            "idle: container remove": ["chrt", "--idle", "0", *remove],
        }
        took: dict[str, list[float]] = {part: [] for part in parts}
        load = Load(env.apache.url + "/version", clients=args.clients, max_seconds=300, rate=args.rate).start()
        try:
            time.sleep(3.0)
            for _ in range(args.repeat):
                for part, command in parts.items():
                    load.phase = part
                    started = time.monotonic()
                    subprocess.run(command, cwd=env.project, capture_output=True, env={**os.environ, "NO_COLOR": "1"})
                    took[part].append(time.monotonic() - started)
                    load.phase = "pause"
                    time.sleep(1.0)
        finally:
            result = load.stop()
            subprocess.run(remove, capture_output=True)
            env.down()
    steady = result.latency("steady", 0.99)
    print(f"load: {args.clients} keep-alive clients, {args.rate:g} requests/s each (paced), through Apache to busybox"
          f" httpd; each part run {args.repeat} times, 1 s apart")
    print(f"requests {result.requests}, failures {result.failures}; steady p99 {steady * 1000:.2f} ms")
    print(f"{'part':24} {'seconds':>8} {'requests':>9} {'p99 ms':>8} {'/ steady':>9} {'max ms':>8}")
    for part in parts:
        count = sum(s.phase == part for s in result.samples)
        p99 = result.latency(part, 0.99)
        print(f"{part:24} {sum(took[part]) / len(took[part]):8.2f} {count:9d} {p99 * 1000:8.2f} {p99 / steady:9.2f}"
              f" {result.latency(part, 1.0) * 1000:8.1f}")


if __name__ == "__main__":
    main()
