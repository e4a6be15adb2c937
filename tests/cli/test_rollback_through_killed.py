"""A `rollback --through RUN` killed half way is named again to finish it: `golive status` and `history` say
`golive rollback --through RUN …`, not plain `golive rollback` (which undoes the newest run alone)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.test_full_disk import write_freeze_config


def test_a_killed_rollback_through_is_named_again_by_status_and_history(project: Path, golive_proc) -> None:
    flag = write_freeze_config(project)
    for what in ("on", "off", "on"):
        assert golive_proc("freeze", what, "--yes", cwd=project).returncode == 0
    runs = [r["id"] for r in json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]]
    killed = golive_proc("rollback", "--through", runs[-1], "--yes", cwd=project,
                         env={"GOLIVE_FAULT": "freeze.set:undo:kill"})
    assert killed.returncode == -9
    again = f"golive rollback --through {runs[-1]} --yes"
    status = golive_proc("status", cwd=project)
    assert f"rollback:  would undo 3 step(s) of 3 run(s), back to run {runs[-1]} (`{again}`: it stopped before its" \
           " end)" in status.stdout.splitlines(), status.stdout
    assert json.loads(golive_proc("status", "--json", cwd=project).stdout)["rollback_command"] == again
    assert golive_proc("history", cwd=project).stdout.splitlines()[-1] == (
        f"rollback --through {runs[-1]} stopped before its end: 3 step(s) of 3 run(s) left; `{again}` finishes it")
    assert golive_proc(*again.split()[1:], cwd=project).returncode == 0
    assert not flag.exists() and "rollback:" not in golive_proc("status", cwd=project).stdout
