"""A `golive rollback` run has no steps of its own: it undoes another run's. `history` shows what it undid and of
which run (it showed 0/0/0), and a `rollback --through RUN` that stopped before its end is named again, as given,
to finish it (a plain `golive rollback` undoes only the newest run)."""

from __future__ import annotations

import json
from pathlib import Path

from golive.core.journal import Journal
from tests.core.test_full_disk import write_freeze_config


def freeze_runs(project: Path, cli, *what: str) -> list[str]:
    """Freeze runs, oldest first: their ids."""
    write_freeze_config(project)
    for w in what:
        assert cli("freeze", w, "--yes").exit_code == 0
    return [r["id"] for r in json.loads(cli("history", "--json").stdout)["runs"]][::-1]


def test_history_lists_what_each_rollback_run_undid_and_of_which_run(project: Path, cli) -> None:
    on, off = freeze_runs(project, cli, "on", "off")
    assert cli("rollback", "--through", on, "--yes").exit_code == 0
    rows = [line.split() for line in cli("history").lines[1:]]
    first, second = (r["id"] for r in json.loads(cli("history", "--json").stdout)["runs"][:2])
    assert [(r[0], " ".join(r[1:-5]), r[-2:]) for r in rows] == [  # (RUN, COMMAND, … STATUS, APPLIED/UNDONE/STEPS)
        (first, f"rollback of {on}", ["succeeded", "-/1/1"]), (second, f"rollback of {off}", ["succeeded", "-/1/1"]),
        (off, "freeze off", ["rolled_back", "0/1/1"]), (on, "freeze on", ["rolled_back", "0/1/1"])]
    doc = json.loads(cli("history", "--json").stdout)
    assert doc["unfinished_rollback"] is None
    runs = {r["id"]: r for r in doc["runs"]}
    assert runs[first]["rolled_back"] == [on]
    assert [(u["run"], u["seq"], u["title"], u["result"]) for u in runs[first]["undos"]] == [
        (on, 1, "freeze writes", "undone")]
    assert "undos" not in runs[on]  # (a run with steps of its own: its steps are what it did)
    one = cli("history", second).lines
    assert one[1:3] == [f"  rolled back run {off}", "#  STEP             UNDO    TOOK "]
    assert one[3].split()[:4] == ["1", "unfreeze", "writes", "undone"]


def killed_through(project: Path, cli) -> tuple[list[str], Journal, str]:
    """Three freeze runs, then a `rollback --through` of them killed in the middle of its first undo, as its
    process leaves the journal: its rollback run "running", with the command as given (`again`), one undo begun."""
    runs = freeze_runs(project, cli, "on", "off", "on")
    journal = Journal(project / ".golive" / "journal.db")
    again = f"golive rollback --through {runs[0]} --yes"
    rollback = journal.start_run("rollback", {"target": runs[2], "again": again}, [], parent=runs[2])
    journal.step_status(runs[2], 1, "undoing")
    journal.event(rollback, "undo.start", seq=1, data={"title": "freeze writes", "target_run": runs[2]})
    journal.db.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (rollback,))  # (its process: gone)
    return runs, journal, rollback


def test_a_through_rollback_that_stopped_is_named_again_to_finish_it(project: Path, cli) -> None:
    runs, journal, rollback = killed_through(project, cli)
    unfinished = journal.unfinished_through()
    assert unfinished is not None
    assert (unfinished.rollback.id, unfinished.through, unfinished.again, [r.id for r in unfinished.left],
            unfinished.steps) == (rollback, runs[0], f"golive rollback --through {runs[0]} --yes", runs[::-1], 3)
    listed = cli("history")
    assert listed.lines[-1] == (f"rollback --through {runs[0]} stopped before its end: 3 step(s) of 3 run(s) left;"
                                f" `golive rollback --through {runs[0]} --yes` finishes it")
    assert json.loads(cli("history", "--json").stdout)["unfinished_rollback"] == {
        "through": runs[0], "command": f"golive rollback --through {runs[0]} --yes", "runs": runs[::-1], "steps": 3}
    one = cli("history", rollback).lines
    assert one[0].startswith(f"run {rollback}: rollback — crashed (its process is gone: `golive rollback --through"
                             f" {runs[0]} --yes` finishes it) (by ")
    assert one[1] == f"  rolled back run {runs[2]}"
    assert one[3].split() == ["1", "freeze", "writes", "killed", "-"]
    report = cli("report", rollback, "-o", "-").lines
    assert f"- status: **crashed (its process is gone: `golive rollback --through {runs[0]} --yes` finishes it)**" \
        in report
    assert f"### [1] freeze writes (run {runs[2]}) — not finished" in report


def test_a_through_rollback_is_no_longer_named_once_finished_or_once_another_run_came(project: Path, cli) -> None:
    runs, journal, _ = killed_through(project, cli)
    assert cli("rollback", "--yes").exit_code == 0  # (a plain rollback: the newest run only; the rest still left)
    left = journal.unfinished_through()
    assert left is not None and ([r.id for r in left.left], left.steps) == (runs[1::-1], 2)
    assert cli("freeze", "on", "--yes").exit_code == 0  # (a new run: the --through's intent no longer holds)
    assert journal.unfinished_through() is None
    assert "stopped before its end" not in cli("history").stdout
