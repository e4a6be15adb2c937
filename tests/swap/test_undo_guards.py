"""A swap's (and a finalize's) undo goes back to the very container the run recorded, or refuses in its plan.

It switched the proxy to whatever container then bore the previous colour's name (another image run by hand, the
next prepare's release, a newer swap's live colour), made a removed colour again from whatever build its tag
pointed at once its own build was deleted (exit 0, the plan naming the old build), and failed (exit 4, no by-hand
`docker unpause`) on a colour someone had paused. Real Docker engine and real Apache, under load."""

from __future__ import annotations

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.test_swap import blue_live, under_load


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _served(env: SwapEnv, port: int) -> str:
    return f"upstream http://127.0.0.1:{port}\n" if env.switch == "map" else \
        f"Define GOLIVE_UPSTREAM http://127.0.0.1:{port}\n"


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
