"""`golive status` on a site that is down: the live colour's container removed by hand (an OOM kill, a
`compose down`, a mistake) left Apache answering 503, and status said all was well."""

from __future__ import annotations

import json

from golive.sandbox.bluegreen import BlueGreen as SwapEnv


def test_status_says_the_live_colour_has_no_container_and_the_site_answers_503(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    healthy = json.loads(cli("status", "--json").stdout)["state"]["swap"]
    assert (healthy["ok"], healthy["live_container"], healthy["health_status"]) == (True, "running", 200)
    env.container(env.blue).remove(force=True)
    assert cli("status").lines[-1] == (
        f"swap:      live=blue, upstream=http://127.0.0.1:{env.blue_port}, idle=green (none), live_container=none —"
        " the proxy points at blue, which has no running container: `golive swap` starts a healthy colour and points"
        f" the proxy at it, health={env.apache.url}/healthz answers 503")
    down = json.loads(cli("status", "--json").stdout)["state"]["swap"]
    assert (down["ok"], down["live_container"], down["live_image"], down["health_status"], down["proxy_answers"]) == \
        (False, "none", None, 503, True)
