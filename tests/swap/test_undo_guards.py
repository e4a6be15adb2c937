"""A swap's (and a finalize's) undo goes back to the very container the run recorded, or refuses in its plan.

It switched the proxy to whatever container then bore the previous colour's name (another image run by hand, the
next prepare's release, a newer swap's live colour), made a removed colour again from whatever build its tag
pointed at once its own build was deleted (exit 0, the plan naming the old build), and failed (exit 4, no by-hand
`docker unpause`) on a colour someone had paused. Real Docker engine and real Apache, under load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from golive.sandbox.images import build_image
from tests.swap.test_swap import blue_live, under_load


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _served(env: SwapEnv, port: int) -> str:
    return f"upstream http://127.0.0.1:{port}\n" if env.switch == "map" else \
        f"Define GOLIVE_UPSTREAM http://127.0.0.1:{port}\n"


def _run_as(env: SwapEnv, name: str, image: str, port: int, labels: dict[str, str] | None = None) -> None:
    """A container started by hand under a colour's name, on its host port."""
    env.docker.containers.run(image, name=name, detach=True, labels=labels or {},
                              ports={"8000/tcp": ("127.0.0.1", port)})


@contextmanager
def _blue_from_own_build(env: SwapEnv, version: str) -> Iterator[tuple[str, str]]:
    """Blue (the hand-started colour the first swap adopts) from a build of its own, tagged ``…-own:rel``: (the
    tag, the build). The tag is removed after, whatever it points at then."""
    tag = f"{env.images['blue'].split(':')[0]}-own{env.suffix}:rel"
    build = build_image(env.docker, tag, version)
    env.container(env.blue).remove(force=True)
    _run_as(env, env.blue, tag, env.blue_port)
    try:
        yield tag, build
    finally:
        for name in (env.blue, env.green):  # (the fixture removes them too: here first, so the images can go)
            if env.container(name) is not None:
                env.container(name).remove(force=True)
        for image in (tag, build):
            with suppress(Exception):  # (gone already)
                env.docker.images.remove(image, force=True)


def _rebuilt_and_pruned(env: SwapEnv, tag: str, build: str) -> str:
    """The release process rebuilds ``tag`` (another build), and `docker image prune` deletes ``build``: the new
    build's id."""
    rebuilt = build_image(env.docker, tag, "rel2")
    assert rebuilt != build
    env.docker.images.remove(build, force=True)
    return rebuilt


def _state(env: SwapEnv) -> tuple[str, dict[str, str | None]]:
    ids = {name: (env.container(name).id if env.container(name) is not None else None) for name in (env.blue, env.green)}
    return env.apache.upstream_file.read_text(), ids


# -- 1: another container under the previous colour's name ----------------------------------------------------------
def test_a_container_run_by_hand_in_place_of_the_old_colour_is_replaced_by_the_recorded_one(swap_env: SwapEnv,
                                                                                            cli) -> None:
    env = swap_env
    blue_build = env.docker.images.get(env.images["blue"]).id
    assert cli("swap", "--yes").exit_code == 0  # green live; blue, the old release, the way back
    env.container(env.blue).remove(force=True)
    _run_as(env, env.blue, env.images["green"], env.blue_port)  # someone's impostor: another release
    impostor = env.container(env.blue).id
    green_build = _short(env.docker.images.get(env.images["green"]).id)
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert (f"      container {env.blue} (blue) (not the container the swap recorded: removed, and the recorded one"
            f" made again): running {env.images['green']} ({green_build}) -> running {env.images['blue']}"
            f" ({_short(blue_build)}), created again") in planned.lines, planned.lines
    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[0].exit_code == 0, out[0].stderr
    assert result.bodies()[-1] == "blue", result.bodies()  # the old release, not the impostor's "green"
    blue_live(env)
    assert env.container(env.blue).id != impostor and env.container(env.blue).attrs["Image"] == blue_build
    assert env.container(env.green) is None


def test_a_container_in_place_of_the_old_colour_that_cannot_be_replaced_refuses_the_rollback(swap_env: SwapEnv,
                                                                                             cli) -> None:
    """Refused in the plan (exit 1, nothing changed, not marked failed), naming what is there and what was recorded:
    golive's container of a later run (its labels), and one run by hand when the recorded build is gone."""
    env = swap_env
    with _blue_from_own_build(env, "rel") as (tag, build):
        assert cli("swap", "--yes").exit_code == 0
        recorded = f"{tag} ({_short(build)}), container {env.container(env.blue).id[:12]}"
        env.container(env.blue).remove(force=True)
        green_build = _short(env.docker.images.get(env.images["green"]).id)
        # as a later `swap --prepare` leaves it: golive's labels, another release
        _run_as(env, env.blue, env.images["green"], env.blue_port,
                labels={"golive.color": "blue", "golive.image": env.images["green"]})
        there = f"running {env.images['green']} ({green_build}), container {env.container(env.blue).id[:12]}"
        before = _state(env)
        out = []
        result = under_load(env, lambda: out.extend(cli("rollback", *a) for a in (["--dry-run"], ["--yes"])))
        assert set(result.bodies()) == {"green"}
        for refused in out:
            assert (refused.exit_code, refused.stderr.splitlines()) == (1, [
                f"error: blue ({env.blue}) is now {there}, not the container the swap recorded (running {recorded}):"
                " golive started it for a later run (`swap --prepare`, or a swap since); nothing was changed —"
                " `golive history` shows the run that put it there: roll that back first (`golive rollback`), then"
                " this"]), refused.stderr
        assert _state(env) == before
        # by hand, and the recorded build deleted: it cannot be made again
        env.container(env.blue).remove(force=True)
        _run_as(env, env.blue, env.images["green"], env.blue_port)
        rebuilt = _rebuilt_and_pruned(env, tag, build)
        there = f"running {env.images['green']} ({green_build}), container {env.container(env.blue).id[:12]}"
        before = _state(env)
        refused = cli("rollback", "--yes")
        assert (refused.exit_code, refused.stderr.splitlines()) == (1, [
            f"error: blue ({env.blue}) is now {there}, not the container the swap recorded (running {recorded}), and"
            f" its build {tag} ({_short(build)}) is no longer on this host ({tag} is now build {_short(rebuilt)});"
            " nothing was changed — put that very build back (`docker load` a saved copy, or `docker pull` it by"
            f" digest), then `golive rollback` again; or keep it and go forward: `golive swap --image"
            f" {env.images['green']}`"]), refused.stderr
        assert _state(env) == before
        assert "undo_failed" not in cli("history").stdout


def test_rolling_back_an_older_swap_out_of_order_never_goes_to_what_a_newer_run_put_there(swap_env: SwapEnv,
                                                                                          cli) -> None:
    """swap S1 (blue -> green), then a newer run on blue — a swap back to it with v3, or a `swap --prepare` of v3 —
    and `rollback --run S1`: it ended on v3 and removed green (the newer swap's way back), or switched to the
    never-switched prepared v3. However the undo is reached, it refuses with nothing changed."""
    env = swap_env
    first = json.loads(cli("swap", "--yes", "--json").stdout.splitlines()[-1])["run"]
    for newer in (["swap", "--prepare"], ["swap"]):
        done = cli(*newer, "--yes", "--image", env.images["green-hc"])
        assert done.exit_code == 0, done.stderr
        assert env.container(env.blue).labels["golive.image"] == env.images["green-hc"]
        before = _state(env)
        out: list = []
        under_load(env, lambda: out.extend(cli("rollback", "--run", first, *a)  # noqa: B023 (called at once)
                                           for a in (["--dry-run"], ["--yes"])))
        for refused in out:
            assert refused.exit_code == 1, (newer, refused.stdout, refused.stderr)
        assert _state(env) == before, newer
        assert "undo_failed" not in cli("history").stdout


# -- 2: the recorded build deleted --------------------------------------------------------------------------------
def test_a_finalized_colour_whose_build_was_deleted_is_not_made_again_from_what_its_tag_points_at(swap_env: SwapEnv,
                                                                                                 cli) -> None:
    env = swap_env
    with _blue_from_own_build(env, "rel") as (tag, build):
        assert cli("swap", "--yes").exit_code == 0
        assert cli("swap", "finalize", "--yes").exit_code == 0
        rebuilt = _rebuilt_and_pruned(env, tag, build)
        before = _state(env)
        for args in (["--dry-run"], ["--yes"], ["--yes"]):
            refused = cli("rollback", *args)
            assert (refused.exit_code, refused.stderr.splitlines()) == (1, [
                f"error: blue ({env.blue}), which swap finalize removed, cannot be made again as it ran: its build"
                f" {tag} ({_short(build)}) is no longer on this host ({tag} is now build {_short(rebuilt)}); nothing"
                " was changed — put that very build back (`docker load` a saved copy, or `docker pull` it by digest),"
                f" then `golive rollback` again; or go forward: `golive swap --image {tag}` deploys {tag} as it is"
                " now"]), refused.stderr
        assert _state(env) == before
        assert "undo_failed" not in cli("history").stdout


def test_a_removed_old_colour_whose_build_was_deleted_refuses_the_swap_undo(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    with _blue_from_own_build(env, "rel") as (tag, build):
        assert cli("swap", "--yes").exit_code == 0
        env.container(env.blue).remove(force=True)
        rebuilt = _rebuilt_and_pruned(env, tag, build)
        before = _state(env)
        for args in (["--dry-run"], ["--yes"]):
            refused = cli("rollback", *args)
            assert (refused.exit_code, refused.stderr.splitlines()) == (1, [
                f"error: blue ({env.blue}) has no container, and the one the swap recorded cannot be made again: its"
                f" build {tag} ({_short(build)}) is no longer on this host ({tag} is now build {_short(rebuilt)});"
                " nothing was changed — put that very build back (`docker load` a saved copy, or `docker pull` it by"
                f" digest), then `golive rollback` again; or go forward: `golive swap --image {tag}` deploys {tag} as"
                " it is now"]), refused.stderr
        assert _state(env) == before


def test_the_idle_container_a_swap_replaced_is_not_made_again_from_another_build(swap_env: SwapEnv, cli) -> None:
    """Green held an older release the swap replaced, and its build is gone since: the undo puts blue back and
    removes the new green, and says it does not make the older one again (not from what its tag points at now)."""
    env = swap_env
    tag = f"{env.images['blue'].split(':')[0]}-older{env.suffix}:rel"
    build = build_image(env.docker, tag, "older")
    try:
        _run_as(env, env.green, tag, env.green_port)  # idle, an older release
        assert cli("swap", "--yes").exit_code == 0
        rebuilt = _rebuilt_and_pruned(env, tag, build)
        planned = cli("rollback", "--dry-run")
        assert planned.exit_code == 0, planned.stderr
        gone = f"the one there before: {tag} ({_short(build)}) is no longer on this host, not made again"
        assert any(line.startswith(f"      container {env.green} (green) ({gone}): ") and line.endswith(": delete"
                   f" (was running {env.images['green']} ({_short(env.docker.images.get(env.images['green']).id)})"
                   f" on 127.0.0.1:{env.green_port})") for line in planned.lines), planned.lines
        out = []
        result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
        assert out[0].exit_code == 0, out[0].stderr
        assert f"the green container that was there before ({tag} ({_short(build)})) was not made again: its build" \
               " is no longer on this host" in out[0].stdout, out[0].stdout
        assert result.bodies()[-1] == "blue"
        blue_live(env)
        assert env.container(env.green) is None  # (not made from the tag, now {rebuilt})
        assert rebuilt
    finally:
        if env.container(env.green) is not None:
            env.container(env.green).remove(force=True)
        for image in (tag, build):
            with suppress(Exception):  # (gone already)
                env.docker.images.remove(image, force=True)


# -- 3: a paused old colour ---------------------------------------------------------------------------------------
def test_a_paused_old_colour_is_unpaused_by_the_rollback(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    blue_id = env.container(env.blue).id
    assert cli("swap", "--yes").exit_code == 0
    env.container(env.blue).pause()
    build = _short(env.docker.images.get(env.images["blue"]).id)
    planned = cli("rollback", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert (f"      container {env.blue} (blue): paused {env.images['blue']} -> running {env.images['blue']} ({build}),"
            " unpaused") in planned.lines, planned.lines
    out = []
    result = under_load(env, lambda: out.append(cli("-v", "rollback", "--yes")))
    assert out[0].exit_code == 0, out[0].stderr
    assert f"    undo: container {env.blue}: unpause" in out[0].lines, out[0].lines
    assert result.bodies()[0] == "green" and result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.blue).id == blue_id
    assert env.container(env.green) is None
    assert _served(env, env.blue_port) == env.apache.upstream_file.read_text()
