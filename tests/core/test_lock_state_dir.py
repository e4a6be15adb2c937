"""A state dir that cannot be made stops the lock as it stops the journal: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize(("state_dir", "reason"), [("afile", "File exists"), ("afile/state", "Not a directory")])
def test_a_state_dir_that_cannot_be_made_is_one_line_for_the_lock_too(project: Path, cli, state_dir: str,
                                                                      reason: str) -> None:
    (project / "afile").write_text("")
    (project / "golive.toml").write_text(f'[project]\nname = "x"\nstate_dir = "{state_dir}"\n'
                                         '[source]\nurl = "sqlite:///old.db"\n[source.freeze]\nflag_file = "FLAG"\n')
    said = (f"error: cannot make the state dir {project}/{state_dir}: {reason} — fix [project].state_dir, or that"
            " folder's permissions\n")
    for args in (("freeze", "on", "--yes"), ("freeze", "off", "--yes"), ("lock", "status"), ("lock", "release")):
        result = cli(*args)
        assert (result.exit_code, result.stderr) == (2, said), args
