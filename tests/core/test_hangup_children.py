"""A hung-up terminal sends SIGHUP to golive's whole process group: golive lets the step in flight finish, so the
programs that step runs must not die of it — pg_dump (the sync's backup), psql (a restore), the proxy's reload
(a swap's undo). They ran in golive's group and were killed: "pg_dump of the target failed:  — check the
target database", and an undo's reload failed with -1 and by-hand lines while Apache served the old colour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import signal, sys, time
signal.signal(signal.SIGHUP, lambda *_: None)  # (golive's own handler: noted, the step goes on)
which, marker = sys.argv[1], sys.argv[2]
slow = ["sh", "-c", f"touch {marker}; sleep 1.5"]
if which == "backup":
    from golive.sync.backup import _run
    _run(slow, {"PATH": "/usr/bin:/bin"}, "pg_dump of the target")
else:
    from golive.config.models import Proxy
    from golive.swap.proxy import ProxyGateway
    from pathlib import Path
    proxy = Proxy(upstream_file=Path("up.conf"), public_url="http://127.0.0.1:1", reload_command=slow)
    ProxyGateway(proxy, Path("up.conf"))._command("reload", slow)
print("finished")
"""


@pytest.mark.parametrize("which", ["backup", "reload"])
def test_a_program_a_step_runs_outlives_the_terminals_sighup(tmp_path: Path, which: str) -> None:
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, which, str(marker)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGHUP)  # (as the kernel does when the terminal hangs up: the whole group)
    out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (0, "finished\n", "")
