"""What the rollback's plan says is what its undo does: a finalize's undo makes the old colour again from the
build it ran (not "create running <tag>", a tag that may have moved on to the release being rolled back), and a
swap's undo whose upstream file already points back while Apache still serves the other colour (a rollback
killed between the write and the reload) reloads it — the plan said "unchanged". A prepare's undo plans nothing for
the live colour, `rollback --through` plans a finalize's undo from what the newer runs' undos leave, a colour a
rollback made again is shown by its image reference and kept by the next swap as such, not as "prepared"."""

from __future__ import annotations

import json
import socket

from golive.sandbox.bluegreen import BlueGreen as SwapEnv


def test_the_plan_of_a_finalize_undo_names_the_build_it_makes_the_old_colour_again_from(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0
    assert cli("swap", "finalize", "--yes").exit_code == 0
    build = env.docker.images.get(env.images["blue"]).id.removeprefix("sha256:")[:12]
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert planned.lines[2:] == [f"      container {env.blue} (blue): create running {env.images['blue']} ({build})"], \
        planned.lines
    assert cli("rollback", "--yes").exit_code == 0
    assert env.container(env.blue).status == "running"
    planned = cli("rollback", "--dry-run")  # (the swap's undo now: blue is there again)
    assert planned.exit_code == 0, planned.stderr


def test_the_plan_says_a_reload_follows_when_the_file_points_back_but_apache_serves_the_other_colour(
        swap_env: SwapEnv, cli) -> None:
    env = swap_env
    blue, green = f"http://127.0.0.1:{env.blue_port}", f"http://127.0.0.1:{env.green_port}"
    assert cli("swap", "--yes").exit_code == 0
    env.apache.point_at(blue)  # written, never reloaded (a rollback killed in between)
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert (f"      proxy upstream (the file points back already, Apache still serves {green}: configtest and"
            f" graceful reload): {green} -> {blue}") in planned.lines, planned.lines
    env.apache.graceful()  # reloaded by hand: nothing left for the proxy but to confirm it
    planned = cli("rollback", "--dry-run")
    assert f"      proxy upstream (changed since the run): unchanged ({blue})" in planned.lines, planned.lines


def _run_of(result) -> str:
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout.splitlines()[-1])["run"])


def _build(env: SwapEnv, image: str) -> str:
    return str(env.docker.images.get(image).id).removeprefix("sha256:")[:12]


def test_the_plan_of_a_prepare_undo_says_only_what_it_does_to_the_prepared_colour(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    assert cli("swap", "--prepare", "--yes").exit_code == 0
    env.container(env.blue).pause()  # the live colour paused meanwhile: the prepare's undo does not touch it
    try:
        planned = cli("rollback", "--dry-run")
        assert planned.exit_code == 0, planned.stderr
        assert planned.lines[2:] == [f"      container {env.green} (green): delete (was running {env.images['green']}"
                                     f" ({_build(env, env.images['green'])}) on 127.0.0.1:{env.green_port})"], planned.lines
        assert cli("rollback", "--yes").exit_code == 0
        assert (env.container(env.blue).status, env.container(env.green)) == ("paused", None)
    finally:
        env.container(env.blue).unpause()
    assert cli("swap", "--prepare", "--yes").exit_code == 0
    env.container(env.green).remove(force=True)  # removed by hand: nothing left for the undo to remove
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert planned.lines[2:] == [f"      container {env.green} (green): absent"], planned.lines
    assert cli("rollback", "--yes").exit_code == 0


def test_a_colour_a_rollback_made_again_is_kept_by_the_next_swap_as_made_again_not_prepared(
        swap_env: SwapEnv, cli) -> None:
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0  # green (golive's labels) live
    assert cli("swap", "--image", env.images["blue"], "--yes").exit_code == 0  # blue (golive's) live
    assert cli("swap", "finalize", "--yes").exit_code == 0  # green removed
    assert cli("rollback", "--yes").exit_code == 0  # the finalize's undo: green made again from its build
    planned = cli("swap", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert planned.lines[2] == (f"      container {env.green} (green): unchanged (running {env.images['green']}"
                                f" ({_build(env, env.images['green'])}) on 127.0.0.1:{env.green_port}, made again from"
                                " its build by `golive rollback`: kept)"), planned.lines
    green_id = env.container(env.green).id
    swapped = cli("-v", "swap", "--yes")
    assert swapped.exit_code == 0, swapped.stderr
    assert (f"    apply: container {env.green}: made again by `golive rollback` from {env.images['green']}, running:"
            " kept") in swapped.lines, swapped.lines
    assert env.container(env.green).id == green_id


def test_rollback_through_plans_the_finalize_undo_as_the_newer_prepare_undo_leaves_it(
        swap_env: SwapEnv, cli, v3: str) -> None:
    env = swap_env
    first = _run_of(cli("swap", "--yes", "--json"))
    assert cli("swap", "finalize", "--yes").exit_code == 0  # blue removed
    assert cli("swap", "--prepare", "--image", v3, "--yes").exit_code == 0  # blue: the next release, prepared
    planned = cli("rollback", "--through", first, "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    # the prepare's undo removes blue first: the finalize's makes the old blue again (it said "unchanged (… v3)")
    blue = f"{env.images['blue']} ({_build(env, env.images['blue'])})"
    assert f"      container {env.blue} (blue): create running {blue}" in planned.lines, planned.lines
    assert cli("rollback", "--through", first, "--yes").exit_code == 0
    assert env.container(env.blue).image.id == env.docker.images.get(env.images["blue"]).id


def test_status_and_plans_name_the_image_of_an_adopted_colour_made_again_not_its_build_id(
        swap_env: SwapEnv, cli) -> None:
    env = swap_env
    assert cli("swap", "--yes").exit_code == 0  # blue, started by hand, adopted
    assert cli("swap", "finalize", "--yes").exit_code == 0
    assert cli("rollback", "--yes").exit_code == 0  # blue made again from its build
    assert cli("status").lines[-1] == (f"swap:      live=green, upstream=http://127.0.0.1:{env.green_port},"
                                       f" idle=blue (running {env.images['blue']})")
    env.container(env.blue).stop()
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert planned.lines[2] == (f"      container {env.blue} (blue): exited {env.images['blue']} -> running"
                                f" {env.images['blue']} ({_build(env, env.images['blue'])})"), planned.lines


def test_the_finalize_undo_starts_only_the_old_colour_it_made_and_its_plan_says_what_it_does(
        swap_env: SwapEnv, cli, v3: str) -> None:
    env = swap_env
    blue = f"{env.images['blue']} ({_build(env, env.images['blue'])})"
    assert cli("swap", "--yes").exit_code == 0
    assert cli("swap", "finalize", "--yes").exit_code == 0
    with socket.socket() as squatter:  # the undo makes blue again, and cannot start it
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", env.blue_port))
        squatter.listen()
        assert cli("rollback", "--yes").exit_code == 4
    env.container(env.blue).start()
    env.container(env.blue).pause()  # the one it made, paused: unpaused, as the plan says
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert planned.lines[2:] == [f"      container {env.blue} (blue): paused {env.images['blue']} -> running {blue},"
                                 " unpaused"], planned.lines
    env.container(env.blue).remove(force=True)
    env.docker.containers.create(v3, name=env.blue)  # another release under its name, stopped: not started
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert planned.lines[2:] == [f"      container {env.blue} (blue): unchanged (created {v3})"], planned.lines
    assert cli("rollback", "--yes").exit_code == 0
    assert env.container(env.blue).status == "created"
    planned = cli("rollback", "--dry-run")  # the swap's undo replaces it with the recorded blue
    assert (f"      container {env.blue} (blue) (not the container the swap recorded: removed, and the recorded one made"
            f" again): created {v3} ({_build(env, v3)}) -> running {blue}, created again") in planned.lines, planned.lines
    assert cli("rollback", "--yes").exit_code == 0
    assert env.container(env.blue).image.id == env.docker.images.get(env.images["blue"]).id
