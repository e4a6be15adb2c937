"""The sandbox's servers (PostgreSQL, Apache) do not outlive the process that started them: a test run
killed by a timeout must not leave servers on loopback ports and folders in /tmp."""

from __future__ import annotations

import os
import shutil
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
from pathlib import Path
from golive.sandbox.apache import ApacheRunner
from golive.sandbox.bluegreen import free_port
from golive.sandbox.postgres import PostgresCluster
root = Path(sys.argv[1])
cluster = PostgresCluster().start()
apache = ApacheRunner(root / "apache", free_port(), root / "upstream.conf").start("http://127.0.0.1:9")
print(cluster.port, cluster.root, apache.port, flush=True)
time.sleep(600)
"""


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def test_servers_whose_owner_is_killed_stop_and_leave_no_cluster_folder(tmp_path: Path) -> None:
    require_real("postgresql", find_bin_dir() is not None, "no initdb (apt-get install postgresql)")
    require_real("apache2", shutil.which("apache2") is not None)
    (tmp_path / "apache").mkdir()
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert owner.stdout is not None
    pg_port, pg_root, apache_port = owner.stdout.readline().split()
    assert answers(int(pg_port)) and answers(int(apache_port))
    owner.send_signal(signal.SIGKILL)  # no `finally`, no atexit: only the watchers can stop them
    owner.wait(timeout=10)
    deadline = time.monotonic() + 30
    while Path(pg_root).exists() or answers(int(pg_port)) or answers(int(apache_port)):
        assert time.monotonic() < deadline, "a server still runs 30 s after its owner died"
        time.sleep(0.2)


BLUEGREEN = """
import json, sys, time
from pathlib import Path
import docker
from golive.sandbox.bluegreen import BlueGreen
env = BlueGreen(Path(sys.argv[1]), docker.from_env(), json.loads(sys.argv[2])).up()
print(env.blue, env.apache.port, flush=True)
time.sleep(600)
"""


def test_a_blue_green_stack_whose_owner_is_killed_leaves_no_container(tmp_path: Path, docker_client,
                                                                      images: dict[str, str]) -> None:
    import json

    import docker.errors

    require_real("apache2", shutil.which("apache2") is not None)
    owner = subprocess.Popen([sys.executable, "-c", BLUEGREEN, str(tmp_path), json.dumps(images)],
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert owner.stdout is not None
    blue, apache_port = owner.stdout.readline().split()
    assert docker_client.containers.get(blue).status == "running"
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=10)
    deadline = time.monotonic() + 30
    while True:
        try:
            docker_client.containers.get(blue)
        except docker.errors.NotFound:
            if not answers(int(apache_port)):
                break
        assert time.monotonic() < deadline, f"container {blue} or Apache still there 30 s after the owner died"
        time.sleep(0.2)
