"""A run id is the second it started and 4 random hex digits: two runs the same second with the same digits (a
`rollback --through` starts several runs a second) get different ids, never an IntegrityError half-way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golive.core.journal import Journal
from tests.core.test_full_disk import write_freeze_config


def pin(monkeypatch: pytest.MonkeyPatch, stamp: str, first: int) -> None:
    """Every new run's id starts from the same second and the same random digits: each is a clash but the first."""
    monkeypatch.setattr("golive.core.journal._id_parts", lambda: (stamp, first))


def test_an_id_taken_that_second_gives_the_next_free_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "20261125-020000", 0xfffe)
    journal = Journal(tmp_path / "journal.db")
    other = Journal(tmp_path / "journal.db")  # (another process's connection: its run takes the next id)
    ids = [journal.start_run("a", {}, [("test", "one", {})]), other.start_run("b", {}, []),
           journal.start_run("c", {}, [])]
    assert ids == ["20261125-020000-fffe", "20261125-020000-ffff", "20261125-020000-0000"]
    assert [(r.id, r.command) for r in journal.runs()] == list(zip(reversed(ids), "cba", strict=True))
    assert [s.run_id for s in journal.steps(ids[0])] == [ids[0]]
    pin(monkeypatch, "20261125-020001", 0xfffe)  # (a new second: its ids are free again)
    assert journal.start_run("d", {}, []) == "20261125-020001-fffe"


def test_a_rollback_through_whose_runs_clash_undoes_them_all(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tester's case: every run id the same but for the clash check; `rollback --through` did its first undo,
    then stopped on `UNIQUE constraint failed: runs.id` (exit 1), the freeze left on."""
    flag = write_freeze_config(project)
    pin(monkeypatch, "20261125-020000", 0x1f)
    assert cli("freeze", "on", "--yes").exit_code == 0
    assert cli("freeze", "off", "--yes").exit_code == 0
    assert flag.exists() is False
    result = cli("rollback", "--through", "20261125-020000-001f", "--yes", "--json")
    assert (result.exit_code, result.stderr) == (0, ""), result
    done = json.loads(result.lines[-1])
    assert (done["rolled_back"], done["run"]) == (["20261125-020000-0020", "20261125-020000-001f"],
                                                 "20261125-020000-0022")
    assert flag.exists() is False  # (the freeze on undone too: the old application writable, as before it)
    runs = json.loads(cli("history", "--json").stdout)["runs"]
    assert [(r["id"], r["command"], r["status"]) for r in runs] == [
        ("20261125-020000-0022", "rollback", "succeeded"), ("20261125-020000-0021", "rollback", "succeeded"),
        ("20261125-020000-0020", "freeze off", "rolled_back"), ("20261125-020000-001f", "freeze on", "rolled_back")]
