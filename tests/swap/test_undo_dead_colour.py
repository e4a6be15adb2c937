"""Rolling back to a colour that cannot serve: the live colour's container removed, then a swap away from it (the
recovery move: the idle colour takes the same release). The rollback pointed Apache at the colour with no
container (the site 200 -> 503), failed (exit 4, `undo_failed`), and did it again on every retry, while `golive
swap` refused until it succeeded: no way out through golive. Now the rollback refuses before anything changes
(nothing is marked as failed), its plan says why, and a swap is the way on."""

from __future__ import annotations

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.test_swap import under_load


def _served(env: SwapEnv, port: int) -> str:
    return f"upstream http://127.0.0.1:{port}\n" if env.switch == "map" else \
        f"Define GOLIVE_UPSTREAM http://127.0.0.1:{port}\n"


def test_a_rollback_to_a_colour_with_no_container_and_no_record_refuses_and_a_swap_is_the_way_on(
        swap_env: SwapEnv, cli) -> None:
    env = swap_env
    old_blue = env.docker.images.get(env.images["blue"]).id.removeprefix("sha256:")[:12]
    assert cli("swap", "--yes").exit_code == 0  # green live
    env.container(env.green).remove(force=True)  # the live colour dies
    recovered = cli("swap", "--yes")  # blue takes the green release
    assert recovered.exit_code == 0, recovered.stderr
    assert env.apache.upstream_file.read_text() == _served(env, env.blue_port)
    blue_id = env.container(env.blue).id
    out = []
    result = under_load(env, lambda: out.extend(cli("rollback", *args) for args in (["--dry-run"], ["--yes"],
                                                                                    ["--yes"])))
    assert set(result.bodies()) == {"green"}  # blue (the green release) served every request, and still does
    for refused in out:
        assert refused.exit_code == 1, refused.stderr
        assert refused.stderr.splitlines() == [
            f"error: green ({env.green}) has no container, and the swap recorded none to make it again from: going"
            " back would point the proxy at nothing and take the site down; nothing was changed — blue serves on; to"
            f" go back, start {env.green} on 127.0.0.1:{env.green_port} by hand, then `golive rollback` again; or run"
            f" the release blue ran before that swap again: `golive swap --image {old_blue}`"], refused.stderr
    assert env.apache.upstream_file.read_text() == _served(env, env.blue_port)
    assert env.container(env.blue).id == blue_id and env.container(env.green) is None
    assert "undo_failed" not in cli("history").stdout
    # the way on: the old release back through a swap, with no failed request
    out.clear()
    result = under_load(env, lambda: out.append(cli("swap", "--yes", "--image", old_blue)))
    assert out[0].exit_code == 0, out[0].stderr
    # (a graceful reload: connections the old generation holds answer from green a moment longer)
    assert result.bodies()[0] == "green" and result.bodies()[-1] == "blue", result.bodies()
    assert env.apache.upstream_file.read_text() == _served(env, env.green_port)


def test_a_rollback_to_a_colour_that_answers_nothing_refuses_before_the_proxy_moves(swap_env: SwapEnv, cli) -> None:
    """Blue's container runs but its application answers nothing on its host port: refused in the plan (dry run
    too), the proxy left on green; once blue answers again the same rollback goes through."""
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    env.container(env.blue).remove(force=True)
    env.docker.containers.run(env.images["blue"], name=env.blue, detach=True, entrypoint=["/bin/busybox", "sleep", "600"],
                              ports={"8000/tcp": ("127.0.0.1", env.blue_port)})
    out = []
    result = under_load(env, lambda: out.extend(cli("rollback", *args) for args in (["--dry-run"], ["--yes"])))
    assert set(result.bodies()) == {"green"}
    for refused in out:
        assert refused.exit_code == 1, refused.stderr
        lines = refused.stderr.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: blue ({env.blue}) answers nothing on 127.0.0.1:{env.blue_port} (/healthz: "), lines
        assert lines[0].endswith(f"): going back would point the proxy at nothing and take the site down; nothing was"
                                 f" changed — get {env.blue} answering /healthz on 127.0.0.1:{env.blue_port}, then"
                                 " `golive rollback` again"), lines
    assert env.apache.upstream_file.read_text() == _served(env, env.green_port)
    assert env.container(env.green).status == "running"
    env.container(env.blue).remove(force=True)
    env.docker.containers.run(env.images["blue"], name=env.blue, detach=True,
                              ports={"8000/tcp": ("127.0.0.1", env.blue_port)})
    out.clear()
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[0].exit_code == 0, out[0].stderr
    assert result.bodies()[-1] == "blue"
    assert env.apache.upstream_file.read_text() == _served(env, env.blue_port)
    assert env.container(env.green) is None


def test_a_colour_that_stops_answering_between_the_plan_and_the_undo_is_not_switched_to(swap_env: SwapEnv, cli) -> None:
    """Checked again by the undo itself, after starting or making the colour again and before the proxy moves."""
    import os
    import subprocess
    import sys
    import time

    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    marker = env.project / "held"
    out = []

    def rollback_while_blue_dies() -> None:
        proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--yes"], cwd=env.project,
                                env={**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "swap.swap:undo:hold",
                                     "GOLIVE_FAULT_MARKER": str(marker)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        env.container(env.blue).remove(force=True)  # planned with blue answering; gone now, a dead one in its place
        env.docker.containers.run(env.images["blue"], name=env.blue, detach=True,
                                  entrypoint=["/bin/busybox", "sleep", "600"],
                                  ports={"8000/tcp": ("127.0.0.1", env.blue_port)})
        marker.unlink()
        out.append((proc.wait(timeout=60), proc.stderr.read() if proc.stderr else ""))

    result = under_load(env, rollback_while_blue_dies)
    assert set(result.bodies()) == {"green"}
    code, err = out[0]
    assert code == 4, err
    first = err.splitlines()[0]
    assert f" failed: blue ({env.blue}) answers nothing on 127.0.0.1:{env.blue_port} (/healthz: " in first, first
    assert "going back would point the proxy at nothing and take the site down; nothing was changed" in first, first
    assert env.apache.upstream_file.read_text() == _served(env, env.green_port)
    assert env.container(env.green).status == "running"
    env.container(env.blue).remove(force=True)  # fixed by hand: the rollback finishes
    env.docker.containers.run(env.images["blue"], name=env.blue, detach=True,
                              ports={"8000/tcp": ("127.0.0.1", env.blue_port)})
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert result.bodies()[-1] == "blue"
    assert env.container(env.green) is None


def test_a_failed_swap_away_from_a_dead_colour_is_undone_and_swapping_works_again(swap_env: SwapEnv, cli) -> None:
    """The site is down (blue removed) and the swap meant to bring it back fails its health check: the proxy never
    left blue, so its undo has nothing to point back. It failed on "blue answers nothing" (exit 4, undo_failed),
    and every later swap was refused until a rollback succeeded, which it never could."""
    env = swap_env
    env.container(env.blue).remove(force=True)
    env.write_config(image=env.images["broken"], health_timeout=2)
    failed = cli("swap", "--yes")
    assert failed.exit_code == 1, failed.stderr
    assert "undo_failed" not in cli("history").stdout
    assert env.apache.upstream_file.read_text() == _served(env, env.blue_port)
    env.write_config()
    assert cli("swap", "--yes").exit_code == 0  # the site back, through golive
    assert env.apache.upstream_file.read_text() == _served(env, env.green_port)
