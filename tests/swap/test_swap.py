"""Blue-green swap behind a real Apache with a real Docker engine, under a bounded load: not one
request may fail during a swap, its undo, or any failure (which must leave blue answering)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from golive.sandbox.bluegreen import free_port
from golive.sandbox.load import Load, LoadResult


def under_load(env: SwapEnv, action, settle: float = 0.4) -> LoadResult:
    load = Load(env.apache.url + "/version", clients=8, max_seconds=90).start()
    time.sleep(settle)
    try:
        action(load) if action.__code__.co_argcount else action()
        time.sleep(settle)
    finally:
        result = load.stop()
    assert result.requests > 50, "the load did not run"
    assert result.failures == 0, f"{result.failures} failed requests: {result.errors}"
    return result


def failed_swap(env: SwapEnv, cli, *args: str):
    """A swap that must fail under load, leaving blue answering every request and green gone."""
    out = []
    result = under_load(env, lambda: out.append(cli("swap", "--yes", *args)))
    assert out[0].exit_code == 1, out[0].stdout
    assert result.bodies() == ["blue"]
    blue_live(env)
    assert env.container(env.green) is None
    return out[0]


def rolled_back_to_blue(env: SwapEnv, cli, said: str) -> None:
    """`golive rollback` under load, from green: no request fails, the answers end on blue, green is gone, and
    the undo's log has ``said``."""
    out = []
    result = under_load(env, lambda: out.append(cli("-v", "rollback", "--yes")))
    assert out[0].exit_code == 0, out[0].stderr
    assert said in out[0].lines
    assert result.bodies()[0] == "green" and result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None


def blue_live(env: SwapEnv) -> None:
    blue = f"http://127.0.0.1:{env.blue_port}"
    line = f"upstream {blue}\n" if env.switch == "map" else f"Define GOLIVE_UPSTREAM {blue}\n"
    assert env.apache.upstream_file.read_text() == line
    assert env.container(env.blue) is not None and env.container(env.blue).status == "running"


def test_swap_to_green_and_rollback_fail_no_request(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    blue_id = env.container(env.blue).id
    outputs = []

    def swap_then_back(load: Load) -> None:
        load.phase = "swap"
        outputs.append(cli("swap", "--yes"))
        time.sleep(0.3)  # graceful: old children finish the request they are serving
        load.phase = "green"
        time.sleep(0.5)
        load.phase = "undo"
        outputs.append(cli("rollback", "--yes"))
        time.sleep(0.3)
        load.phase = "blue"

    result = under_load(env, swap_then_back)
    swapped, rolled = outputs
    assert swapped.exit_code == 0, swapped.stderr
    assert swapped.lines[1] == "  [1] swap to the idle colour"
    built = env.docker.images.get(env.images["green"]).id.removeprefix("sha256:")[:12]
    assert swapped.lines[2] == (f"      container {env.green} (green): create running {env.images['green']} ({built})"
                                f" on 127.0.0.1:{env.green_port}")
    assert swapped.lines[3] == f"      proxy upstream: http://127.0.0.1:{env.blue_port} -> http://127.0.0.1:{env.green_port}"
    assert rolled.exit_code == 0, rolled.stderr
    by_phase = {phase: {s.body for s in result.samples if s.phase == phase} for phase in ("steady", "green", "blue")}
    assert by_phase == {"steady": {"blue"}, "green": {"green"}, "blue": {"blue"}}
    print(f"requests={result.requests} failures={result.failures} retries={result.retries}")
    blue_live(env)
    assert env.container(env.blue).id == blue_id  # the adopted container was kept, never recreated
    assert cli("status").lines[-1] == f"swap:      live=blue, upstream=http://127.0.0.1:{env.blue_port}, idle=green (none)"
    assert env.container(env.green) is None


def test_swap_with_docker_healthcheck_then_finalize_and_undo_it(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    swapped = cli("-v", "swap", "--yes", "--image", env.images["green-hc"])
    assert swapped.exit_code == 0, swapped.stderr
    assert f"    apply: adopting {env.blue} (blue), started outside golive" in swapped.lines
    labels = env.container(env.green).labels
    assert (labels["golive.color"], labels["golive.image"]) == ("green", env.images["green-hc"])
    assert env.container(env.green).attrs["State"]["Health"]["Status"] == "healthy"
    finalized = cli("swap", "finalize", "--yes")
    assert finalized.exit_code == 0, finalized.stderr
    assert env.container(env.blue) is None
    assert cli("rollback", "--yes").exit_code == 0  # undo finalize: blue comes back from its image
    assert env.container(env.blue).status == "running"
    assert env.images["blue"] in env.container(env.blue).image.tags
    result = under_load(env, lambda: cli("rollback", "--yes"))  # undo the swap
    assert result.bodies()[0] == "green" and result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None


def test_image_not_found_leaves_blue_live(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    missing = f"127.0.0.1:{free_port()}/nothing-here:v1"  # a registry on loopback that does not exist
    planned = cli("swap", "--dry-run", "--image", missing)
    assert f"create running {missing} (not on this host: pulled first) on " in planned.stdout
    failed = failed_swap(env, cli, "--image", missing)
    assert f"image {missing} is not on this host and cannot be pulled" in failed.stderr


def test_a_proxy_that_answers_nothing_stops_the_swap_before_anything_changes(swap_env: SwapEnv, cli) -> None:
    """Apache down at swap time: map mode switched, could not confirm, could not confirm its undo either, and
    ended half rolled back (exit 4) with green running; reload mode's graceful restart started Apache unasked."""
    env = swap_env
    env.apache.stop()
    upstream = env.apache.upstream_file.read_text()
    for args in (["--dry-run"], ["--yes"]):
        refused = cli("swap", *args)
        assert refused.exit_code == 1
        assert refused.stderr.startswith(f"error: the site answers nothing through the proxy ({env.apache.url}/healthz:"
                                         " ConnectError) before the swap; nothing was changed — is Apache running")
    assert env.container(env.green) is None
    assert env.apache.upstream_file.read_text() == upstream
    assert not (env.apache.root / "httpd.pid").exists()  # (not started as a side effect)
    assert cli("history").stdout.startswith("no runs")


def test_host_port_taken_leaves_blue_live(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", env.green_port))
    squatter.listen()
    try:
        failed = failed_swap(env, cli)
    finally:
        squatter.close()
    assert f"host port 127.0.0.1:{env.green_port} for green is taken by something else" in failed.stderr


def test_never_healthy_shows_logs_removes_it_and_leaves_blue_live(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.write_config(image=env.images["broken"], health_timeout=2)
    err = failed_swap(env, cli).stderr
    assert f"{env.green} did not become healthy within 2s (GET /healthz -> 404); it was removed." in err
    assert "Last log lines:" in err


def test_failing_configtest_never_reloads_and_leaves_blue_live(swap_env: SwapEnv, cli, tmp_path) -> None:
    env = swap_env
    broken = tmp_path / "broken.conf"
    broken.write_text(env.apache.conf.read_text() + "ThisIsNotADirective on\n")
    env.write_config(test_command=["apache2", "-f", str(broken), "-t"])
    assert f"proxy test `apache2 -f {broken} -t` failed:" in failed_swap(env, cli).stderr


def test_docker_unreachable_is_a_clear_error(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.write_config(docker_url="unix:///nonexistent/docker.sock")
    assert failed_swap(env, cli).stderr == (
        "error: the Docker daemon at unix:///nonexistent/docker.sock does not answer (DockerException)"
        " — start dockerd, or fix [containers].docker_url; nothing was changed\n")
    env.write_config()  # no docker_url: the SDK's environment, named as it was found
    planned = cli("swap", "--dry-run", env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert (planned.exit_code, planned.stderr) == (1, "error: the Docker daemon at tcp://127.0.0.1:1 (DOCKER_HOST) does"
                                                      " not answer (DockerException) — start dockerd, or fix"
                                                      " [containers].docker_url; nothing was changed\n")


def test_hung_docker_daemon_is_a_clear_error_within_seconds(swap_env: SwapEnv, cli, monkeypatch, tmp_path) -> None:
    # a socket that takes the connection and never answers (a hung dockerd): the SDK alone waits 60 s a call
    from golive.swap import docker_gateway

    monkeypatch.setattr(docker_gateway, "PING_TIMEOUT", 1.0, raising=False)
    env = swap_env
    with socket.socket(socket.AF_UNIX) as hung:
        hung.bind(str(tmp_path / "hung.sock"))
        hung.listen(8)
        env.write_config(docker_url=f"unix://{tmp_path}/hung.sock")
        started = time.monotonic()
        err = failed_swap(env, cli).stderr
    assert time.monotonic() - started < 15
    assert err == (f"error: the Docker daemon at unix://{tmp_path}/hung.sock does not answer within 1s"
                   " — start dockerd, or fix [containers].docker_url; nothing was changed\n")


@pytest.mark.parametrize("fault", ["swap.swap:health-wait:pause", "swap.swap:before-reload:kill",
                                   "swap.swap:after-reload:kill"])
def test_sigkill_mid_swap_then_rollback(swap_env: SwapEnv, cli, fault: str) -> None:
    env = swap_env
    marker = env.project / "paused"

    def crash_then_rollback() -> None:
        proc = subprocess.Popen([sys.executable, "-m", "golive", "swap", "--yes"], cwd=env.project,
                                env={**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": fault, "GOLIVE_FAULT_MARKER": str(marker)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if fault.endswith("pause"):
            deadline = time.monotonic() + 30
            while not marker.exists():
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        rolled = cli("rollback", "--yes")
        assert rolled.exit_code == 0, rolled.stderr

    result = under_load(env, crash_then_rollback)
    assert result.bodies()[0] == "blue" and result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None


def test_rollback_starts_a_stopped_old_colour_before_pointing_back(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    env.container(env.blue).stop(timeout=1)  # someone stopped blue during the bake
    rolled_back_to_blue(env, cli, f"    undo: container {env.blue}: start again")


def test_the_rollback_plan_shows_an_upstream_someone_switched_back_by_hand(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    blue = f"http://127.0.0.1:{env.blue_port}"
    assert f"      proxy upstream: http://127.0.0.1:{env.green_port} -> {blue}" in cli("rollback", "--dry-run").lines
    env.apache.point_at(blue)  # switched back by hand during the bake
    env.apache.graceful()
    assert f"      proxy upstream (changed since the run): unchanged ({blue})" in cli("rollback", "--dry-run").lines
    assert cli("rollback", "--yes").exit_code == 0
    blue_live(env)
    assert env.container(env.green) is None


def test_a_sandbox_that_cannot_start_takes_down_what_it_started(tmp_path, docker_client, images) -> None:
    import shutil

    import docker.errors

    from tests.conftest import require_real

    require_real("apache2", shutil.which("apache2") is not None)
    env = SwapEnv(tmp_path, docker_client, images)
    with socket.socket() as taken:  # Apache's port, already taken: Apache cannot start
        taken.bind(("127.0.0.1", env.apache.port))
        taken.listen()
        with pytest.raises(RuntimeError, match="apache"):
            env.up()
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(env.blue)  # the blue container it had started was removed


def test_container_secrets_stay_out_of_the_journal_and_a_recreated_colour_gets_them_back(
        tmp_path, docker_client, images, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import shutil
    import stat

    from golive.sandbox.apache import MODULES
    from tests.conftest import require_real

    require_real("apache2", shutil.which("apache2") is not None and (MODULES / "mod_proxy_http.so").exists())
    blue_env = {"DATABASE_URL": "postgres://app:blue-pw-5521@db/app", "DJANGO_SECRET_KEY": "blue-key-9af3c1"}
    env = SwapEnv(tmp_path, docker_client, images, blue_env=blue_env).up()
    try:
        monkeypatch.chdir(env.project)
        monkeypatch.delenv("DOCKER_HOST", raising=False)
        env_file = env.project / "app.env"
        env_file.write_text("# the new release's settings\nDATABASE_URL=postgres://app:green-pw-7730@db/app\n"
                            "DEBUG=0\nFROM_GOLIVE\n")
        env_file.chmod(0o644)
        env.write_config(containers_extra='env_file = "app.env"\nenv = { DJANGO_SECRET_KEY = "env:GREEN_KEY" }\n')
        secrets = [*blue_env.values(), "green-pw-7730", "green-key-40d2e8"]
        run_env = {"GREEN_KEY": "green-key-40d2e8", "FROM_GOLIVE": "passed-through"}

        shared = cli("swap", "--yes", env=run_env)  # the env_file holds secrets: it must be the owner's alone
        assert (shared.exit_code, shared.stderr) == (2, f"error: [containers].env_file {env_file} is readable by"
                                                        f" group/others (mode 0644) — run: chmod 600 {env_file}\n")
        env_file.chmod(0o600)
        swapped = cli("swap", "--yes", env=run_env)
        assert swapped.exit_code == 0, swapped.stderr
        state = env.project / ".golive"
        kept = sorted((state / "containers").iterdir())  # how to make blue again, for the undo: its secrets too
        assert kept and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)
        assert stat.S_IMODE((state / "containers").stat().st_mode) == 0o700
        green = env.container(env.green).attrs["Config"]["Env"]
        assert {"DATABASE_URL=postgres://app:green-pw-7730@db/app", "DJANGO_SECRET_KEY=green-key-40d2e8",
                "DEBUG=0", "FROM_GOLIVE=passed-through"} <= set(green)
        assert cli("swap", "finalize", "--yes").exit_code == 0
        assert env.container(env.blue) is None
        assert cli("rollback", "--yes").exit_code == 0  # undo finalize: blue is created again, secrets and all
        recreated = env.container(env.blue).attrs["Config"]["Env"]
        assert {f"{k}={v}" for k, v in blue_env.items()} <= set(recreated)
        result = under_load(env, lambda: cli("rollback", "--yes"))  # undo the swap
        assert result.bodies()[-1] == "blue"
        blue_live(env)

        assert list((state / "containers").iterdir()) == []  # nothing left to undo: no copy of a secret kept
        runs = [line.split()[0] for line in cli("history").lines[1:]]
        shown = [cli("history", run, "--json").stdout for run in runs]
        shown += [cli("report", run, "--format", "md", "-o", "-").stdout for run in runs]
        on_disk = [p.read_bytes().decode(errors="replace") for p in state.rglob("*") if p.is_file()]
        for text in [swapped.stdout, swapped.stderr, *shown, *on_disk]:
            for secret in secrets:
                assert secret not in text
        records = json.loads(cli("history", runs[-1], "--json").stdout)
        assert "DJANGO_SECRET_KEY" in json.dumps(records)  # the names are kept, to say what a manual recreate needs
    finally:
        env.down()


def test_a_missing_env_file_stops_the_swap_before_the_prompt(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.write_config(containers_extra='env_file = "missing.env"\n')
    for args in (["--dry-run"], ["--yes"]):
        failed = cli("swap", *args)
        assert (failed.exit_code, failed.stderr) == (
            2, f"error: [containers].env_file {env.project}/missing.env does not exist — create it (KEY=value lines,"
               " mode 600), or remove env_file\n")
    blue_live(env)
    assert env.container(env.green) is None
    assert cli("history").stdout.startswith("no runs")


def test_finalize_with_no_old_colour_makes_no_run(swap_env: SwapEnv, cli) -> None:
    import json

    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    env.container(env.blue).remove(force=True)  # someone removed the old colour by hand
    nothing = cli("swap", "finalize", "--yes")
    assert (nothing.exit_code, nothing.lines) == (0, [
        "Plan: swap finalize — 1 step(s), 1 change(s)", "  [1] swap finalize", f"      container {env.blue} (blue): absent",
        "nothing to do: every change is already in place (no run was made)"])
    doc = json.loads(cli("swap", "finalize", "--yes", "--json").stdout)
    assert doc == {"event": "result", "ok": True, "run": None, "status": "nothing to do", "steps": [
        {"seq": 1, "kind": "swap.finalize", "title": "swap finalize", "note": "", "changes": [
            {"what": f"container {env.blue} (blue)", "action": "noop", "before": None, "after": None}]}], "notices": []}
    assert "would undo 1 step(s) of run" in cli("status").stdout
    assert [line.split()[1] for line in cli("history").lines[1:]] == ["swap"]  # rollback still undoes the swap


def test_finalize_waits_for_the_bake_time_unless_forced(swap_env: SwapEnv, cli) -> None:
    import re

    env = swap_env
    config = env.write_config()
    config.write_text(config.read_text().replace("bake_time = 0", "bake_time = 3600"))
    assert cli("swap", "--yes").exit_code == 0
    early = cli("swap", "finalize", "--yes")
    assert early.exit_code == 2
    assert re.fullmatch(r"error: the last swap was \d+s ago, inside the bake time of 3600s — wait \d+s more while the"
                        r" new colour serves \(`golive status`\), or pass --force\n", early.stderr), early.stderr
    assert env.container(env.blue) is not None  # the old colour is still there for a rollback
    assert cli("swap", "finalize", "--yes", "--force").exit_code == 0
    assert env.container(env.blue) is None


def test_rollback_after_finalize_brings_back_the_old_build_even_when_its_tag_moved_on(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    repo = env.images["blue"].split(":")[0] + "-app"
    env.docker.images.get(env.images["blue"]).tag(repo, "latest")  # the release process's mutable tag
    env.container(env.blue).remove(force=True)
    env.docker.containers.run(f"{repo}:latest", name=env.blue, detach=True,
                              ports={"8000/tcp": ("127.0.0.1", env.blue_port)})
    try:
        env.docker.images.get(env.images["green"]).tag(repo, "latest")  # the new build takes the tag
        assert cli("swap", "--yes", "--image", f"{repo}:latest").exit_code == 0
        assert cli("swap", "finalize", "--yes").exit_code == 0
        undone = cli("-v", "rollback", "--yes")  # undo finalize: blue made again, from the build it ran
        assert undone.exit_code == 0, undone.stderr
        blue_build = env.docker.images.get(env.images["blue"]).id
        assert f"    undo: container {env.blue}: recreate from {repo}:latest ({blue_build[7:19]})" in undone.lines
        assert env.container(env.blue).attrs["Image"] == blue_build
        result = under_load(env, lambda: cli("rollback", "--yes"))  # undo the swap: the old release answers
        assert result.bodies()[-1] == "blue"
        blue_live(env)
    finally:
        env.docker.images.remove(f"{repo}:latest", force=True)


def test_an_adopted_container_comes_back_with_its_volumes_networks_and_settings(swap_env: SwapEnv, cli,
                                                                                tmp_path) -> None:
    import httpx

    env = swap_env
    media = tmp_path / "media"
    media.mkdir()
    (media / "photo.txt").write_text("a user's photo\n")
    media.chmod(0o755)
    network = env.docker.networks.create(f"golive-net-{env.suffix}")
    try:
        env.container(env.blue).remove(force=True)  # blue as compose would run it: a volume, a network, a user
        env.docker.containers.run(env.images["blue"], name=env.blue, detach=True, user="65534",
                                  ports={"8000/tcp": ("127.0.0.1", env.blue_port)}, labels={"com.example.app": "web"},
                                  volumes={str(media): {"bind": "/www/media", "mode": "ro"}},
                                  restart_policy={"Name": "always"}, network=network.name,
                                  healthcheck={"test": ["CMD", "/bin/busybox", "true", "postgres://app:hc-pw-3311@db/app"],
                                               "interval": 1_000_000_000})
        network.reload()
        env.docker.api.disconnect_container_from_network(env.blue, network.name)
        env.docker.api.connect_container_to_network(env.blue, network.name, aliases=["web", "directory"])
        before = env.container(env.blue).attrs
        assert cli("swap", "--yes").exit_code == 0
        assert cli("swap", "finalize", "--yes").exit_code == 0
        assert cli("rollback", "--yes").exit_code == 0  # undo finalize: blue made again, as it was
        after = env.container(env.blue).attrs
        assert after["Id"] != before["Id"]
        for key in ("User", "Entrypoint", "Cmd", "WorkingDir", "ExposedPorts", "Healthcheck"):
            assert after["Config"][key] == before["Config"][key], key  # (the healthcheck's password too)
        # its labels, and golive's naming the image it was started from (its Config.Image is the build's id now)
        assert after["Config"]["Labels"] == {**before["Config"]["Labels"], "golive.ref": env.images["blue"]}
        journal = (env.project / ".golive" / "journal.db").read_bytes()
        assert b"hc-pw-3311" not in journal and b"***" not in journal  # nothing of the spec in the journal
        for key in ("Binds", "PortBindings", "RestartPolicy", "NetworkMode"):
            assert after["HostConfig"][key] == before["HostConfig"][key], key
        assert {"web", "directory"} <= set(after["NetworkSettings"]["Networks"][network.name]["Aliases"])
        deadline = time.monotonic() + 10
        while True:  # the volume is back: the old colour serves the users' files again
            try:
                answer = httpx.get(f"http://127.0.0.1:{env.blue_port}/media/photo.txt", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.text == "a user's photo\n"
        result = under_load(env, lambda: cli("rollback", "--yes"))
        assert result.bodies()[-1] == "blue"
        blue_live(env)
    finally:
        env.down()
        network.remove()


def test_the_new_colour_gets_its_volumes_networks_and_hosts_and_a_missing_one_stops_the_plan(
        swap_env: SwapEnv, cli, tmp_path) -> None:
    env = swap_env
    media = tmp_path / "media"
    media.mkdir()
    (media / "photo.txt").write_text("a user's photo\n")
    media.chmod(0o755)
    networks = [env.docker.networks.create(f"golive-{name}-{env.suffix}") for name in ("db", "cache")]
    try:
        extra = (f'volumes = ["{tmp_path}/medai:/www/media:ro"]\nnetworks = ["{networks[0].name}", "nope-{env.suffix}"]\n'
                 'extra_hosts = { "host.docker.internal" = "host-gateway" }\n')
        env.write_config(containers_extra=extra)  # a typo'd media path, a network nobody made
        for args in (["--dry-run"], ["--yes"]):
            refused = cli("swap", *args)
            assert (refused.exit_code, refused.stderr) == (2, (
                f"error: [containers] names host path {tmp_path}/medai, network nope-{env.suffix}, which does not exist"
                " — create it, or fix [containers].volumes / networks\n"))
        assert env.container(env.green) is None
        env.write_config(containers_extra=extra.replace("medai", "media").replace(f"nope-{env.suffix}", networks[1].name))
        result = under_load(env, lambda: cli("swap", "--yes"))
        assert result.bodies()[-1] == "green"
        green = env.container(env.green).attrs
        assert green["HostConfig"]["Binds"] == [f"{media}:/www/media:ro"]
        assert green["HostConfig"]["ExtraHosts"] == ["host.docker.internal:host-gateway"]
        assert {n.name for n in networks} <= set(green["NetworkSettings"]["Networks"])
        import httpx

        assert httpx.get(env.apache.url + "/media/photo.txt").text == "a user's photo\n"  # through Apache, from green
        assert cli("rollback", "--yes").exit_code == 0
        blue_live(env)
    finally:
        env.down()
        for network in networks:
            network.remove()


def test_a_reload_that_fails_is_undone_without_a_manual_step_when_blue_still_answers(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.write_config(reload_command=["sh", "-c", "echo 'AH00000: httpd (pid 1) not signalled' >&2; exit 1"])
    failed = failed_swap(env, cli)  # exit 1 (not 4): rolled back, blue answering throughout, green removed
    assert "proxy reload `sh -c echo 'AH00000: httpd (pid 1) not signalled' >&2; exit 1` failed: AH00000: httpd (pid 1)" \
           " not signalled — Apache may still run its previous configuration" in failed.stderr
    assert "the public URL answers from blue all the same, so the undo goes on" in failed.stdout


def test_a_site_that_checks_the_host_is_probed_with_public_host(swap_env: SwapEnv, cli) -> None:
    from golive.sandbox.images import build_image

    env = swap_env
    site = "directory.example.org"  # like Django's ALLOWED_HOSTS: any other Host gets 400
    tags = {color: f"{env.images['blue'].split(':')[0]}-hostcheck:{color}" for color in ("blue", "green")}
    for color, tag in tags.items():
        build_image(env.docker, tag, color, allowed_host=site)
    try:
        env.container(env.blue).remove(force=True)
        env.docker.containers.run(tags["blue"], name=env.blue, detach=True,
                                  ports={"8000/tcp": ("127.0.0.1", env.blue_port)})
        env.write_config(image=tags["green"], health_timeout=2, health_path="/cgi-bin/healthz")
        refused = failed_swap(env, cli)
        assert f"{env.green} did not become healthy within 2s (GET /cgi-bin/healthz -> 400)" in refused.stderr
        assert "a Django app answers 400 to a Host it does not allow (ALLOWED_HOSTS): set [proxy].public_host" \
               in refused.stderr
        env.write_config(image=tags["green"], health_timeout=10, health_path="/cgi-bin/healthz",
                         proxy_extra=f'public_host = "{site}"\n')
        swapped = under_load(env, lambda: cli("swap", "--yes"))  # health, version and the public check all pass
        assert swapped.bodies()[-1] == "green"
        assert cli("rollback", "--yes").exit_code == 0
        blue_live(env)
    finally:
        env.down()
        for tag in tags.values():
            env.docker.images.remove(tag, force=True)


def test_prepare_ahead_then_the_swap_only_switches(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    out = []
    prepared = under_load(env, lambda: out.append(cli("swap", "--prepare", "--yes")))  # nothing switches
    assert out[0].exit_code == 0, out[0].stderr
    assert prepared.bodies() == ["blue"]
    blue_live(env)
    green_id = env.container(env.green).id
    assert cli("status").lines[-1] == (f"swap:      live=blue, upstream=http://127.0.0.1:{env.blue_port},"
                                       f" idle=green (running {env.images['green']})")
    early = cli("swap", "finalize", "--yes")  # the idle colour is the next release here, not the old one
    assert (early.exit_code, early.stderr) == (2, "error: the idle colour (green) was prepared by `golive swap --prepare`,"
                                                  " not left by a swap: finalize would remove the release about to go"
                                                  " live — `golive swap` switches to it; `golive rollback` removes it\n")
    planned = cli("swap", "--dry-run")
    built = env.docker.images.get(env.images["green"]).id.removeprefix("sha256:")[:12]
    assert planned.lines[2] == (f"      container {env.green} (green): unchanged (running {env.images['green']} ({built})"
                                f" on 127.0.0.1:{env.green_port}, prepared (`swap --prepare`): kept)")
    swapped = []
    result = under_load(env, lambda: swapped.append(cli("-v", "swap", "--yes")))
    assert swapped[0].exit_code == 0, swapped[0].stderr
    assert f"    apply: container {env.green}: prepared with {env.images['green']}, running: kept" in swapped[0].lines
    assert result.bodies()[0] == "blue" and result.bodies()[-1] == "green"
    assert env.container(env.green).id == green_id  # the prepared container went live, not a new one
    runs = [line.split()[0] for line in cli("history").lines[1:]]  # newest first: swap, swap prepare
    refused = cli("rollback", "--run", runs[1], "--yes")  # the prepared colour is live: not while the swap stands
    assert (refused.exit_code, refused.stderr) == (1, "error: green is live now: a swap went to the prepared colour —"
                                                      " roll that swap back first (`golive rollback`), then this\n")
    undone = under_load(env, lambda: cli("rollback", "--yes"))  # the swap: back to blue, green stays prepared
    assert undone.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green).id == green_id
    assert cli("rollback", "--run", runs[1], "--yes").exit_code == 0  # and now the prepare
    assert env.container(env.green) is None


def test_a_rollback_whose_upstream_file_says_blue_already_reloads_and_confirms_before_removing_green(
        swap_env: SwapEnv, cli) -> None:
    """A rollback killed between writing the upstream file and the graceful reload (or the file put back by hand
    and not reloaded): Apache still serves green. The undo saw the file right, reloaded nothing and removed green
    while Apache proxied to it: thousands of 502/503, exit 0, and the site down."""
    import httpx

    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    blue = f"http://127.0.0.1:{env.blue_port}"
    env.apache.point_at(blue)  # written, never reloaded
    assert httpx.get(env.apache.url + "/version").text == "green\n"
    shown = cli("status").lines[-1]  # the file says blue; status says what Apache really serves
    assert shown.startswith(f"swap:      live=blue, upstream={blue}, idle=green (running "), shown
    assert shown.endswith(f", serving=http://127.0.0.1:{env.green_port} — not what the upstream file says: a swap or"
                          " rollback stopped before its reload (`golive rollback`), or the file edited by hand"
                          f" (`{shlex.join(env.apache.test_command)} && {shlex.join(env.apache.reload_command)}`"
                          " once it is right)"), shown
    rolled_back_to_blue(env, cli, f"    undo: proxy upstream is {blue} already: configtest and graceful reload all the same")


def test_a_rollback_that_cannot_confirm_the_old_colour_removes_nothing(swap_env: SwapEnv, cli) -> None:
    """The file says blue, but Apache keeps serving green (a reload command that does nothing): the undo cannot
    confirm blue through the public URL, so green stays, and the by-hand lines say what to do, in a safe order."""
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    blue = f"http://127.0.0.1:{env.blue_port}"
    env.apache.point_at(blue)
    env.write_config(reload_command=["true"], proxy_extra="confirm_timeout = 2\n")
    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    failed = out[0]
    assert failed.exit_code == 4, failed.stderr
    assert result.bodies() == ["green"]  # green served every request, and still runs
    assert env.container(env.green).status == "running"
    assert (f"through the proxy, /version is still served by http://127.0.0.1:{env.green_port}, not blue on {blue[7:]},"
            " after 2s ([proxy].confirm_timeout): the reload did not take effect") in failed.stderr
    assert failed.stderr.splitlines()[-3:] == [
        f"  by hand: make sure the blue container {env.blue} runs and answers on {blue} (if it is gone: create it"
        f" again from {env.images['blue']} ({env.docker.images.get(env.images['blue']).id[7:19]}), with the variables"
        f" and settings kept in <state_dir>/containers/{env.container(env.blue).id}.json)",
        f"  by hand: make the upstream file say 'Define GOLIVE_UPSTREAM {blue}', run the proxy's configtest, then"
        " (switch = \"reload\" only) its graceful reload",
        "  by hand: check that [proxy].public_url answers from blue; only then remove the green container golive"
        " started (docker rm -f)"]
    env.write_config()  # the reload command fixed: the same rollback finishes the undo
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None


def test_status_names_a_recreated_colours_image_by_its_reference(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    build = env.docker.images.get(env.images["green"]).id
    # as golive makes a colour again (undo of a finalize): from the recorded build, its labels as they were
    env.docker.containers.create(build, name=env.green, labels={"golive.color": "green", "golive.image": env.images["green"]})
    assert cli("status").lines[-1] == (f"swap:      live=blue, upstream=http://127.0.0.1:{env.blue_port},"
                                       f" idle=green (created {env.images['green']})")  # not "sha256:…"


def _refused_while_unfinished(env: SwapEnv, cli, run: str, step: str) -> None:
    """swap, swap --prepare and swap finalize (and their --dry-run) refuse, naming the run and the fix; nothing
    changes, and not one request fails."""
    upstream = env.apache.upstream_file.read_text()
    ids = {name: env.container(name).id for name in (env.blue, env.green) if env.container(name) is not None}
    out = []
    commands = [("swap", "--yes"), ("swap", "--dry-run"), ("swap", "--prepare", "--yes"), ("swap", "finalize", "--yes")]
    under_load(env, lambda: out.extend(cli(*args) for args in commands))
    for refused in out:
        assert (refused.exit_code, refused.stderr.splitlines()[-1]) == (1, (  # (after a crash: a stale lock's warning)
            f"error: step 1 ({step}) of run {run} (swap) {UNFINISHED_WORDS[step]}: what Apache serves and which"
            " colour is idle are not known from the upstream file; nothing was changed — `golive rollback` puts that"
            " run back (`golive status` shows it), then run this again"))
    assert env.apache.upstream_file.read_text() == upstream
    assert {name: env.container(name).id for name in (env.blue, env.green) if env.container(name) is not None} == ids


UNFINISHED_WORDS = {"swap to the idle colour": "did not finish (interrupted, crashed, or failed and not undone)"}


def test_an_interrupted_swap_says_to_roll_back_and_a_new_swap_refuses_until_it_is(swap_env_map: SwapEnv, cli) -> None:
    """Interrupted after the switch, the hint said "or run the same command again to finish": that swap took blue,
    the old release kept for rollback, for the idle colour and started the new image in its place: both colours ran
    the new release, and the standby was gone."""
    env = swap_env_map
    marker = env.project / "paused"
    proc = subprocess.Popen([sys.executable, "-m", "golive", "swap", "--yes"], cwd=env.project,
                            env={**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "swap.swap:after-reload:pause",
                                 "GOLIVE_FAULT_MARKER": str(marker)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    run = cli("history").lines[1].split()[0]
    assert err.splitlines()[-1] == (f"error: interrupted during step 1 (swap to the idle colour) of run {run}; the"
                                    " journal is consistent — undo what was applied with `golive rollback` (`golive"
                                    " status` shows the run), then run the command again")
    _refused_while_unfinished(env, cli, run, "swap to the idle colour")
    assert env.container(env.blue).status == "running"  # the old release, kept for rollback
    result = under_load(env, lambda: cli("rollback", "--yes"))
    assert result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None
    assert cli("swap", "--yes").exit_code == 0  # put back: swapping works again


def test_a_swap_killed_between_the_write_and_the_reload_is_not_swapped_over(swap_env: SwapEnv, cli) -> None:
    """The file says green, Apache still serves blue: a new swap took blue for the idle colour and removed the
    container Apache was serving (hundreds of 502)."""
    env = swap_env
    marker = env.project / "reloading"
    env.write_config(reload_command=["sh", "-c", f"touch {marker}; sleep 60"])
    proc = subprocess.Popen([sys.executable, "-m", "golive", "swap", "--yes"], cwd=env.project,
                            env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # golive and its reload command: kill -9, OOM, a host hiccup
    proc.wait(timeout=30)
    env.write_config()
    assert f"127.0.0.1:{env.green_port}" in env.apache.upstream_file.read_text()  # the file says green...
    run = cli("history").lines[1].split()[0]
    _refused_while_unfinished(env, cli, run, "swap to the idle colour")  # ...and blue still serves every request
    result = under_load(env, lambda: cli("rollback", "--yes"))
    assert result.bodies() == ["blue"]
    blue_live(env)
    assert env.container(env.green) is None


def test_a_docker_healthy_colour_whose_health_path_fails_never_goes_live(swap_env: SwapEnv, cli, odd_images) -> None:
    """The image's HEALTHCHECK passed (it tests /version) while /healthz answered 404: golive switched on Docker's
    "healthy" alone, and for confirm_timeout the site answered 404 to every request."""
    env = swap_env
    env.write_config(image=odd_images["hc-nohealthz"], health_timeout=4)
    err = failed_swap(env, cli).stderr
    assert (f"{env.green} did not become healthy within 4s (docker health healthy, but GET /healthz -> 404); it was"
            " removed. Last log lines:") in err


def test_a_version_path_that_answers_an_error_is_no_version(swap_env: SwapEnv, cli) -> None:
    """version_path 404 on both colours: the same 404 page through the proxy "confirmed" the swap, exit 0 — even
    with a reload command that never reloaded, Apache still serving blue while golive said green was live."""
    env = swap_env
    config = env.write_config(proxy_extra="confirm_timeout = 2\n")
    config.write_text(config.read_text().replace('version_path = "/version"', 'version_path = "/nothere"'))
    err = failed_swap(env, cli).stderr
    assert (f"{env.green} answers /nothere on 127.0.0.1:{env.green_port} with 404, not a version, after 2s; the proxy"
            " was not switched — its version_path must answer 2xx") in err


def test_env_file_values_never_reach_output_journal_history_or_reports(swap_env: SwapEnv, cli, odd_images) -> None:
    """A release that prints its settings and fails its health check: the "Last log lines" showed the env_file's
    DB_PASSWORD in clear (the env: reference's value was masked), and from there --json, the journal, history and
    the report kept it."""
    import json
    import uuid

    env = swap_env
    password, key = f"envfilepw-{uuid.uuid4().hex[:8]}", f"refkey-{uuid.uuid4().hex[:8]}"
    env_file = env.project / "app.env"
    env_file.write_text(f"DB_PASSWORD={password}\n")
    env_file.chmod(0o600)
    env.write_config(image=odd_images["envdump"], health_timeout=2,
                     containers_extra='env_file = "app.env"\nenv = { SECRET_KEY = "env:XSWAP_KEY" }\n')
    failed = []
    under_load(env, lambda: failed.extend(cli("swap", "--yes", *args, env={"XSWAP_KEY": key}) for args in ([], ["--json"])))
    assert [f.exit_code for f in failed] == [1, 1]
    assert "Last log lines: DBP=*** | SK=***" in failed[0].stderr  # (the app printed them: they were there to leak)
    assert json.loads(failed[1].stdout.splitlines()[-1])["exit_code"] == 1
    blue_live(env)
    runs = [line.split()[0] for line in cli("history").lines[1:]]
    assert len(runs) == 2
    shown = [cli("history").stdout, *(cli("history", run, *args).stdout for run in runs for args in ([], ["--json"]))]
    shown += [cli("report", run, "--format", "md", "-o", "-").stdout for run in runs]
    state = env.project / ".golive"
    on_disk = [p.read_bytes().decode(errors="replace") for p in state.rglob("*") if p.is_file()]
    assert any("DBP=***" in text for text in on_disk)  # the journal has the log line, masked
    for text in [*(f.stdout for f in failed), *(f.stderr for f in failed), *shown, *on_disk]:
        assert password not in text and key not in text


def test_finalize_refuses_while_the_live_colour_is_down_or_failing(swap_env: SwapEnv, cli) -> None:
    """Green stopped (the site answering 503): finalize removed blue, the only release that worked, exit 0."""
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    green = env.container(env.green)
    green.stop(timeout=1)
    fix = f"`golive rollback` goes back to blue; or get {env.green} answering, then finalize\n"
    for args in (["--dry-run"], ["--yes"]):
        refused = cli("swap", "finalize", *args)
        assert (refused.exit_code, refused.stderr) == (1, f"error: the live colour green ({env.green}) is exited:"
                                                          " finalize would remove blue, the release that works;"
                                                          f" nothing was changed — {fix}")
    assert env.container(env.blue).status == "running"
    green.start()
    assert green.exec_run(["/bin/busybox", "rm", "/www/healthz"]).exit_code == 0  # running, but its health fails
    refused = cli("swap", "finalize", "--yes")
    assert (refused.exit_code, refused.stderr) == (1, f"error: the live colour green ({env.green}) answers /healthz with"
                                                      f" 404 on 127.0.0.1:{env.green_port}: finalize would remove blue,"
                                                      f" the release that works; nothing was changed — {fix}")
    assert env.container(env.blue).status == "running"
    assert green.exec_run(["/bin/busybox", "sh", "-c", "echo ok > /www/healthz"]).exit_code == 0
    assert cli("swap", "finalize", "--yes").exit_code == 0
    assert env.container(env.blue) is None


def test_undoing_finalize_starts_the_old_colour_an_earlier_undo_created_but_could_not_start(swap_env: SwapEnv,
                                                                                           cli) -> None:
    """The first undo recreated blue but could not start it (its port taken); the second said "rolled back"
    and left blue created, never started."""
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    assert cli("swap", "finalize", "--yes").exit_code == 0
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (blue's old connections in TIME_WAIT)
        squatter.bind(("127.0.0.1", env.blue_port))
        squatter.listen()
        taken = cli("rollback", "--yes")
    assert taken.exit_code == 4
    assert f"failed: Docker could not finish creating container {env.blue} again: its host port is taken (" \
           in taken.stderr, taken.stderr  # (not the SDK's "500 Server Error for http+docker://…")
    assert "http+docker" not in taken.stderr
    assert env.container(env.blue).status == "created"
    undone = cli("-v", "rollback", "--yes")
    assert undone.exit_code == 0, undone.stderr
    assert f"    undo: container {env.blue}: start again" in undone.lines
    assert env.container(env.blue).status == "running"
    result = under_load(env, lambda: cli("rollback", "--yes"))  # and the swap: blue answers again
    assert result.bodies()[-1] == "blue"
    blue_live(env)


class _DockerSocketProxy:
    """A unix socket forwarding to the engine's, which a test can take away (dockerd dying mid-swap); a subclass
    decides what reaches the engine (``forward``: a daemon that hangs)."""

    def __init__(self, path) -> None:
        import threading

        self.path, self.conns = path, []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX)
            engine.connect("/var/run/docker.sock")
            self.conns += [client, engine]
            for a, b, asking in ((client, engine, True), (engine, client, False)):
                threading.Thread(target=self._pump, args=(a, b, asking), daemon=True).start()

    def forward(self, data: bytes, asking: bool) -> bool:
        """Whether a chunk goes on (``asking``: from golive to the engine)."""
        return True

    def _pump(self, a: socket.socket, b: socket.socket, asking: bool) -> None:
        try:
            while data := a.recv(65536):
                if self.forward(data, asking):
                    b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def kill(self) -> None:
        self.server.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def test_docker_dying_mid_swap_is_one_line_naming_docker_and_the_fix(swap_env: SwapEnv, cli, tmp_path) -> None:
    """dockerd gone during the health wait: the step's error and the undo's were the SDK's raw
    "('Connection aborted.', ConnectionRefusedError(111, 'Connection refused'))"."""
    import threading

    env = swap_env
    sock = tmp_path / "dock.sock"
    proxy = _DockerSocketProxy(sock)
    env.write_config(image=env.images["broken"], health_timeout=20, docker_url=f"unix://{sock}")

    def kill_in_the_health_wait() -> None:  # (a fixed 2 s landed in `docker run` on a loaded machine)
        deadline = time.monotonic() + 30
        while (green := env.container(env.green)) is None or green.status != "running":
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        time.sleep(0.5)  # (the broken image never gets healthy: the wait goes on for 20 s)
        proxy.kill()

    threading.Thread(target=kill_in_the_health_wait, daemon=True).start()
    out = []
    result = under_load(env, lambda: out.append(cli("swap", "--yes")))
    assert result.bodies() == ["blue"]
    failed = out[0]
    assert failed.exit_code == 4, failed.stderr
    assert "Connection aborted" not in failed.stdout + failed.stderr
    error = failed.stderr.splitlines()[0]
    assert error.startswith(f"error: step swap to the idle colour failed (the Docker daemon at unix://{sock} stopped"
                            f" answering while checking the health of container {env.green} (connection "), error
    assert " and undo of step 1 (swap to the idle colour) of run " in error, error
    undo = error.partition(" failed: ")[2]  # (blue answers on its port: the proxy is made sure of first, no Docker)
    assert undo.startswith(f"blue serves again through the proxy, but the Docker daemon at unix://{sock} stopped"
                           " answering while inspecting container "), error
    assert undo.endswith(f": green ({env.green}) was not removed — start dockerd, or fix [containers].docker_url — do"
                         " the manual steps listed, then `golive rollback` again"), error
    assert failed.stderr.splitlines()[1:] == [f"  by hand: `docker rm -f {env.green}` once Docker answers: the green"
                                              " container this swap started (blue serves again)"], failed.stderr
    sock.unlink()
    _DockerSocketProxy(sock)  # dockerd back: the rollback finishes the undo
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    blue_live(env)
    assert env.container(env.green) is None


def test_an_undo_that_cannot_make_the_old_colour_again_says_to_make_it_first(swap_env: SwapEnv, cli) -> None:
    """Blue removed and its build deleted: the by-hand lines said to point Apache at blue's port (where nothing ran)
    and to remove green (the only colour running), and `rollback --dry-run` never said blue had to be made again;
    later the plan said it would be made again and the undo failed exit 4. Now refused in the plan."""
    from golive.sandbox.images import build_image

    env = swap_env
    unique = f"{env.images['blue'].split(':')[0]}-unique:blue"
    build = build_image(env.docker, unique, "blue-unique")
    env.container(env.blue).remove(force=True)
    env.docker.containers.run(unique, name=env.blue, detach=True, ports={"8000/tcp": ("127.0.0.1", env.blue_port)})
    try:
        assert cli("swap", "--yes").exit_code == 0
        env.container(env.blue).remove(force=True)
    finally:
        env.docker.images.remove(unique, force=True)
    said = (f"error: blue ({env.blue}) has no container, and the one the swap recorded cannot be made again: its build"
            f" {unique} ({build[7:19]}) is no longer on this host ({unique} is not on this host either); nothing was"
            " changed — put that very build back (`docker load` a saved copy, or `docker pull` it by digest), then"
            f" `golive rollback` again; or go forward: `golive swap --image {unique}` deploys {unique} as it is now\n")
    planned = cli("rollback", "--dry-run")  # (it planned "create running …, created again", then failed exit 4)
    assert (planned.exit_code, planned.stderr) == (1, said)
    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert result.bodies() == ["green"]  # green, the only colour left, served throughout and still runs
    assert (out[0].exit_code, out[0].stderr) == (1, said)  # refused in its plan: nothing changed, nothing marked
    assert env.container(env.green).status == "running"
    assert f"127.0.0.1:{env.green_port}" in env.apache.upstream_file.read_text()


def test_env_file_values_that_are_not_secrets_stay_readable_and_the_undo_works(swap_env: SwapEnv, cli) -> None:
    """INTERNAL_IPS=127.0.0.1 and SITE_SCHEME=http were masked everywhere as secrets, the journal's upstream text
    with them ("http://***:8001"): the rollback wrote that into Apache's upstream and failed nearly every request."""
    import uuid

    env = swap_env
    password, url_password = f"envfilepw-{uuid.uuid4().hex[:8]}", f"urlpw-{uuid.uuid4().hex[:8]}"
    env_file = env.project / "app.env"
    env_file.write_text(f"INTERNAL_IPS=127.0.0.1\nSITE_SCHEME=http\nAPI_HOST=127.0.0.1\nAPI_SCHEME=http\n"
                        f"DB_PASSWORD={password}\n"
                        f"DATABASE_URL=postgres://app:{url_password}@db.internal/app\n")
    env_file.chmod(0o600)
    env.write_config(containers_extra='env_file = "app.env"\n')
    out = []
    result = under_load(env, lambda: (out.append(cli("swap", "--yes")), out.append(cli("rollback", "--yes"))))
    assert [o.exit_code for o in out] == [0, 0], [o.stderr for o in out]
    answers = result.bodies()  # (during a graceful restart old and new children may answer in turn)
    assert result.failures == 0 and (answers[0], answers[-1]) == ("blue", "blue") and "green" in answers
    blue_live(env)
    state = env.project / ".golive"
    on_disk = "".join(p.read_bytes().decode(errors="replace") for p in state.rglob("*") if p.is_file()
                      and p.parent.name != "containers")  # (the kept creation specs hold the values: mode 600)
    assert f"http://127.0.0.1:{env.blue_port}" in on_disk  # the undo's upstream text, as it was
    for text in [*(o.stdout + o.stderr for o in out), cli("history").stdout, on_disk]:
        assert password not in text and url_password not in text


def test_a_reload_that_takes_effect_late_is_waited_for_without_version_path(swap_env: SwapEnv, cli) -> None:
    """Without version_path the public check cannot tell the colours apart by their answers: with a graceful reload
    that takes effect two seconds after its command returns, the undo removed green while Apache still served it
    (thousands of 502/503, exit 0). The vhost's upstream header, told only to golive's probes, says which served."""
    env = swap_env
    graceful = " ".join(env.apache.reload_command)
    config = env.write_config(reload_command=["sh", "-c", f"(sleep 2; {graceful}) >/dev/null 2>&1 &"])
    config.write_text(config.read_text().replace('version_path = "/version"\n', ""))
    out = []
    result = under_load(env, lambda: (out.append(cli("swap", "--yes")), out.append(cli("rollback", "--yes"))))
    assert [o.exit_code for o in out] == [0, 0], [o.stderr for o in out]
    answers = result.bodies()
    assert result.failures == 0 and (answers[0], answers[-1]) == ("blue", "blue") and "green" in answers
    blue_live(env)
    assert env.container(env.green) is None
    import httpx

    assert "X-Golive-Upstream" not in httpx.get(env.apache.url + "/healthz").headers  # (told to golive's probes only)
    probed = httpx.get(env.apache.url + "/healthz", headers={"X-Golive-Probe": "1"})
    assert probed.headers["X-Golive-Upstream"] == f"http://127.0.0.1:{env.blue_port}"


def test_a_swap_run_again_keeps_the_old_release_and_makes_no_run(swap_env: SwapEnv, cli) -> None:
    """A second `golive swap --yes` (a retrying script) swapped back to blue and made it the new release too: both
    colours ran it, and one `golive rollback` landed on green, the new release."""
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    blue_build = env.container(env.blue).attrs["Image"]
    for args in (("swap", "--yes"), ("swap", "--to", "green", "--yes")):
        again = cli(*args)
        assert again.exit_code == 0, again.stderr
        assert again.lines[-1] == "nothing to do: every change is already in place (no run was made)", again.stdout
    assert env.container(env.blue).attrs["Image"] == blue_build  # the old release, kept for the rollback
    assert len(cli("history").lines[1:]) == 1
    result = under_load(env, lambda: cli("rollback", "--yes"))
    assert result.failures == 0 and result.bodies()[-1] == "blue"
    blue_live(env)


def test_an_undo_with_nothing_to_tell_the_colours_apart_waits_for_the_reload(swap_env: SwapEnv, cli) -> None:
    """A vhost from before golive's upstream header, and no version_path: the undo's check through the proxy cannot
    tell the colours apart, so it gives the graceful restart time before green goes (it removed green while Apache,
    reloading a second late, still proxied to it)."""
    import subprocess

    env = swap_env
    conf = env.apache.conf
    conf.write_text("".join(line for line in conf.read_text().splitlines(keepends=True)
                            if not line.startswith("Header ")))  # (an older install's vhost)
    subprocess.run(env.apache.reload_command, check=True, capture_output=True)
    time.sleep(1.5)
    graceful = " ".join(env.apache.reload_command)
    config = env.write_config(reload_command=["sh", "-c", f"(sleep 1; {graceful}) >/dev/null 2>&1 &"])
    config.write_text(config.read_text().replace('version_path = "/version"\n', ""))
    out = []
    under_load(env, lambda: out.append(cli("swap", "--yes")), settle=1.5)  # (the swap's reload lands a second late)
    assert out[0].exit_code == 0, out[0].stderr
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert "nothing shows which colour answers through the proxy (no [containers].version_path, and the vhost lacks" \
           " golive's X-Golive-Upstream line: `golive init` prints it); waited 2s for the reload instead" in out[1].stdout
    assert result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None


def test_a_reload_that_never_takes_effect_fails_the_swap_and_finalize_keeps_what_apache_serves(
        swap_env: SwapEnv, cli) -> None:
    """A reload_command that exits 0 and reloads nothing (a `systemctl reload` of a unit that is not this Apache),
    no version_path: the swap said "swapped" while Apache served blue, and `swap finalize` then removed blue."""
    import subprocess

    env = swap_env
    config = env.write_config(reload_command=["true"], proxy_extra="confirm_timeout = 2\n")
    config.write_text(config.read_text().replace('version_path = "/version"\n', ""))
    err = failed_swap(env, cli).stderr
    assert (f"through the proxy, /healthz is still served by http://127.0.0.1:{env.blue_port}, not"
            f" http://127.0.0.1:{env.green_port}, after 2s ([proxy].confirm_timeout): the reload did not take"
            " effect") in err
    env.write_config()
    assert cli("swap", "--yes").exit_code == 0
    env.apache.point_at(f"http://127.0.0.1:{env.blue_port}")  # put back by hand, reloaded …
    subprocess.run(env.apache.reload_command, check=True, capture_output=True)
    time.sleep(1.5)
    env.apache.point_at(f"http://127.0.0.1:{env.green_port}")  # … and the file edited again, not reloaded
    refused = cli("swap", "finalize", "--yes")
    assert refused.exit_code == 1, refused.stdout
    assert (f"is not what Apache serves: it proxies to http://127.0.0.1:{env.blue_port} (a reload that did not take"
            " effect): finalize would remove blue") in refused.stderr
    assert env.container(env.blue) is not None


def test_a_swap_of_the_live_build_goes_ahead_when_the_live_colour_is_broken(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    env.container(env.green).exec_run(["/bin/busybox", "rm", "/www/healthz"])  # green (live) now answers 404
    again = cli("swap", "--yes")  # redeploying the same build is how it is recovered: not "nothing to do"
    assert "nothing to do" not in again.stdout, again.stdout
    assert again.exit_code == 0, again.stderr
