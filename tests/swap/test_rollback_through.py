"""`golive rollback --through` over a night that prepared the new colour ahead, then swapped to it: the
runbook's one-command rollback. Real Docker engine and real Apache (golive.sandbox.bluegreen), under load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golive.sandbox.bluegreen import BlueGreen
from tests.swap.conftest import running
from tests.swap.test_swap import blue_live, under_load


@pytest.fixture
def night_env(tmp_path: Path, docker_client: Any, images: dict[str, str],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[BlueGreen]:
    yield from running(BlueGreen(tmp_path, docker_client, images), monkeypatch, "gl-h17")


def _night(env: BlueGreen, cli) -> tuple[str, str, str]:
    """`swap --prepare`, then `swap` to the prepared green: the prepare run's id, the swap run's, green's id."""
    prepared = cli("swap", "--prepare", "--yes", "--json")
    assert prepared.exit_code == 0, prepared.stderr
    prepare_run = json.loads(prepared.stdout.splitlines()[-1])["run"]
    green_id = env.container(env.green).id
    swapped = cli("swap", "--yes", "--json")
    assert swapped.exit_code == 0, swapped.stderr
    swap_run = json.loads(swapped.stdout.splitlines()[-1])["run"]
    assert env.container(env.green).id == green_id  # the prepared container went live
    return prepare_run, swap_run, green_id


def test_rollback_through_the_prepare_run_undoes_the_swap_then_the_prepare(night_env: BlueGreen, cli) -> None:
    env = night_env
    prepare_run, swap_run, green_id = _night(env, cli)
    blue, green = f"http://127.0.0.1:{env.blue_port}", f"http://127.0.0.1:{env.green_port}"

    planned = cli("rollback", "--through", prepare_run, "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    build = env.docker.images.get(env.images["green"]).id.removeprefix("sha256:")[:12]
    running = f"running {env.images['green']} ({build}) on 127.0.0.1:{env.green_port}"
    assert planned.lines == [  # both runs' plans, the prepare's from the state the swap's undo leaves
        f"Plan: rollback of run {swap_run} (swap) — 1 step(s), 2 change(s)",
        "  [1] swap to the idle colour  (applied)",
        f"      container {env.green} (green): unchanged ({running}, prepared (`swap --prepare`): kept)",
        f"      proxy upstream: {green} -> {blue}",
        f"Plan: rollback of run {prepare_run} (swap prepare) — 1 step(s), 1 change(s)",
        "  [1] prepare the idle colour  (applied)",
        f"      container {env.green} (green): delete (was {running})"]
    shown = cli("rollback", "--through", prepare_run, "--dry-run", "--json")
    assert shown.exit_code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert (doc["targets"], [(s["run"], s["kind"]) for s in doc["steps"]]) == (
        [swap_run, prepare_run], [(swap_run, "swap.swap"), (prepare_run, "swap.prepare")])
    # the prepare alone, while the swap to it stands: refused as before
    refused = cli("rollback", "--run", prepare_run, "--dry-run")
    assert (refused.exit_code, refused.stderr) == (1, "error: green is live now: a swap went to the prepared colour —"
                                                      " roll that swap back first (`golive rollback`), then this\n")
    assert env.container(env.green).id == green_id  # nothing changed by any of it

    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--through", prepare_run, "--yes", "--json")))
    assert out[0].exit_code == 0, out[0].stderr
    assert json.loads(out[0].stdout.splitlines()[-1])["targets"] == [swap_run, prepare_run]
    assert result.bodies()[0] == "green" and result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None
    runs = {run["id"]: run["status"] for run in json.loads(cli("history", "--json").stdout)["runs"]}
    assert (runs[swap_run], runs[prepare_run]) == ("rolled_back", "rolled_back")


def test_rollback_through_a_finalized_night_plans_the_old_colour_made_again_once(night_env: BlueGreen, cli) -> None:
    """prepare, swap, finalize (blue removed): the finalize's undo makes blue again, so the swap's undo, planned
    before either runs, does not plan to make it again too; then all three undone, under load."""
    env = night_env
    prepare_run, swap_run, _ = _night(env, cli)
    finalized = cli("swap", "finalize", "--yes")
    assert finalized.exit_code == 0, finalized.stderr
    assert env.container(env.blue) is None
    blue, green = f"http://127.0.0.1:{env.blue_port}", f"http://127.0.0.1:{env.green_port}"

    planned = cli("rollback", "--through", prepare_run, "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    swap_plan = planned.lines[planned.lines.index(f"Plan: rollback of run {swap_run} (swap) — 1 step(s), 2 change(s)"):]
    assert swap_plan[3] == f"      proxy upstream: {green} -> {blue}"
    build = env.docker.images.get(env.images["blue"]).id.removeprefix("sha256:")[:12]  # (the build, not the tag)
    assert [line for line in planned.lines if f"container {env.blue} (blue)" in line] == [
        f"      container {env.blue} (blue): create running {env.images['blue']} ({build})"]  # the finalize's undo alone

    out = []
    result = under_load(env, lambda: out.append(cli("rollback", "--through", prepare_run, "--yes")))
    assert out[0].exit_code == 0, out[0].stderr
    assert result.bodies()[0] == "green" and result.bodies()[-1] == "blue"
    blue_live(env)
    assert env.container(env.green) is None


def test_rollback_run_of_a_swap_under_a_newer_swap_is_refused_and_through_takes_both_back(night_env: BlueGreen,
                                                                                         cli) -> None:
    """`swap` (blue→green), `swap --image …` (green→blue, the third release), then `rollback --run <first swap>`:
    its undo switched to blue — now the third release — and removed green, the newer swap's way back; the site
    ended on the wrong release and no rollback could bring the first blue back. Refused; `--through` works."""
    env = night_env
    first = json.loads(cli("swap", "--yes", "--json").stdout.splitlines()[-1])["run"]
    again = cli("swap", "--image", env.images["green-hc"], "--yes", "--json")  # (another build: the third release)
    assert again.exit_code == 0, again.stderr
    second = json.loads(again.stdout.splitlines()[-1])["run"]
    from golive.cli.application import App
    from golive.steps.files import WriteFile

    later = App(env.project / "golive.toml").runner().run("z", [WriteFile(path=str(env.project / "z.txt"), content="z\n")])
    ids = {env.blue: env.container(env.blue).id, env.green: env.container(env.green).id}
    refused = cli("rollback", "--run", first, "--yes")  # (its hint named `golive rollback`: that undid run z)
    assert (refused.exit_code, refused.stderr) == (1, (
        f"error: run {first} (swap) cannot be rolled back before run {second} (swap), which came after it and still"
        " has applied swap steps: its undo would switch to a colour that run has changed since; nothing was changed"
        f" — roll back run {second} first (`golive rollback --run {second} --yes`), or every run back to {first} at"
        f" once (`golive rollback --through {first} --yes`: that undoes {later.run_id} (z) too)\n"))
    assert {name: env.container(name).id for name in ids} == ids
    back = under_load(env, lambda: cli("rollback", "--through", first, "--yes"))
    assert back.bodies()[-1] == "blue"
    blue_live(env)
