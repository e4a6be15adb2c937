"""Timeline reports from the journal: every step's apply and undo, in md, html and svg."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from golive.cli.application import App
from golive.errors import StepFailed
from golive.secrets import SecretRef
from golive.steps.files import WriteFile
from tests.core.test_crash import crashrun, seed


def test_report_of_a_failed_and_rolled_back_run(project: Path, cli) -> None:
    seed(project)
    crashrun(project, "4:mid:raise")
    run_id = App(project / "golive.toml").journal.runs()[0].id
    md = cli("report", run_id, "-o", "-")
    assert md.exit_code == 0
    lines = md.lines
    assert lines[:3] == [f"# golive run {run_id}", "", "- command: `crashrun`"]
    assert "- status: **rolled_back**" in lines
    timeline = [line.split(" | ")[1:3] for line in lines if line.startswith("| ") and "+" in line]
    assert timeline == [
        [f"write {project}/a.txt", "apply"], [f"write {project}/b.txt", "apply"], [f"remove {project}/c.txt", "apply"],
        [f"write {project}/d.txt", "failed"], [f"write {project}/d.txt", "undo"], [f"remove {project}/c.txt", "undo"],
        [f"write {project}/b.txt", "undo"], [f"write {project}/a.txt", "undo"]]
    assert f"### [5] write {project}/e.txt — pending" in lines

    svg = cli("report", run_id, "--format", "svg", "-o", "-").stdout
    root = ET.fromstring(svg)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert [b.get("fill") for b in bars].count("#1565c0") == 4  # four undo bars
    assert [b.get("fill") for b in bars].count("#c62828") == 1  # one failed step

    written = cli("report", run_id, "--format", "html")
    path = project / ".golive" / "reports" / f"{run_id}.html"
    assert written.stdout == f"wrote {path}\n"
    assert path.read_text().startswith("<!doctype html>") and "<svg" in path.read_text()


def test_a_later_rollback_shows_in_the_report_of_the_run(project: Path, cli) -> None:
    seed(project)
    crashrun(project, "3:after:kill")
    assert cli("rollback", "--yes").exit_code == 0
    run_id = App(project / "golive.toml").journal.runs()[1].id
    kinds = [line.split(" | ")[2] for line in cli("report", run_id, "-o", "-").lines if line.startswith("| ") and "+" in line]
    assert kinds == ["apply", "apply", "killed", "undo", "undo", "undo"]  # (step 3 never journaled its end)
    rollback_id = App(project / "golive.toml").journal.runs()[0].id
    events = [line for line in cli("report", run_id, "-o", "-").lines if line.startswith("- ") and "`undo.done`" in line]
    assert len(events) == 3 and all(f"`undo.done` (rollback {rollback_id}) [" in line for line in events), events


def test_no_secret_in_reports(project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_SECRET", "pw-4242-very-secret")
    secret = SecretRef.parse("env:GOLIVE_TEST_SECRET").resolve()
    app = App(project / "golive.toml")
    with pytest.raises(StepFailed):
        app.runner().run("t", [WriteFile(path=str(project / "nodir" / "x.txt"), content=f"token={secret}")])
    run_id = app.journal.runs()[0].id
    for fmt in ("md", "html", "svg"):
        out = cli("report", run_id, "--format", fmt, "-o", "-").stdout
        assert secret not in out


def test_unknown_format_and_run(project: Path, cli) -> None:
    assert cli("report", "nope").stderr == "error: no run nope in the journal — `golive history` lists the runs\n"
    bad = cli("report", "nope", "--format", "pdf")
    assert (bad.exit_code, bad.stderr) == (2, "error: unknown report format 'pdf' — use one of: md, html, svg\n")


def test_a_report_path_that_cannot_be_written_is_one_line(project: Path, cli) -> None:
    seed(project)
    crashrun(project, "4:mid:raise")
    run_id = App(project / "golive.toml").journal.runs()[0].id
    (project / "out").mkdir()
    for target in ("out", "a.txt/report.md"):  # a folder; a path through a file
        written = cli("report", run_id, "-o", target)
        assert written.exit_code == 2 and written.stderr.startswith(f"error: cannot write the report to {target}: "), \
            written.stderr
        assert written.stderr.endswith(" — pass -o a file path you may write, or -o - for stdout\n")


def test_a_rollback_later_leaves_the_apply_as_it_was(project: Path, cli) -> None:
    import time

    (project / "sub").mkdir()
    (project / "sub" / "y.txt").write_text("y: old\n")
    app = App(project / "golive.toml")
    app.runner().run("t", [WriteFile(path=str(project / "sub" / "y.txt"), content="y\n")])
    run_id = app.journal.runs()[0].id
    time.sleep(1.2)
    (project / "sub" / "y.txt").unlink()  # someone replaced the folder with a file: the undo cannot put y.txt back
    (project / "sub").rmdir()
    (project / "sub").write_text("not a directory")
    assert cli("rollback", "--yes").exit_code == 4
    (project / "sub").unlink()
    (project / "sub").mkdir()
    assert cli("rollback", "--yes").exit_code == 0
    assert (project / "sub" / "y.txt").read_text() == "y: old\n"
    rows = [line.split(" | ") for line in cli("report", run_id, "-o", "-").lines if line.startswith("| ") and "+" in line]
    apply = next(r for r in rows if r[2] in ("apply", "failed"))
    assert apply[2] == "apply"  # the step succeeded; its first undo failed, and the second undid it
    assert float(apply[4].split("s")[0]) < 1.0, apply  # how long the apply took, not until the rollback began
    took = cli("history", run_id).lines[2].split()
    assert took[-3] == "undone" and float(took[-2].rstrip("s")) < 1.0, took
    step = cli("history", run_id, "--json")
    import json

    assert json.loads(step.stdout)["steps"][0]["error"] is None


def test_a_rollback_runs_report_names_the_run_it_rolled_back_and_lists_its_undos(project: Path, cli) -> None:
    """A rollback run's report had an empty "Steps" section and did not say which run it rolled back."""
    seed(project)
    crashrun(project, "3:after:kill")
    assert cli("rollback", "--yes").exit_code == 0
    journal = App(project / "golive.toml").journal
    rollback, run = journal.runs()[:2]
    lines = cli("report", rollback.id, "-o", "-").lines
    assert lines[:8] == [f"# golive run {rollback.id}", "", "- command: `rollback`", "- status: **succeeded**",
                         f"- by: {rollback.user}@{rollback.host} (pid {rollback.pid})", f"- started: {rollback.started_at}",
                         f"- finished: {rollback.finished_at}", f"- rolled back: run {run.id} (crashrun)"]
    at = lines.index("## Steps undone")
    undos = [(line, lines[i + 1].split(", ")[1].split()[0]) for i, line in enumerate(lines[at:], start=at)
             if line.startswith("### ")]
    assert [line for line, _ in undos] == [f"### [3] remove {project}/c.txt (run {run.id}) — undone",
                                           f"### [2] write {project}/b.txt (run {run.id}) — undone",
                                           f"### [1] write {project}/a.txt (run {run.id}) — undone"]
    assert all(took == "took" for _, took in undos), undos
    assert "## Steps" not in lines
    svg = cli("report", rollback.id, "--format", "svg", "-o", "-").stdout
    assert svg.count('fill="#1565c0"><title>undo ') == 3


def test_a_rollback_runs_report_says_which_undo_failed_and_why(project: Path, cli) -> None:
    (project / "sub").mkdir()
    (project / "sub" / "y.txt").write_text("y: old\n")
    app = App(project / "golive.toml")
    app.runner().run("t", [WriteFile(path=str(project / "sub" / "y.txt"), content="y\n")])
    run_id = app.journal.runs()[0].id
    (project / "sub" / "y.txt").unlink()  # the folder replaced by a file: the undo cannot put y.txt back
    (project / "sub").rmdir()
    (project / "sub").write_text("not a directory")
    assert cli("rollback", "--yes").exit_code == 4
    rollback = App(project / "golive.toml").journal.runs()[0]
    lines = cli("report", rollback.id, "-o", "-").lines
    assert f"- rolled back: run {run_id} (t)" in lines
    at = lines.index(f"### [1] write {project}/sub/y.txt (run {run_id}) — undo failed")
    assert lines[at + 1].startswith("- started: ") and ", took " in lines[at + 1]
    assert lines[at + 2].startswith("- error: ") and "Not a directory" in lines[at + 2], lines[at + 2]
