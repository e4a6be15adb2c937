"""Swap under load, both switch modes side by side: a steady-state load through Apache, then a swap
and an undo under the same load, for ``[proxy] switch = "reload"`` (include + graceful restart) and
``"map"`` (RewriteMap renamed into place, no restart), with the same images and the same load.

With ``--modes map+prepare`` the idle colour is started by ``golive swap --prepare`` in a phase of its
own first, and the swap that follows keeps it: its phase is the switch alone.

Prints per mode requests, failures, keep-alive retries, p50/p99/max latency in steady state and
during each phase, how long each phase took, and the p99 ratios swap/steady and undo/steady.
Goals: 0 failures; p99 during the swap (and the undo) <= 2x the steady-state p99.

Load: 8 keep-alive clients (Python threads; the bench process does nothing else while golive runs
as a subprocess). ``--rate R`` paces each client at R requests/s with latency counted from when a
request was due; without it each client sends as fast as it is answered, saturating the machine.
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
from typing import Any

from golive.sandbox.bluegreen import BlueGreen, build_images
from golive.sandbox.load import Load, LoadResult

PHASES = ("steady", "swap", "after swap", "undo", "after undo")


def golive(project: Path, *args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "golive", *args], cwd=project, check=True, capture_output=True,
                   env={**os.environ, "NO_COLOR": "1"})
    return time.monotonic() - started


def run_mode(client: Any, tags: dict[str, str], mode: str, args: argparse.Namespace) -> tuple[LoadResult, dict[str, float]]:
    switch, _, prepare = mode.partition("+")  # "map+prepare": `golive swap --prepare` first, then the swap
    with tempfile.TemporaryDirectory() as tmp:
        env = BlueGreen(Path(tmp), client, tags, switch=switch).up()
        took: dict[str, float] = {"steady": args.steady, "after swap": 1.0, "after undo": 1.0}
        load = Load(env.apache.url + "/version", clients=args.clients, max_seconds=120, rate=args.rate).start()
        try:
            time.sleep(args.steady)
            if prepare:
                load.phase = "prepare"
                took["prepare"] = golive(env.project, "swap", "--prepare", "--yes")
                load.phase = "after prepare"
                took["after prepare"] = 1.0
                time.sleep(took["after prepare"])
            load.phase = "swap"
            took["swap"] = golive(env.project, "swap", "--yes")
            load.phase = "after swap"
            time.sleep(took["after swap"])
            load.phase = "undo"
            took["undo"] = golive(env.project, "rollback", "--yes")
            load.phase = "after undo"
            time.sleep(took["after undo"])
        finally:
            result = load.stop()
            env.down()
    return result, took


def report(switch: str, result: LoadResult, took: dict[str, float]) -> dict[str, float]:
    print(f"\nswitch = {switch!r}")
    print(f"{'phase':<12}{'seconds':>8}{'requests':>10}{'failures':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for phase in [p for p in ("steady", "prepare", "after prepare", *PHASES[1:]) if p in took]:
        samples = [s for s in result.samples if s.phase == phase]
        failures = sum(not 200 <= s.status < 300 for s in samples)
        print(f"{phase:<12}{took[phase]:>8.2f}{len(samples):>10}{failures:>10}{result.latency(phase, 0.5) * 1000:>9.2f}"
              f"{result.latency(phase, 0.99) * 1000:>9.2f}{result.latency(phase, 1.0) * 1000:>9.2f}")
    steady = result.latency("steady", 0.99)
    ratios = {"swap": result.latency("swap", 0.99) / steady, "undo": result.latency("undo", 0.99) / steady}
    print(f"requests {result.requests}, failures {result.failures}, keep-alive retries {result.retries}")
    print(f"p99 swap / steady: {ratios['swap']:.2f}, undo / steady: {ratios['undo']:.2f} (goal <= 2)")
    print(f"answers in order: {' -> '.join(result.bodies())}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--steady", type=float, default=3.0, help="seconds of steady state before the swap")
    parser.add_argument("--rate", type=float, default=None, help="requests/s per client (default: closed loop)")
    parser.add_argument("--modes", default="reload,map", help="switch modes, in order (map+prepare: the idle colour"
                        " started by `golive swap --prepare` in a phase of its own, then the swap keeps it)")
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    tags = build_images(client, f"golive-bench-{uuid.uuid4().hex[:6]}")
    load = f"{args.rate:g} requests/s each, paced" if args.rate else "closed loop"
    print(f"load: {args.clients} keep-alive clients ({load}) through Apache to busybox httpd containers")
    summary = []
    try:
        for switch in args.modes.split(","):
            result, took = run_mode(client, tags, switch, args)
            ratios = report(switch, result, took)
            summary.append(f"{switch:<12}{result.requests:>9}{result.failures:>9}{result.retries:>9}"
                           f"{result.latency('steady', 0.99) * 1000:>11.2f}{ratios['swap']:>9.2f}{ratios['undo']:>9.2f}"
                           f"{result.latency('undo', 1.0) * 1000:>10.0f}{took['swap']:>8.2f}{took['undo']:>8.2f}")
    finally:
        for tag in tags.values():
            client.images.remove(tag, force=True)
    print(f"\n{'mode':<12}{'requests':>9}{'failures':>9}{'retries':>9}{'steady p99':>11}{'swap/p99':>9}"
          f"{'undo/p99':>9}{'undo max':>9}{'swap s':>8}{'undo s':>8}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
