"""A Docker daemon that hangs in the middle of a swap (it takes the requests and never answers: SIGSTOP, a wedged
dockerd): with a 10 s health_timeout the swap sat 123 s in silence — 60 s on the health check (the SDK's own
timeout), 60 s more on the undo's first question. The health wait's Docker calls now end with its deadline, the
undo's each within a short bound, and the errors say what was waited for and how long."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.test_swap import _DockerSocketProxy, blue_live, under_load

_START = re.compile(rb"POST \S*/containers/\S+/start ")


class _HangingDocker(_DockerSocketProxy):
    """A unix socket forwarding to the engine's that stops answering for good once a container has been started:
    every request after that is taken and dropped (no answer, no closed connection), until ``release``."""

    def __init__(self, path: Path) -> None:
        self.hung = threading.Event()
        super().__init__(path)

    def forward(self, data: bytes, asking: bool) -> bool:
        if asking and self.hung.is_set():
            return False  # (taken, never answered)
        if asking and _START.search(data):
            self.hung.set()
        return True

    def release(self) -> None:
        self.server.close()


def test_a_daemon_that_hangs_in_the_health_wait_costs_the_health_timeout_and_a_short_undo(
        swap_env: SwapEnv, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from golive.swap import docker_gateway

    monkeypatch.setattr(docker_gateway, "UNDO_TIMEOUT", 2.0, raising=False)
    env = swap_env
    sock = tmp_path / "dock.sock"
    forwarder = _HangingDocker(sock)
    env.write_config(health_timeout=3, docker_url=f"unix://{sock}")
    out, took = [], []

    def swap() -> None:
        started = time.monotonic()
        out.append(cli("-v", "swap", "--yes"))
        took.append(time.monotonic() - started)

    result = under_load(env, swap)
    forwarder.release()
    assert forwarder.hung.is_set()  # (the daemon hung after the start, as meant)
    assert result.bodies() == ["blue"]  # never switched, not one request failed
    failed = out[0]
    assert failed.exit_code == 4, failed.stderr
    assert took[0] < 3 + 2 + 8, took  # health_timeout, the undo's bound, the reload and confirm of blue
    assert f"    apply: container {env.green}: waiting up to 3s for its health (GET /healthz on" \
           f" 127.0.0.1:{env.green_port})" in failed.lines, failed.stdout
    lines = failed.stderr.splitlines()  # (-v: the traceback first)
    error = next(line for line in lines if line.startswith("error: "))
    assert error.startswith(f"error: step swap to the idle colour failed (the Docker daemon at unix://{sock} stopped"
                            f" answering while checking the health of container {env.green} (no answer within "), error
    undo = error.partition(" and undo of step 1 (swap to the idle colour) of run ")[2]
    assert f"stopped answering while inspecting container {env.blue} (no answer within 2s)" in undo, error
    assert lines[lines.index(error) + 1:] == [f"  by hand: `docker rm -f {env.green}` once Docker answers: the green"
                                              " container this swap started (blue serves again)"], failed.stderr
    env.write_config()  # the daemon answers again: the rollback finishes the undo
    monkeypatch.setattr(docker_gateway, "UNDO_TIMEOUT", 10.0)  # (the real daemon, on a busy machine: its own bound)
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    blue_live(env)
    assert env.container(env.green) is None
