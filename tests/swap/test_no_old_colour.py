"""A swap from a live colour with no container behind it (the site was already down: blue removed by hand):
its undo has nothing to go back to, and says so at once — not a confirm loop that waits out its timeout and
then reads "answers 503, not nothing from blue"."""

from __future__ import annotations

import time

from golive.sandbox.bluegreen import BlueGreen as SwapEnv


def test_an_undo_back_to_a_colour_that_answers_nothing_says_so_at_once(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.container(env.blue).remove(force=True)  # the old release is gone: the site answers 503
    swapped = cli("swap", "--yes")
    assert swapped.exit_code == 0, swapped.stderr
    started = time.monotonic()
    rolled = cli("rollback", "--yes")
    took = time.monotonic() - started
    assert rolled.exit_code == 4, rolled.stderr
    first = rolled.stderr.splitlines()[0]
    assert f"blue answers nothing on 127.0.0.1:{env.blue_port} itself" in first, first
    assert "not nothing" not in rolled.stderr
    assert took < 10  # (not [proxy].confirm_timeout, 15 s, waited for an answer that cannot come)
    assert env.container(env.green).status == "running"  # (kept: nothing was confirmed)
    assert "start blue's container (it answers on 127.0.0.1:" in first
