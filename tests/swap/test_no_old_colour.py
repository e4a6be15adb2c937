"""A swap from a live colour with no container behind it (the site was already down: blue removed by hand):
its undo has nothing to go back to, and says so at once, in its plan, before the proxy moves — not a confirm loop
that waits out its timeout and then reads "answers 503, not nothing from blue"."""

from __future__ import annotations

import time

from golive.sandbox.bluegreen import BlueGreen as SwapEnv


def test_an_undo_back_to_a_colour_that_answers_nothing_says_so_at_once(swap_env: SwapEnv, cli) -> None:
    """Refused in the rollback's plan, before anything changes: pointing Apache back at blue took the site from
    green's 200 to 503 (exit 4, the step left `undo_failed`, and `golive swap` refused until a rollback that never
    could succeed)."""
    env = swap_env
    env.container(env.blue).remove(force=True)  # the old release is gone: the site answers 503
    swapped = cli("swap", "--yes")
    assert swapped.exit_code == 0, swapped.stderr
    started = time.monotonic()
    rolled = cli("rollback", "--yes")
    took = time.monotonic() - started
    assert rolled.exit_code == 1, rolled.stderr
    assert rolled.stderr.splitlines() == [
        f"error: blue ({env.blue}) has no container, and the swap recorded none to make it again from: going back"
        " would point the proxy at nothing and take the site down; nothing was changed — green serves on; to go back,"
        f" start {env.blue} on 127.0.0.1:{env.blue_port} by hand, then `golive rollback` again"]
    assert took < 10  # (not [proxy].confirm_timeout, 15 s, waited for an answer that cannot come)
    assert env.container(env.green).status == "running"
    assert f"127.0.0.1:{env.green_port}" in env.apache.upstream_file.read_text()


def test_a_swap_from_a_colour_with_no_container_warns_in_its_plan_that_a_rollback_has_nothing_to_go_back_to(
        swap_env: SwapEnv, cli) -> None:
    """Said before the prompt, not found out by the rollback; the rollback's own plan refuses, as warned."""
    import json

    env = swap_env
    blue, green = f"http://127.0.0.1:{env.blue_port}", f"http://127.0.0.1:{env.green_port}"
    what = f"warning: container {env.blue} (blue), which a rollback points the proxy back to"
    with_blue = cli("swap", "--dry-run")
    assert with_blue.lines[0] == "Plan: swap to the idle colour — 1 step(s), 2 change(s)"
    assert with_blue.lines[3:] == [f"      proxy upstream: {blue} -> {green}"]
    env.container(env.blue).remove(force=True)
    planned = cli("swap", "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    assert planned.lines[0] == "Plan: swap to the idle colour — 1 step(s), 3 change(s)"
    assert planned.lines[3:] == [f"      proxy upstream: {blue} -> {green}", f"      {what}: absent"]
    doc = json.loads(cli("swap", "--dry-run", "--json").stdout)
    assert doc["steps"][0]["changes"][-1] == {"what": what, "action": "noop", "before": None, "after": None}
    swapped = cli("swap", "--yes")
    assert swapped.exit_code == 0, swapped.stderr
    assert f"      {what}: absent" in swapped.lines  # (the plan the prompt shows)
    undo = cli("rollback", "--dry-run")  # what the warning said: the rollback has nothing to go back to
    assert undo.exit_code == 1, undo.stderr
    assert undo.stderr.startswith(f"error: blue ({env.blue}) has no container, and the swap recorded none"), undo.stderr
