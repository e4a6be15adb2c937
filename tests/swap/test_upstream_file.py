"""The upstream file read as Apache reads it, and the swap refused while Apache serves something else.

A "quick manual rollback" appended a second `Define GOLIVE_UPSTREAM <blue>` and reloaded: Apache serves the last
Define, golive read the first. `golive swap --image v3` then took blue — the colour Apache was serving — for the
idle colour and replaced it (thousands of 502, exit 0); its rollback wrote the recorded two lines back verbatim,
and its by-hand lines named the wrong port and the two-line text."""

from __future__ import annotations

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.test_swap import under_load


def _line(env: SwapEnv, port: int) -> str:
    return f"upstream http://127.0.0.1:{port}\n" if env.switch == "map" else \
        f"Define GOLIVE_UPSTREAM http://127.0.0.1:{port}\n"


def test_a_second_define_added_by_hand_is_read_as_apache_reads_it_and_the_undo_writes_one_line(
        swap_env: SwapEnv, cli, v3: str) -> None:
    env = swap_env
    blue, green = f"http://127.0.0.1:{env.blue_port}", f"http://127.0.0.1:{env.green_port}"
    assert cli("swap", "--yes").exit_code == 0
    with env.apache.upstream_file.open("a") as f:  # back to blue by hand, the old line left above it
        f.write(f"Define GOLIVE_UPSTREAM {blue}\n")
    env.apache.graceful()
    shown = cli("status").lines[-1]
    assert shown.startswith(f"swap:      live=blue, upstream={blue}, idle=green (running "), shown
    assert "serving=" not in shown
    out = []
    result = under_load(env, lambda: out.append(cli("swap", "--yes", "--image", v3)))
    assert out[0].exit_code == 0, out[0].stderr
    # blue, which Apache served, was never touched (8 clients: their answers may interleave at the switch)
    assert set(result.bodies()) == {"blue", "v3"} and result.bodies()[0] == "blue" and result.bodies()[-1] == "v3"
    assert env.container(env.blue).status == "running"
    assert env.apache.upstream_file.read_text() == _line(env, env.green_port)

    # a rollback that cannot confirm (a reload command that does nothing): its by-hand lines name blue's port
    env.write_config(reload_command=["true"], proxy_extra="confirm_timeout = 2\n")
    failed = cli("rollback", "--yes")
    assert failed.exit_code == 4, failed.stderr
    hand = [line for line in failed.stderr.splitlines() if line.startswith("  by hand:")]
    assert hand[0].startswith(f"  by hand: make sure the blue container {env.blue} runs and answers on {blue} ("), hand
    assert hand[1] == (f"  by hand: make the upstream file say 'Define GOLIVE_UPSTREAM {blue}', run the proxy's"
                       " configtest, then (switch = \"reload\" only) its graceful reload"), hand
    assert env.apache.upstream_file.read_text() == _line(env, env.blue_port)  # one line, not the recorded two
    env.write_config()
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert result.bodies()[-1] == "blue"
    assert env.apache.upstream_file.read_text() == _line(env, env.blue_port)
    assert green not in env.apache.upstream_file.read_text()


def test_a_swap_is_refused_while_apache_serves_other_than_the_file_says(swap_env: SwapEnv, cli) -> None:
    """The file put back at blue by hand and never reloaded: Apache serves green. A swap (or a prepare) would take
    green, the colour serving, for the idle one and replace it."""
    env = swap_env
    blue, green = f"http://127.0.0.1:{env.blue_port}", f"http://127.0.0.1:{env.green_port}"
    assert cli("swap", "--yes").exit_code == 0
    env.apache.point_at(blue)
    green_id = env.container(env.green).id
    out = []
    other = ("--image", env.images["green-hc"])  # (another build: green would be replaced, not kept as prepared)
    commands = [("swap", "--dry-run", *other), ("swap", "--yes", *other), ("swap", "--prepare", "--yes", *other)]
    result = under_load(env, lambda: out.extend(cli(*args) for args in commands))
    assert set(result.bodies()) == {"green"}
    for refused in out:
        assert refused.exit_code == 1, refused.stderr
        assert refused.stderr.splitlines() == [
            f"error: Apache serves {green}, not {blue} as the upstream file {env.apache.upstream_file} says (changed"
            " and not reloaded): a swap would replace green, the colour serving; nothing was changed — make the"
            " upstream file point at what Apache should serve, run the proxy's configtest and graceful reload, then"
            " run this again"], refused.stderr
    assert env.container(env.green).id == green_id
    assert env.apache.upstream_file.read_text() == _line(env, env.blue_port)


def test_map_mode_reads_the_map_as_mod_rewrite_does_and_the_undo_writes_one_line(swap_env_map: SwapEnv, cli,
                                                                                   v3: str) -> None:
    """mod_rewrite takes the first line with the key at the start of the line (one that starts with a space is
    skipped); the undo writes one line for the recorded colour, not the map's old text."""
    env = swap_env_map
    blue = f"http://127.0.0.1:{env.blue_port}"
    green = f"http://127.0.0.1:{env.green_port}"
    assert cli("swap", "--yes").exit_code == 0
    env.apache.upstream_file.write_text(f" upstream {green}\nupstream {blue}\nupstream {green}\n")  # mod_rewrite: blue
    shown = cli("status").lines[-1]
    assert shown.startswith(f"swap:      live=blue, upstream={blue}, idle=green (running "), shown
    out = []
    result = under_load(env, lambda: out.append(cli("swap", "--yes", "--image", v3)))
    assert out[0].exit_code == 0, out[0].stderr
    assert set(result.bodies()) == {"blue", "v3"} and result.bodies()[0] == "blue" and result.bodies()[-1] == "v3"
    result = under_load(env, lambda: out.append(cli("rollback", "--yes")))
    assert out[1].exit_code == 0, out[1].stderr
    assert set(result.bodies()) == {"v3", "blue"} and result.bodies()[0] == "v3" and result.bodies()[-1] == "blue"
    assert env.apache.upstream_file.read_text() == _line(env, env.blue_port)


def test_the_upstream_is_read_as_apache_and_mod_rewrite_read_it(tmp_path) -> None:
    """No services: Apache's Define keeps the last value given; mod_rewrite takes the first line whose key starts
    the line; quotes around a Define's value are Apache's, not the URL's; a commented line counts for neither."""
    from tests.swap.test_proxy import gateway

    reload, map_ = gateway(tmp_path, "reload"), gateway(tmp_path, "map")
    cases = [
        ("Define GOLIVE_UPSTREAM http://a\nDefine GOLIVE_UPSTREAM http://b\n", "http://b", "http://b"),
        ('  define GOLIVE_UPSTREAM "http://a"\n# Define GOLIVE_UPSTREAM http://b\n', "http://a", "http://a"),
        ("Define GOLIVE_UPSTREAM_OLD http://a\nDefine GOLIVE_UPSTREAM http://b\n", "http://b", "http://b"),
        ("upstream http://a\nupstream http://b\n", "http://a", "http://a"),
        (" upstream http://a\n#upstream http://c\nupstream http://b\n", "http://b", "http://b"),
        ("upstream http://m\nDefine GOLIVE_UPSTREAM http://d\n", "http://d", "http://m"),
    ]
    for text, as_reload, as_map in cases:
        reload.file.write_text(text)
        assert (reload.upstream(), map_.upstream()) == (as_reload, as_map), text
