"""The README's by-hand DNS rehearsal, as a newcomer would run it: the emulator and the DNS server as
their own processes (`golive sandbox linode|dns`), then `golive dns switch` and `verify` against them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from golive.sandbox.dns import free_port

TOKEN = "by-hand-token-3f9a1c"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[int, int]]:
    env = {**os.environ, "LINODE_TOKEN": TOKEN, "NO_COLOR": "1"}
    api, dns = free_port(), free_port()
    state = tmp_path / "linode-state.json"
    procs = [
        subprocess.Popen([sys.executable, "-m", "golive", "sandbox", "linode", "--port", str(api), "--state", str(state),
                          "--seed", "example.org", "--target", "203.0.113.10", "--ttl", "300"], env=env, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    deadline = time.monotonic() + 20
    while not state.exists() or "example.org" not in state.read_text():
        assert time.monotonic() < deadline and procs[0].poll() is None
        time.sleep(0.05)
    procs.append(subprocess.Popen([sys.executable, "-m", "golive", "sandbox", "dns", "--port", str(dns), "--state",
                                   str(state), "--delay", "1"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{api}/v4/domains", headers={"Authorization": f"Bearer {TOKEN}"}).is_success:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield api, dns
    finally:
        for proc in procs:
            proc.terminate()
            out, err = proc.communicate(timeout=10)
            assert TOKEN not in out + err


def test_readme_rehearsal_against_processes_started_by_hand(servers: tuple[int, int], tmp_path: Path,
                                                            golive_proc) -> None:
    api, dns = servers
    project = tmp_path / "project"
    project.mkdir()
    config = project / "golive.toml"
    config.write_text(f"""[linode]
token = "env:LINODE_TOKEN"
api_url = "http://127.0.0.1:{api}/v4"

[dns]
domain = "example.org"
records = [{{ name = "", type = "A" }}, {{ name = "www", type = "A" }}]
old_target = "203.0.113.10"
new_target = "198.51.100.20"
nameservers = ["127.0.0.1:{dns}"]
""")
    config.chmod(0o600)
    env = {"LINODE_TOKEN": TOKEN}
    switched = golive_proc("dns", "switch", "--yes", cwd=project, env=env)
    assert switched.returncode == 0, switched.stderr
    verified = golive_proc("dns", "verify", "--timeout", "15", cwd=project, env=env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[-1] == "all 1 nameserver(s) answer new for 2 record(s)"
    assert golive_proc("dns", "revert", "--yes", cwd=project, env=env).returncode == 0
    shown = golive_proc("dns", "show", cwd=project, env=env)
    assert [line.split()[4] for line in shown.stdout.splitlines()[2:]] == ["old", "old"]
    for out in (switched.stdout, switched.stderr, verified.stdout, shown.stdout):
        assert TOKEN not in out
