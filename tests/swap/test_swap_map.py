"""Map mode ([proxy] switch = "map"): the same swap behind a real Apache and Docker engine, the
upstream being a mod_rewrite RewriteMap that is renamed into place. Under load, not one request
may fail, no keep-alive connection may be closed on a client, and Apache is never restarted."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time

import pytest

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from golive.sandbox.load import Load
from tests.swap.test_swap import blue_live, failed_swap, under_load


def generations(env: SwapEnv) -> int:
    """How many times Apache (re)started: each generation logs `resuming normal operations`."""
    return (env.apache.root / "error.log").read_text().count("resuming normal operations")


def test_map_swap_and_rollback_fail_no_request_and_never_restart_apache(swap_env_map: SwapEnv, cli) -> None:
    env = swap_env_map
    started = generations(env)
    outputs = []

    def swap_then_back(load: Load) -> None:
        load.phase = "swap"
        outputs.append(cli("-v", "swap", "--yes"))
        load.phase = "green"
        time.sleep(0.5)
        load.phase = "undo"
        outputs.append(cli("rollback", "--yes"))
        load.phase = "blue"

    result = under_load(env, swap_then_back)
    swapped, rolled = outputs
    assert swapped.exit_code == 0, swapped.stderr
    assert f"    apply: proxy upstream -> http://127.0.0.1:{env.green_port} (map, no reload)" in swapped.lines
    assert rolled.exit_code == 0, rolled.stderr
    by_phase = {phase: {s.body for s in result.samples if s.phase == phase} for phase in ("steady", "green", "blue")}
    assert by_phase == {"steady": {"blue"}, "green": {"green"}, "blue": {"blue"}}
    assert result.retries == 0  # no keep-alive connection was closed under a client
    assert generations(env) == started  # Apache was never restarted
    blue_live(env)
    assert cli("status").lines[-1] == f"swap:      live=blue, upstream=http://127.0.0.1:{env.blue_port}, idle=green (none)"
    assert env.container(env.green) is None


def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET a request target exactly as written (no client-side normalising of %-escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_map_mode_passes_paths_as_the_client_sent_them(swap_env_map: SwapEnv) -> None:
    # mod_rewrite refuses a rewritten path holding a decoded `?` (AH10508, 403); the vhost forwards the
    # path still encoded, as ProxyPass does in reload mode, so the application answers it
    env = swap_env_map
    for target in ("/version%3Fx", "/version?x=%3F", "/version", "/no%20such%3Ffile?a=1"):
        assert _raw_get(env.apache.port, target) == _raw_get(env.blue_port, target), target
    assert _raw_get(env.apache.port, "/version?x=%3F") == (200, b"blue\n")


def test_map_never_healthy_leaves_blue_live(swap_env_map: SwapEnv, cli) -> None:
    env = swap_env_map
    before = env.apache.upstream_file.stat().st_mtime_ns
    env.write_config(image=env.images["broken"], health_timeout=2)
    err = failed_swap(env, cli).stderr
    assert f"{env.green} did not become healthy within 2s (GET /healthz -> 404); it was removed." in err
    assert env.apache.upstream_file.stat().st_mtime_ns == before  # the map was never touched


def test_map_failing_configtest_writes_nothing(swap_env_map: SwapEnv, cli, tmp_path) -> None:
    env = swap_env_map
    broken = tmp_path / "broken.conf"
    broken.write_text(env.apache.conf.read_text() + "ThisIsNotADirective on\n")
    env.write_config(test_command=["apache2", "-f", str(broken), "-t"])
    err = failed_swap(env, cli).stderr
    assert f"proxy test `apache2 -f {broken} -t` failed:" in err
    assert "the upstream file was not changed" in err


@pytest.mark.parametrize("fault", ["swap.swap:before-reload:kill", "swap.swap:after-reload:kill"])
def test_map_sigkill_mid_switch_then_rollback(swap_env_map: SwapEnv, cli, fault: str) -> None:
    env = swap_env_map

    def crash_then_rollback() -> None:
        proc = subprocess.run([sys.executable, "-m", "golive", "swap", "--yes"], cwd=env.project,
                              env={**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": fault},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        if fault.endswith("after-reload:kill"):  # the map was renamed into place: green answers already
            assert env.apache.upstream_file.read_text() == f"upstream http://127.0.0.1:{env.green_port}\n"
        rolled = cli("rollback", "--yes")
        assert rolled.exit_code == 0, rolled.stderr

    result = under_load(env, crash_then_rollback)
    assert result.bodies()[0] == "blue" and result.bodies()[-1] == "blue"
    assert result.failures == 0 and result.retries == 0
    blue_live(env)
    assert env.container(env.green) is None


def test_map_mode_against_a_site_that_ignores_the_map_is_caught_and_undone(swap_env: SwapEnv, cli) -> None:
    """golive set to map mode, Apache still proxying through the include: the configtest passes, but
    the confirmation through the public URL sees blue, so the swap fails and is undone."""
    env = swap_env  # Apache in reload mode: it never reads the map below
    unused = env.project / "golive-upstream.map"
    unused.write_text(f"upstream http://127.0.0.1:{env.blue_port}\n")
    config = env.project / "golive.toml"
    config.write_text(config.read_text().replace('switch = "reload"', 'switch = "map"')
                      .replace(f'upstream_file = "{env.apache.upstream_file}"', f'upstream_file = "{unused}"')
                      .replace("[proxy]\n", "[proxy]\nconfirm_timeout = 2\n"))
    out = []
    result = under_load(env, lambda: out.append(cli("swap", "--yes")))
    assert out[0].exit_code == 1, out[0].stdout
    assert (f"through the proxy, /healthz is still served by http://127.0.0.1:{env.blue_port}, not"
            f" http://127.0.0.1:{env.green_port}, after 2s ([proxy].confirm_timeout): the site does not follow the map"
            f" — does the site use the RewriteMap of {unused}") in out[0].stderr  # (the vhost tells golive's probes)
    assert result.bodies() == ["blue"] and result.failures == 0
    assert unused.read_text() == f"upstream http://127.0.0.1:{env.blue_port}\n"  # put back by the undo
    assert env.container(env.green) is None


def test_a_map_rollback_with_apache_stopped_says_apache_answers_nothing(swap_env_map: SwapEnv, cli) -> None:
    """Map mode switches without Apache: with Apache stopped the undo wrote the map, waited confirm_timeout and
    failed "through the proxy, /version answers nothing, not 'blue'", no word of Apache; now it asks whether
    Apache runs, and the map already points back at blue for when it does."""
    env = swap_env_map
    env.write_config(proxy_extra="confirm_timeout = 1\n")
    assert cli("swap", "--yes").exit_code == 0
    env.apache.stop()
    try:
        failed = cli("rollback", "--yes")
    finally:
        env.apache.start(f"http://127.0.0.1:{env.blue_port}")
    assert failed.exit_code == 4, failed.stderr
    first = failed.stderr.splitlines()[0]
    assert f"failed: through the proxy, {env.apache.url}/version answers nothing (" in first, first
    assert ") after 1s ([proxy].confirm_timeout), so blue could not be confirmed: is Apache running? — start Apache" \
           " (it reads the upstream golive wrote: blue)" in first, first
    assert f"127.0.0.1:{env.blue_port}" in env.apache.upstream_file.read_text()
