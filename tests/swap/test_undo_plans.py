"""What the rollback's plan says is what its undo does: a finalize's undo makes the old colour again from the
build it ran (not "create running <tag>", a tag that may have moved on to the release being rolled back), and a
swap's undo whose upstream file already points back while Apache still serves the other colour (a rollback
killed between the write and the reload) reloads it — the plan said "unchanged"."""

from __future__ import annotations

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
