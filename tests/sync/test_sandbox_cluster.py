"""The throwaway PostgreSQL of the tests and the sandbox does not outlive its owner."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from golive.sandbox.postgres import find_bin_dir
from tests.conftest import require_real

OWNER = """
import sys, time
from golive.sandbox.postgres import PostgresCluster
cluster = PostgresCluster().start()
print(cluster.port, cluster.root, flush=True)
time.sleep(600)
"""


def test_a_cluster_whose_owner_is_killed_stops_and_leaves_no_folder() -> None:
    require_real("postgresql", find_bin_dir() is not None, "no initdb (apt-get install postgresql)")
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert owner.stdout is not None
    port, root = owner.stdout.readline().split()
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
        pass  # serving
    owner.send_signal(signal.SIGKILL)  # no `finally`, no atexit: only the watcher can stop it
    owner.wait(timeout=10)
    deadline = time.monotonic() + 30
    while Path(root).exists():
        assert time.monotonic() < deadline, f"{root} still there 30 s after its owner died"
        time.sleep(0.2)
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
        raise AssertionError(f"PostgreSQL still answers on port {port}")
    except OSError:
        pass
