"""The crash test: a 5-step run of file steps is SIGKILLed inside step k, for every k and every
point inside the step; `golive rollback --yes` then restores exactly the initial files, and a
second rollback is a no-op."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CRASHRUN = Path(__file__).parents[1] / "crashrun.py"


def seed(root: Path) -> None:
    (root / "a.txt").write_text("a: old\n")
    (root / "c.txt").write_text("c: to be removed\n")
    (root / "c.txt").chmod(0o640)
    (root / "e.txt").write_text("e: old\n")
    (root / "e.txt").chmod(0o600)


def files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mode & 0o7777)
            for p in sorted(root.glob("*.txt"))}


def _env(root: Path, fault: str) -> dict[str, str]:
    return {**os.environ, "GOLIVE_FAULT": fault, "GOLIVE_FAULT_MARKER": str(root / "paused"), "NO_COLOR": "1"}


def crashrun(root: Path, fault: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CRASHRUN), str(root), *extra], env=_env(root, fault), text=True,
                          capture_output=True, timeout=60)


def start_paused(root: Path, fault: str) -> subprocess.Popen[str]:
    """Start a run that pauses at ``fault`` and return once it is paused there."""
    proc = subprocess.Popen([sys.executable, str(CRASHRUN), str(root)], env=_env(root, fault), text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (root / "paused").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    return proc


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("point", ["before", "mid", "after"])
def test_sigkill_inside_step_k_then_rollback_restores_initial_files(project: Path, golive_proc, k: int, point: str) -> None:
    seed(project)
    initial = files(project)
    proc = crashrun(project, f"{k}:{point}:kill")
    assert proc.returncode == -signal.SIGKILL
    assert files(project) != initial or (k == 1 and point in ("before", "mid"))

    first = golive_proc("rollback", "--yes", cwd=project)
    assert first.returncode == 0, first.stderr
    assert files(project) == initial
    assert f"rolled back {k} step(s) of run" in first.stdout
    assert "is gone" in first.stderr  # the dead holder's lock was detected and taken over

    second = golive_proc("rollback", "--yes", cwd=project)
    assert (second.returncode, second.stdout) == (0, "nothing to roll back: no run has applied steps\n")
    assert files(project) == initial


def test_external_sigkill_while_paused_inside_a_step(project: Path, golive_proc) -> None:
    seed(project)
    initial = files(project)
    proc = start_paused(project, "3:mid:pause")
    proc.kill()
    proc.wait(timeout=10)
    status = golive_proc("status", cwd=project)
    assert "crashed (its process is gone)" in status.stdout
    assert "rollback:  would undo 3 step(s)" in status.stdout
    listed = golive_proc("history", "--json", cwd=project)
    (run,) = json.loads(listed.stdout)["runs"]
    assert (run["status"], run["crashed"]) == ("running", True)  # the journal's word, and what it means
    assert " crashed " in golive_proc("history", cwd=project).stdout.splitlines()[-1]
    shown = golive_proc("history", run["id"], cwd=project).stdout.splitlines()[0]
    assert shown.startswith(f"run {run['id']}: crashrun — crashed (its process is gone: `golive rollback` undoes")
    report = golive_proc("report", run["id"], "-o", "-", cwd=project).stdout  # (it said "status: **running**")
    assert "- status: **crashed (its process is gone: `golive rollback` undoes what it applied)**" in report, report
    import sqlite3  # a rollback killed in the middle of step 3's undo: it still counts as a step to undo

    with sqlite3.connect(project / ".golive" / "journal.db") as journal:
        journal.execute("UPDATE steps SET status = 'undoing' WHERE seq = 3")
    assert "rollback:  would undo 3 step(s)" in golive_proc("status", cwd=project).stdout
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    assert files(project) == initial


def test_a_failing_step_undoes_the_applied_ones(project: Path) -> None:
    seed(project)
    initial = files(project)
    proc = crashrun(project, "4:mid:raise")
    assert proc.returncode == 1
    assert files(project) == initial
    lines = [re.sub(r"  \d+\.\d\ds$", "", line) for line in proc.stdout.splitlines()]
    run_id = lines[11].split()[1].rstrip(":")
    assert lines[11:] == [
        f"run {run_id}: crashrun (5 step(s))",
        f"✓ [1/5] write {project}/a.txt",
        f"✓ [2/5] write {project}/b.txt",
        f"✓ [3/5] remove {project}/c.txt",
        f"✗ [4/5] write {project}/d.txt: injected fault at step 4 (files.write) point mid",
        f"↶ undone [4] write {project}/d.txt",
        f"↶ undone [3] remove {project}/c.txt",
        f"↶ undone [2] write {project}/b.txt",
        f"↶ undone [1] write {project}/a.txt",
        f"run {run_id}: rolled_back",
    ]
    assert proc.stderr.splitlines()[-1].startswith(f"error: step write {project}/d.txt failed: injected fault")
    assert "rolled back 4 step(s)" in proc.stderr


def test_no_rollback_leaves_steps_for_golive_rollback(project: Path, golive_proc) -> None:
    seed(project)
    initial = files(project)
    proc = crashrun(project, "2:after:raise", "--no-rollback")
    assert proc.returncode == 1
    assert "nothing was undone (--no-rollback)" in proc.stderr
    assert files(project) != initial
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    assert files(project) == initial


def test_failed_undo_exits_4_and_names_the_manual_action(project: Path, golive_proc) -> None:
    (project / "sub").mkdir()
    (project / "sub" / "y.txt").write_text("y: old\n")
    from golive.cli.application import App
    from golive.steps.files import WriteFile

    app = App(project / "golive.toml")
    app.runner().run("t", [WriteFile(path=str(project / "x.txt"), content="x\n"),
                           WriteFile(path=str(project / "sub" / "y.txt"), content="y\n")])
    # Someone replaced the directory with a file: the undo of step 2 cannot put sub/y.txt back.
    (project / "sub" / "y.txt").unlink()
    (project / "sub").rmdir()
    (project / "sub").write_text("not a directory")
    result = golive_proc("rollback", "--yes", cwd=project)
    assert result.returncode == 4
    err = result.stderr.splitlines()
    assert err[0].startswith(f"error: undo of step 2 (write {project}/sub/y.txt) of run ")
    assert err[1:] == [f"  by hand: restore {project}/sub/y.txt (mode 644) from the base64 content in this step's"
                       " undo record (`golive history --json` shows it)",
                       "  by hand: then run `golive rollback --yes` again to undo the 1 older step(s)"]
    assert (project / "x.txt").exists()  # it stopped at the failure: older steps wait for the operator
    # kept with the run: printed once on a terminal that may have gone (history and the report showed none)
    runs = json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]
    target = next(r for r in runs if r["command"] == "t")
    shown = golive_proc("history", target["id"], cwd=project).stdout.splitlines()
    rollback = next(r for r in runs if r["command"] == "rollback")["id"]
    assert [line for line in shown if line.startswith("  by hand:")] == [
        f"  by hand: rollback {rollback}: {line.removeprefix('  by hand: ')}" for line in err[1:]]
    report = project / "r.md"
    assert golive_proc("report", rollback, "-o", str(report), cwd=project).returncode == 0
    assert all(line.removeprefix("  by hand: ") in report.read_text() for line in err[1:])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])  # (SIGHUP lets the step finish: test_hangup.py)
def test_interrupt_inside_a_step_exits_130_with_a_consistent_journal(project: Path, golive_proc, sig: int) -> None:
    seed(project)
    initial = files(project)
    proc = start_paused(project, "2:mid:pause")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.splitlines()[-1].startswith("error: interrupted during step 2 (write ")
    assert err.rstrip().endswith("the journal is consistent — undo what was applied with `golive rollback`"
                                 " (`golive status` shows the run), then run the command again")
    history = golive_proc("history", "--json", cwd=project)
    assert json.loads(history.stdout)["runs"][0]["status"] == "interrupted"
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    assert files(project) == initial


def test_an_interrupted_automatic_undo_leaves_the_run_interrupted_and_rollback_finishes_it(project: Path,
                                                                                           golive_proc) -> None:
    seed(project)
    initial = files(project)
    proc = subprocess.Popen([sys.executable, str(CRASHRUN), str(project)], env=_env(project, "4:mid:raise,2:undo:pause"),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (project / "paused").exists():  # step 4 failed; its undo, then 3's, ran; paused before 2's
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "failed (injected fault at step 4 (files.write) point mid) and undoing the run was interrupted; the" \
           " journal is consistent — `golive rollback` finishes the undo" in err
    (run,) = json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]
    assert (run["status"], run["crashed"]) == ("interrupted", False)  # not "running" for ever
    assert "rollback:  would undo 2 step(s)" in golive_proc("status", cwd=project).stdout
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    assert files(project) == initial


def test_a_killed_run_rolled_back_later_keeps_its_own_time_and_says_it_was_killed(project: Path, golive_proc) -> None:
    """Rolled back later, a run killed mid-step read "took 12.49s, rolled_back" (the rollback's time, nothing saying
    its process died), and its report said the killed step's apply took 0.000s."""
    from datetime import datetime

    seed(project)
    proc = start_paused(project, "3:mid:pause")
    proc.kill()
    proc.wait(timeout=10)
    killed_at = datetime.now().astimezone()
    time.sleep(1.5)  # (the rollback comes later)
    assert golive_proc("rollback", "--yes", cwd=project).returncode == 0
    runs = json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]
    run = next(r for r in runs if r["command"] == "crashrun")
    assert run["status"] == "rolled_back"
    assert run["error"].startswith("killed mid-run: its process ended without finishing")
    assert datetime.fromisoformat(run["finished_at"]) <= killed_at
    shown = golive_proc("history", run["id"], cwd=project).stdout
    assert "  error: killed mid-run: its process ended without finishing" in shown
    rollback = next(r for r in runs if r["command"] == "rollback")  # (its table was empty: "no target, 0/0/0")
    undid = golive_proc("history", rollback["id"], cwd=project).stdout.splitlines()
    assert undid[1] == f"  rolled back run {run['id']}"
    assert [line.split()[:4] for line in undid[2:] if line.split()[:1] in (["3"], ["2"], ["1"])] == [
        ["3", "remove", str(project / "c.txt"), "undone"], ["2", "write", str(project / "b.txt"), "undone"],
        ["1", "write", str(project / "a.txt"), "undone"]], undid
    report = project / "r.md"
    assert golive_proc("report", run["id"], "-o", str(report), cwd=project).returncode == 0
    text = report.read_text()
    timeline = [line for line in text.splitlines() if line.startswith("| 3 |")]
    assert [line.split(" | ")[2] for line in timeline] == ["killed", "undo"], timeline
    assert "- killed mid-apply: these changes were planned; which of them were made before its process ended is not" \
        " known (its undo put back whatever was)" in text


def test_status_while_a_run_holds_the_lock_does_not_offer_a_rollback_of_it(project: Path, golive_proc) -> None:
    """During a rollback (or any run) status said "rollback: would undo 2 step(s) of run X" — of the very run being
    undone, with the lock held."""
    seed(project)
    proc = start_paused(project, "3:mid:hold")
    try:
        status = golive_proc("status", cwd=project).stdout
        assert "lock:      held — " in status, status
        assert "would undo" not in status
        assert "applied step(s); a run holds the lock now (above): ask again once it ends" in status, status
    finally:
        (project / "paused").unlink()
        proc.wait(timeout=30)
    assert "rollback:  would undo 5 step(s)" in golive_proc("status", cwd=project).stdout
