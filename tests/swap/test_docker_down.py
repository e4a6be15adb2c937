"""Rolling back while the Docker daemon does not answer (stopped, restarting, hung at 2 a.m.): the containers it
started keep running, so the undo restores service first — the proxy back on the previous colour if that colour
still answers on its host port — and fails (exit 4) only on what needs Docker, which a later rollback finishes.
"Docker unreachable" is real: the rollback's docker_url points at a socket nobody listens on (or one that takes
the connection and never answers), while the containers keep running under the real dockerd."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golive.core.journal import Journal
from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.conftest import running
from tests.swap.test_swap import blue_live, under_load


@pytest.fixture(params=["reload", "map"])
def env(request: pytest.FixtureRequest, tmp_path: Path, docker_client: Any, images: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> Iterator[SwapEnv]:
    yield from running(SwapEnv(tmp_path, docker_client, images, switch=request.param), monkeypatch, "gl-h2")


def _dead(tmp_path: Path) -> str:
    """A docker_url where nobody listens (dockerd stopped: its socket file left behind, or gone)."""
    return f"unix://{tmp_path}/dead-docker.sock"


def _events(env: SwapEnv, run: str) -> list[str]:
    journal = Journal(env.project / ".golive" / "journal.db")
    try:
        return [f"{e['kind']} {e['phase'] or ''} {e['message'] or e['data'].get('error') or ''}".strip()
                for e in journal.events(run)]
    finally:
        journal.close()


def _run_of(out: Any, command: str) -> str:
    return next(line.split()[1].rstrip(":") for line in out.lines if line.startswith("run ") and f": {command}" in line)


@pytest.mark.parametrize("hung", [False, True], ids=["dead", "hung"])
def test_a_rollback_with_docker_unreachable_points_apache_back_first_and_a_later_one_finishes(
        env: SwapEnv, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hung: bool) -> None:
    """The undo's first Docker call failed, before the proxy was touched: the site stayed on the release being
    rolled back until dockerd came back."""
    from golive.swap import docker_gateway

    assert cli("swap", "--yes").exit_code == 0
    url = _dead(tmp_path)
    with socket.socket(socket.AF_UNIX) as listener:
        if hung:  # (takes the connection, never answers: the ping's own timeout, 1s here instead of 10s)
            monkeypatch.setattr(docker_gateway, "PING_TIMEOUT", 1.0)
            listener.bind(url.removeprefix("unix://"))
            listener.listen(8)
        env.write_config(docker_url=url)
        out = []
        result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
        if hung:  # asked once in the whole rollback (its plan), not again by the undo: one timeout, not two
            listener.setblocking(False)
            asked = 0
            with contextlib.suppress(BlockingIOError):
                while True:
                    listener.accept()[0].close()
                    asked += 1
            assert asked == 1
    failed = out[0]
    assert failed.exit_code == 4, failed.stderr
    assert result.bodies()[0] == "green" and result.bodies()[-1] == "blue"  # service first, not one request failed
    blue_live(env)
    assert env.container(env.green).status == "running"  # (what needs Docker is left, and said)
    down = f"the Docker daemon at {url} does not answer {'within 1s' if hung else '(DockerException)'}"
    lines = failed.stderr.splitlines()
    swap_run = failed.lines[0].split()[4]
    assert lines == [
        f"error: undo of step 1 (swap to the idle colour) of run {swap_run} failed: blue serves again through the"
        f" proxy, but {down}: green ({env.green}) was not removed — start dockerd, or fix [containers].docker_url —"
        " do the manual steps listed, then `golive rollback --yes` again",
        f"  by hand: `docker rm -f {env.green}` once Docker answers: the green container this swap started (blue"
        " serves again)"], failed.stderr
    blue = f"http://127.0.0.1:{env.blue_port}"
    events = _events(env, _run_of(failed, "rollback"))  # the journal: what was done, what was not
    assert f"log notice {down}; blue ({env.blue}) answers /healthz on 127.0.0.1:{env.blue_port}: the proxy goes back" \
           " to it first, and green is removed once Docker answers" in events, events
    assert f"log undo proxy upstream -> {blue}" in events, events
    assert events[-3].startswith("undo.failed  blue serves again through the proxy, but "), events
    assert events[-2] == f"log manual `docker rm -f {env.green}` once Docker answers: the green container this swap" \
        " started (blue serves again)", events  # (the by-hand line kept with the run: history and the report show it)
    assert "undo_failed" in cli("history", swap_run).stdout

    env.write_config()  # dockerd back: the rollback finishes the job
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert set(result.bodies()) == {"blue"}
    blue_live(env)
    assert env.container(env.green) is None


def test_a_rollback_with_docker_unreachable_leaves_the_proxy_when_the_old_colour_does_not_answer(
        env: SwapEnv, cli, tmp_path: Path) -> None:
    """Blue stopped during the bake (only Docker can start it): pointing Apache at it would take the site down."""
    assert cli("swap", "--yes").exit_code == 0
    env.container(env.blue).stop(timeout=1)
    upstream = env.apache.upstream_file.read_text()
    env.write_config(docker_url=_dead(tmp_path))
    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert set(result.bodies()) == {"green"}
    failed = out[0]
    assert failed.exit_code == 4
    error = failed.stderr.splitlines()[0]
    assert error.endswith(
        f" failed: the Docker daemon at {_dead(tmp_path)} does not answer (DockerException), and blue ({env.blue})"
        f" answers /healthz on 127.0.0.1:{env.blue_port} with nothing (ConnectError): the proxy was left on green;"
        " nothing was changed — start dockerd, or fix [containers].docker_url; then `golive rollback` again — do the"
        " manual steps listed, then `golive rollback --yes` again"), error
    assert env.apache.upstream_file.read_text() == upstream
    assert failed.stderr.splitlines()[1].startswith(f"  by hand: make sure the blue container {env.blue} runs")
    env.write_config()
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None


def test_undoing_a_prepare_with_docker_unreachable_names_the_container_to_remove(
        env: SwapEnv, cli, tmp_path: Path) -> None:
    assert cli("swap", "--prepare", "--yes").exit_code == 0
    env.write_config(docker_url=_dead(tmp_path))
    failed = cli("rollback", "--yes")
    assert failed.exit_code == 4
    assert failed.stderr.splitlines()[0].endswith(
        f" failed: the Docker daemon at {_dead(tmp_path)} does not answer (DockerException): green ({env.green}),"
        " prepared and not live, was not removed — start dockerd, or fix [containers].docker_url — do the manual"
        " steps listed, then `golive rollback --yes` again"), failed.stderr
    assert failed.stderr.splitlines()[1:] == [
        f"  by hand: `docker rm -f {env.green}` once Docker answers: the green container golive prepared (it is not"
        " live)"]
    blue_live(env)
    env.write_config()
    assert cli("rollback", "--yes").exit_code == 0
    assert env.container(env.green) is None


def test_undoing_a_finalize_with_docker_unreachable_touches_nothing_and_a_later_rollback_finishes(
        env: SwapEnv, cli, tmp_path: Path) -> None:
    assert cli("swap", "--yes").exit_code == 0
    assert cli("swap", "finalize", "--yes").exit_code == 0
    env.write_config(docker_url=_dead(tmp_path))
    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert set(result.bodies()) == {"green"}  # the live colour untouched
    failed = out[0]
    assert failed.exit_code == 4
    assert failed.stderr.splitlines()[0].endswith(
        f" failed: the Docker daemon at {_dead(tmp_path)} does not answer (DockerException): blue ({env.blue}) was not"
        " made again; the live colour was not touched — start dockerd, or fix [containers].docker_url — do the"
        " manual steps listed, then `golive rollback --yes` again"), failed.stderr
    env.write_config()
    assert cli("rollback", "--yes").exit_code == 0  # blue made again
    result = under_load(env, lambda: cli("rollback", "--yes"))
    assert result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None
