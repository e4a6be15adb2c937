"""`golive rollback --through` as one rollback: the terminal or the reader of its output going away once it has
started undoing does not leave the older runs applied; its `--json` result has the keys every run's result has;
and the command its hints name is the one given (its `--yes`, `--json`, `--restore-data`, `--force`, `-c`)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from golive.cli.application import App
from golive.sandbox.linode import LinodeEmulator
from golive.steps.files import WriteFile
from tests.dns.conftest import TOKEN, dns_project, emulator, nameservers

__all__ = ["dns_project", "emulator", "nameservers"]  # (the fixtures, used by name)


def three_runs(project: Path) -> list[str]:
    """A night of three runs, oldest first: `a` and `b` one step each, `c` two (so `2:undo` is only c's)."""
    app = App(project / "golive.toml")
    runs = []
    for name, n in (("a", 1), ("b", 1), ("c", 2)):
        steps = [WriteFile(path=str(project / f"{name}{i}.txt"), content=f"{name}\n") for i in range(1, n + 1)]
        run_id = app.runner().run(name, steps).run_id
        assert run_id is not None
        runs.append(run_id)
    return runs


def written(project: Path) -> list[str]:
    return sorted(p.name for p in project.glob("*.txt"))


def held_env(project: Path) -> dict[str, str]:
    """The first undo (step 2 of run c, the newest) holds until the test removes the marker."""
    return {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "2:undo:hold", "GOLIVE_FAULT_MARKER": str(project / "held")}


def wait_held(project: Path, proc: subprocess.Popen[bytes], master: int | None = None) -> None:
    deadline = time.monotonic() + 30
    while not (project / "held").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the rollback never reached its first undo"
        if master is not None and select.select([master], [], [], 0.05)[0]:
            os.read(master, 4096)  # (the pty is read, so golive never blocks on a full one)
        elif master is None:
            time.sleep(0.02)


def history(golive_proc, project: Path) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = json.loads(golive_proc("history", "--json", cwd=project).stdout)["runs"]
    return runs


def _in_a_terminal() -> None:  # (the pty is the child's controlling terminal: closing it hangs it up, SIGHUP)
    os.setsid()
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# -- 1. the terminal going away mid --through ------------------------------------------------------------------

def test_the_terminal_hanging_up_during_a_through_rollback_lets_every_run_be_undone(project: Path, golive_proc) -> None:
    """The SSH session dropped during the newest run's undo: only that run was undone, exit 130, and the error said
    "rollback stopped before its run started (the terminal hung up (SIGHUP)); nothing was changed"."""
    runs = three_runs(project)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--through", runs[0], "--yes"], cwd=project,
                            env=held_env(project), stdin=slave, stdout=slave, stderr=slave, preexec_fn=_in_a_terminal)
    os.close(slave)
    wait_held(project, proc, master)
    os.close(master)  # the SSH session drops mid-rollback (SIGHUP, then EIO on every write)
    time.sleep(0.3)
    (project / "held").unlink()
    assert proc.wait(timeout=60) == 0
    assert written(project) == []
    shown = history(golive_proc, project)
    assert [(r["command"], r["status"]) for r in shown] == [("rollback", "succeeded")] * 3 + [
        ("c", "rolled_back"), ("b", "rolled_back"), ("a", "rolled_back")]


def test_the_reader_of_the_json_dying_during_a_through_rollback_lets_every_run_be_undone(
        project: Path, golive_proc) -> None:
    """`golive rollback --through RUN --yes --json | head -1`: head gone after the first line, the rollback stopped
    after the newest run (exit 130, "nothing was changed")."""
    runs = three_runs(project)
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--through", runs[0], "--yes", "--json"],
                            cwd=project, env=held_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_held(project, proc)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone
    (project / "held").unlink()
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (0, "")
    assert written(project) == []
    assert all(r["status"] in ("succeeded", "rolled_back") for r in history(golive_proc, project))


def test_ctrl_c_still_stops_a_through_rollback_naming_the_command_that_finishes_it(project: Path, golive_proc) -> None:
    """What the operator asks for by hand stops it (SIGTERM as Ctrl-C); the hint is the command given, its --yes
    and --json too, and no message says nothing was changed."""
    runs = three_runs(project)
    proc = subprocess.Popen([sys.executable, "-m", "golive", "rollback", "--through", runs[0], "--yes", "--json"],
                            cwd=project, env=held_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_held(project, proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    (project / "held").unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "nothing was changed" not in err.decode()
    assert err.decode().endswith(f" — run `golive rollback --through {runs[0]} --yes --json` again to finish it\n"), err
    assert json.loads(out.decode().splitlines()[-1])["exit_code"] == 130
    finished = golive_proc("rollback", "--through", runs[0], "--yes", cwd=project)
    assert finished.returncode == 0, finished.stderr
    assert written(project) == []


# -- 2. the --json result: the keys of every run's result --------------------------------------------------------

def test_a_through_rollbacks_result_has_run_status_and_steps(project: Path, cli, golive_proc) -> None:
    runs = three_runs(project)
    done = cli("rollback", "--through", runs[0], "--yes", "--json")
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.lines[-1])
    rollbacks = [r["id"] for r in history(golive_proc, project) if r["command"] == "rollback"]  # newest first
    assert (result["run"], result["status"]) == (rollbacks[0], "succeeded")
    assert [(s["run"], s["seq"], s["title"]) for s in result["steps"]] == [
        (runs[2], 2, f"write {project}/c2.txt"), (runs[2], 1, f"write {project}/c1.txt"),
        (runs[1], 1, f"write {project}/b1.txt"), (runs[0], 1, f"write {project}/a1.txt")]
    assert result["rolled_back"] == result["targets"] == [runs[2], runs[1], runs[0]]  # (the keys it had stay)
    assert [r["run"] for r in result["rollbacks"]] == rollbacks[::-1]  # (in the order they ran)
    assert list(result)[:2] == ["event", "ok"] and list(result)[-1] == "notices"


def test_a_rollback_with_nothing_to_do_has_run_null_and_a_status(project: Path, cli) -> None:
    runs = three_runs(project)
    assert cli("rollback", "--through", runs[0], "--yes").exit_code == 0
    for args in (["--yes"], ["--run", runs[0], "--yes"], ["--through", runs[0], "--yes"]):
        result = json.loads(cli("rollback", *args, "--json").stdout)
        assert (result["run"], result["status"], result["steps"], result["rolled_back"]) == (None, "nothing to do", [], [])


# -- 3. the command the hints name is the one given ----------------------------------------------------------------

def test_an_undo_that_fails_names_the_command_given_with_its_options(project: Path, cli) -> None:
    """Its hint said `then golive rollback --through X again`: without --yes, which, run as written by a script,
    exits 2."""
    runs = three_runs(project)
    (project / "other.toml").write_text((project / "golive.toml").read_text())
    (project / "other.toml").chmod(0o600)
    failed = cli("-c", "other.toml", "rollback", "--through", runs[0], "--yes", "--restore-data",
                 env={"GOLIVE_FAULT": "1:undo:raise"})
    assert failed.exit_code == 4
    assert failed.stderr.splitlines()[0].endswith(
        f" — do the manual steps listed, then `golive -c other.toml rollback --through {runs[0]} --restore-data --yes`"
        " again"), failed.stderr
    plain = cli("rollback", "--run", runs[1], "-y", "--json", env={"GOLIVE_FAULT": "1:undo:raise"})
    assert plain.exit_code == 4
    error = json.loads(plain.lines[-1])["error"]
    assert error["hint"] == f"do the manual steps listed, then `golive rollback --run {runs[1]} --yes --json` again"
    assert "nothing was changed" not in plain.stderr


def test_a_refused_through_rollback_names_the_command_given_plus_force(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    """Its hint said `run golive rollback --through X --force`: without the --yes it was given."""
    switched = cli("dns", "switch", "--yes", "--no-ttl-wait", "--json")
    assert switched.exit_code == 0, switched.stderr
    run_id = json.loads(switched.lines[-1])["run"]
    domain = emulator.store.load()["domains"][0]["id"]
    answer = httpx.put(f"{emulator.url}/domains/{domain}/records/3", json={"target": "192.0.2.50"},
                       headers={"Authorization": f"Bearer {TOKEN}"})  # a colleague, in the Linode DNS manager
    assert answer.status_code == 200, answer.text
    refused = cli("rollback", "--through", run_id, "--yes")
    assert refused.exit_code == 2
    assert f"then run `golive rollback --through {run_id} --yes --force` to put them back" in refused.stderr, \
        refused.stderr
    forced = cli("rollback", "--through", run_id, "--yes", "--force")
    assert forced.exit_code == 0, forced.stderr


def test_rollback_run_of_a_run_with_nothing_applied_names_the_run_that_has(project: Path, cli) -> None:
    """It said "no run has applied steps" while another run still had."""
    _, b, c = three_runs(project)
    assert cli("rollback", "--run", b, "--yes").exit_code == 0
    nothing = cli("rollback", "--run", b, "--yes")
    assert (nothing.exit_code, nothing.stdout) == (
        0, f"nothing to roll back: run {b} has no applied steps (run {c} (c) has: `golive rollback` undoes it)\n")
    assert written(project) == ["a1.txt", "c1.txt", "c2.txt"]
