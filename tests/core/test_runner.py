"""Runner tests with steps whose effects are in memory or on files: plan, apply, check, undo,
resume and interruption, and the secrets the journal must never hold."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest

from golive.core.change import Change, plan_checksum
from golive.core.faults import Faults
from golive.core.journal import Journal
from golive.core.runner import Runner
from golive.core.step import Record, Step, StepContext, register_step
from golive.errors import Interrupted, StepFailed, UndoFailed
from golive.secrets import REDACTOR, SecretRef
from golive.steps.files import WriteFile

STORE: dict[str, str] = {}


class SetKey(Step):
    """An in-memory key/value step: the smallest honest Step."""

    kind = "test.set"
    fail_check: ClassVar[bool] = False
    interrupt: ClassVar[bool] = False

    def __init__(self, key: str, value: str) -> None:
        super().__init__(key=key, value=value)

    @property
    def title(self) -> str:
        return f"set {self.params['key']}"

    def plan(self, ctx: StepContext) -> list[Change]:
        return [Change(f"key {self.params['key']}", STORE.get(self.params["key"]), self.params["value"])]

    def snapshot(self, ctx: StepContext) -> Record:
        return {"value": STORE.get(self.params["key"])}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        if self.interrupt:
            raise KeyboardInterrupt
        STORE[self.params["key"]] = self.params["value"]
        ctx.log("apply", f"key {self.params['key']} = {self.params['value']}")
        return before

    def undo(self, ctx: StepContext, record: Record) -> None:
        if record["value"] is None:
            STORE.pop(self.params["key"], None)
        else:
            STORE[self.params["key"]] = record["value"]

    def check(self, ctx: StepContext) -> list[str]:
        return ["read back differs"] if self.fail_check else []


register_step("test.set", f"{__name__}:SetKey")


class UndoLeaves(SetKey):
    """Its undo does part of the work, then fails saying itself what is left to do by hand (``left``; none:
    the step's whole manual undo is what is left)."""

    kind = "test.undo_leaves"
    left: ClassVar[list[str]] = []

    def undo(self, ctx: StepContext, record: Record) -> None:
        super().undo(ctx, record)
        raise UndoFailed(f"key {self.params['key']} is back, but its cache was not flushed", manual=list(self.left),
                         hint="flush it")

    def manual_undo(self, record: Record) -> list[str]:
        return [f"set key {self.params['key']} back to {record['value']!r} and flush its cache"]


register_step("test.undo_leaves", f"{__name__}:UndoLeaves")


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    STORE.clear()
    SetKey.fail_check = SetKey.interrupt = False
    events: list[dict[str, Any]] = []
    r = Runner(Journal(tmp_path / "journal.db"), StepContext(state_dir=tmp_path), events.append)
    r.events = events  # type: ignore[attr-defined]
    return r


def test_plan_is_exact_and_touches_nothing(runner: Runner) -> None:
    STORE["a"] = "1"
    planned = runner.plan([SetKey("a", "2"), SetKey("b", "3")])
    assert [c for p in planned for c in p.changes] == [Change("key a", "1", "2"), Change("key b", None, "3")]
    assert [str(c) for p in planned for c in p.changes] == ["key a: 1 -> 2", "key b: create 3"]
    assert STORE == {"a": "1"}
    assert runner.journal.runs() == []


def test_change_values() -> None:
    change = Change("dns www A", "203.0.113.10", "198.51.100.20")
    assert change.inverse() == Change("dns www A", "198.51.100.20", "203.0.113.10")
    assert change.data == {"what": "dns www A", "action": "update", "before": "203.0.113.10", "after": "198.51.100.20"}
    assert Change.from_data(change.data) == change
    assert str(Change("f", "x", None)) == "f: delete (was x)"
    assert plan_checksum([change]) == plan_checksum([Change("dns www A", "203.0.113.10", "198.51.100.20")])
    assert plan_checksum([change]) != plan_checksum([change.inverse()])


def test_journal_holds_intent_before_and_record_after(runner: Runner) -> None:
    STORE["a"] = "old"
    outcome = runner.run("t", [SetKey("a", "new")])
    row = runner.journal.steps(outcome.run_id or "")[0]
    assert (row.status, row.before, row.record) == ("applied", {"value": "old"}, {"value": "old"})
    assert row.changes == [{"what": "key a", "action": "update", "before": "old", "after": "new"}]
    db = sqlite3.connect(runner.journal.path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_failed_check_undoes_the_step_and_those_before(runner: Runner) -> None:
    STORE["a"] = "old"
    SetKey.fail_check = True
    with pytest.raises(StepFailed) as caught:
        runner.run("t", [SetKey("a", "new")])
    assert str(caught.value).startswith("step set a failed: check after apply: read back differs")
    assert STORE == {"a": "old"}
    assert runner.journal.runs()[0].status == "rolled_back"


def test_ctrl_c_leaves_a_consistent_journal_and_says_what_to_do(runner: Runner) -> None:
    runner.run("first", [SetKey("a", "1")])
    SetKey.interrupt = True
    with pytest.raises(Interrupted) as caught:
        runner.run("t", [SetKey("b", "2")])
    assert caught.value.exit_code == 130
    assert ("undo what was applied with `golive rollback` (`golive status` shows the run), then run the command"
            " again") in str(caught.value)
    run = runner.journal.runs()[0]
    assert run.status == "interrupted"
    assert runner.journal.steps(run.id)[0].status == "applying"


def test_resume_after_a_crash_finishes_the_run(project: Path) -> None:
    from tests.core.test_crash import crashrun, files, seed

    seed(project)
    crashrun(project, "3:mid:kill")
    journal = Journal(project / ".golive" / "journal.db")
    run = journal.runs()[0]
    assert [s.status for s in journal.steps(run.id)] == ["applied", "applied", "applying", "pending", "pending"]
    ctx = StepContext(state_dir=project / ".golive", faults=Faults())
    outcome = Runner(journal, ctx).resume(run)
    assert outcome.status == "succeeded"
    assert [s.status for s in journal.steps(run.id)] == ["applied"] * 5
    assert files(project) == {"a.txt": (b"a: new\n", 0o644), "b.txt": (b"b: created\n", 0o644),
                              "d.txt": (b"d: secret-ish\n", 0o600), "e.txt": (b"e: new\n", 0o644)}


def test_a_secret_never_reaches_the_journal(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_TOKEN", "tok-0123456789abcdef")
    token = SecretRef.parse("env:GOLIVE_TEST_TOKEN").resolve()
    runner.run("t", [SetKey("a", f"Bearer {token}")])
    dump = "\n".join(sqlite3.connect(runner.journal.path).iterdump())
    assert token not in dump
    assert "Bearer ***" in dump
    assert all(token not in str(e) for e in runner.events)  # type: ignore[attr-defined]
    assert REDACTOR("postgresql://app:hunter22@db/x") == "postgresql://app:***@db/x"


def test_steps_rebuild_from_the_journal_in_another_process(runner: Runner, tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    runner.run("t", [WriteFile(path=str(target), content="hi")])
    fresh = Runner(Journal(runner.journal.path), StepContext(state_dir=tmp_path))
    run = fresh.journal.latest_undoable_run()
    assert run is not None
    fresh.rollback(run)
    assert not target.exists()
    assert fresh.journal.latest_undoable_run() is None


def test_rollback_through_a_run_takes_back_the_night_in_one_command(project: Path, cli) -> None:
    import json

    from golive.cli.application import App
    from golive.steps.files import WriteFile

    app = App(project / "golive.toml")
    runs = []
    for name in ("yesterday", "freeze", "sync", "swap"):  # one run each, as the runbook's commands make them
        runs.append(app.runner().run(name, [WriteFile(path=str(project / f"{name}.txt"), content=name)]).run_id)
    assert cli("rollback", "--run", runs[0], "--through", runs[1]).exit_code == 2
    assert cli("rollback", "--through", "20990101-000000-0000").stderr == (
        "error: no run 20990101-000000-0000 in the journal — `golive history` lists the runs\n")
    planned = cli("rollback", "--through", runs[1], "--dry-run")
    assert [line for line in planned.lines if line.startswith("Plan:")] == [
        f"Plan: rollback of run {runs[3]} (swap) — 1 step(s), 1 change(s)",
        f"Plan: rollback of run {runs[2]} (sync) — 1 step(s), 1 change(s)",
        f"Plan: rollback of run {runs[1]} (freeze) — 1 step(s), 1 change(s)"]
    unasked = cli("rollback", "--through", runs[1])  # no terminal, no --yes: nothing is done
    assert unasked.exit_code == 2 and "needs confirmation and there is no terminal to ask" in unasked.stderr
    assert all((project / f"{name}.txt").exists() for name in ("freeze", "sync", "swap"))
    done = cli("rollback", "--through", runs[1], "--yes", "--json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.lines[-1])["targets"] == [runs[3], runs[2], runs[1]]
    assert [(project / f"{n}.txt").exists() for n in ("yesterday", "freeze", "sync", "swap")] == [True, False, False, False]
    again = cli("rollback", "--through", runs[1], "--yes")
    assert (again.exit_code, again.stdout) == (0, f"nothing to roll back: no run since {runs[1]} has applied steps\n")
    assert f"would undo 1 step(s) of run {runs[0]}" in cli("status").stdout  # the run before it is left alone


@pytest.mark.parametrize("left", [["flush the cache of key b"], []], ids=["its-own", "none"])
def test_an_undo_that_says_what_it_left_undone_is_what_the_rollback_asks_by_hand(runner: Runner, left: list[str]) -> None:
    """The manual lines an undo's UndoFailed carries are what the run reports (the step's whole manual undo only
    when it carries none), and the older steps still to undo come after them."""
    UndoLeaves.left = left
    STORE["b"] = "old"
    applied = runner.run("t", [SetKey("a", "1"), UndoLeaves("b", "2")])
    run = runner.journal.latest_undoable_run()
    assert run is not None and run.id == applied.run_id
    with pytest.raises(UndoFailed) as caught:
        runner.rollback(run)
    reason = "key b is back, but its cache was not flushed — flush it"
    assert caught.value.message == f"undo of step 2 (set b) of run {run.id} failed: {reason}"
    assert caught.value.manual == (left or ["set key b back to 'old' and flush its cache"]) + [
        "then run `golive rollback` again to undo the 1 older step(s)"]
    assert [s.status for s in runner.journal.steps(run.id)] == ["applied", "undo_failed"]
    rollback = runner.journal.runs()[0]
    assert (rollback.command, rollback.status) == ("rollback", "failed")
    assert [(e["seq"], e["data"]["error"]) for e in runner.journal.events(rollback.id) if e["kind"] == "undo.failed"] == [
        (2, reason)]
    assert STORE == {"a": "1", "b": "old"}


def test_a_through_rollback_whose_undo_fails_names_the_same_command_to_finish_it(project: Path, cli) -> None:
    """Its hint said "then `golive rollback` again", a plain rollback of the newest run, not the series."""
    from golive.cli.application import App
    from golive.steps.files import WriteFile

    (project / "sub").mkdir()
    for name in ("freeze", "sync"):
        (project / "sub" / f"{name}.txt").write_text("old\n")
    app = App(project / "golive.toml")
    runs = [app.runner().run(name, [WriteFile(path=str(project / "sub" / f"{name}.txt"), content=name)]).run_id
            for name in ("freeze", "sync")]
    (project / "sub" / "freeze.txt").unlink()  # the folder replaced by a file: the older run's undo cannot work
    (project / "sub" / "sync.txt").unlink()
    (project / "sub").rmdir()
    (project / "sub").write_text("not a directory")
    failed = cli("rollback", "--through", runs[0], "--yes")
    assert failed.exit_code == 4
    assert f"— do the manual steps listed, then `golive rollback --through {runs[0]} --yes` again\n" in failed.stderr
    # the older run still to undo is named too (the by-hand lines counted the failing run's own steps only: none)
    assert f"  by hand: then run `golive rollback --through {runs[0]} --yes` again to undo the 1 older step(s) (1 of" \
           " them in 1 older run(s))" in failed.stderr.splitlines(), failed.stderr


@pytest.mark.parametrize(("record", "said", "code"), [
    ("[]", "has a corrupt before (a JSON list, not an object)", 2),
    ("{}", "undo of step 1 (write {path}) of run {run} failed: KeyError: 'path' — its journaled record lacks what the"
           " undo reads", 4),
])
def test_a_step_record_edited_into_the_wrong_shape_is_one_line_not_an_internal_error(
        project: Path, cli, record: str, said: str, code: int) -> None:
    """A step's record that is valid JSON but not what the step wrote (`{}`, `[]`: the journal edited by hand or
    damaged) made `golive rollback` an internal error (KeyError: 'domain_id'); unparseable JSON was already named."""
    from golive.cli.application import App

    path = project / "f.txt"
    run = App(project / "golive.toml").runner().run("test", [WriteFile(path=str(path), content="1\n")]).run_id
    with sqlite3.connect(project / ".golive" / "journal.db") as db:
        db.execute("UPDATE steps SET record = ?, before = ? WHERE run_id = ?", (record, record, run))
    refused = cli("rollback", "--yes")
    assert refused.exit_code == code
    [line, *rest] = refused.stderr.splitlines()
    assert said.format(path=path, run=run) in line and "internal error" not in refused.stderr, refused.stderr
    if code == 4:  # (the by-hand line says what golive knows, not a second KeyError)
        assert f"  by hand: undo step 1 (write {path}) of run {run} by hand: its journaled record cannot be read back" \
               f" (`golive history {run} --json` shows it)" in rest, rest
