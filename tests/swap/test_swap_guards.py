"""What a swap and a finalize must find out before they remove a container, and failures named as what they are.

- A reload_command that cannot run at all (a typo) is a failed reload: the undo goes on when blue still answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golive.sandbox.bluegreen import BlueGreen as SwapEnv
from tests.swap.test_swap import failed_swap


# -- 3. a reload command that cannot run -------------------------------------------------------------------------
def test_a_reload_command_that_cannot_run_is_a_failed_reload_and_the_undo_goes_on(swap_env: SwapEnv, cli) -> None:
    env = swap_env
    env.write_config(reload_command=["/usr/sbin/apachectl-typo", "graceful"])
    failed = failed_swap(env, cli)  # exit 1, not 4: Apache never reloaded, blue answered throughout
    assert "proxy reload `/usr/sbin/apachectl-typo graceful` could not run: [Errno 2]" in failed.stderr
    assert "the public URL answers from blue all the same, so the undo goes on" in failed.stdout


def test_a_reload_or_test_command_that_cannot_run(tmp_path: Path) -> None:
    from golive.errors import GoliveError
    from golive.swap.proxy import ProxyGateway, ReloadFailed
    from tests.swap.test_proxy import gateway

    missing = str(tmp_path / "no-such-apachectl")
    gone = gateway(tmp_path, "reload")
    proxy = ProxyGateway(gone.proxy.model_copy(update={"reload_command": [missing, "graceful"],
                                                       "test_command": [missing, "configtest"]}), gone.file)
    with pytest.raises(ReloadFailed, match=r"^proxy reload `\S+no-such-apachectl graceful` could not run: \[Errno 2\]"):
        proxy.reload()
    with pytest.raises(GoliveError) as raised:
        proxy.test()
    assert type(raised.value) is GoliveError  # (a test that cannot run is no reload: nothing was reloaded)
