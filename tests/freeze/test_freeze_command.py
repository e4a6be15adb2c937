"""Method "command" when the status command disagrees, fails, hangs or is slow: the undo runs off whatever status
says, an unreadable status is an error (never "writable"), and a hang is named, bounded and leaves nothing running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def write_config(project: Path, on: str, off: str, status: str, extra: str = "") -> None:
    config = project / "golive.toml"
    config.write_text(f'[project]\nname = "freeze-test"\n\n[source]\nurl = "sqlite:///old.db"\n\n[source.freeze]\n'
                      f'method = "command"\non = {on}\noff = {off}\nstatus = {status}\n{extra}')
    config.chmod(0o600)


def script(project: Path, name: str, body: str) -> str:
    path = project / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return json.dumps([str(path)])


def test_a_status_that_disagrees_with_on_is_undone_by_running_off(project: Path, cli) -> None:
    """on.sh puts the app into maintenance but status.sh checks another file: the freeze fails, and its undo runs
    off (it asked status, saw "not frozen" and did nothing: the app stayed in maintenance, nothing to roll back)."""
    maint = project / "maint"
    on = script(project, "on.sh", f"touch {maint}")
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", f"test -e {project / 'wrong-file'}")
    write_config(project, on, off, status, "confirm_timeout = 1\n")
    failed = cli("freeze", "on", "--yes")
    assert failed.exit_code == 1
    assert (f"    ! waiting up to 1s ([source.freeze].confirm_timeout) for `{project}/status.sh` to say frozen after"
            f" `{project}/on.sh`") in failed.lines
    assert failed.stderr.startswith(
        f"error: step freeze writes failed: check after apply: the old application is not frozen 1s after"
        f" `{project}/on.sh` succeeded: `{project}/status.sh` still exits 1 (not frozen) — make status check what on"
        " changes, or raise [source.freeze].confirm_timeout if the app takes longer — rolled back 1 step(s); the"
        " system is as it was before run ")
    assert not maint.exists()  # off ran: the app is out of maintenance, as before the run


def test_an_app_that_takes_a_moment_to_freeze_is_asked_again(project: Path, cli) -> None:
    maint = project / "maint"
    on = script(project, "on.sh", f"(sleep 1; touch {maint}) >/dev/null 2>&1 &")  # (a reload: effective ~1 s later)
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", f"test -e {maint}")
    write_config(project, on, off, status)
    frozen = cli("freeze", "on", "--yes")
    assert frozen.exit_code == 0, frozen.stderr
    assert frozen.lines[-1] == "the old application is frozen (read-only)"
    assert (f"    ! waiting up to 10s ([source.freeze].confirm_timeout) for `{project}/status.sh` to say frozen after"
            f" `{project}/on.sh`") in frozen.lines
    assert maint.exists()


def test_a_status_that_cannot_answer_is_unknown_not_writable(project: Path, cli) -> None:
    maint = project / "maint"
    maint.touch()  # the app is in maintenance; its status command cannot tell
    on = script(project, "on.sh", f"touch {maint}; touch {project / 'on-ran'}")
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", 'echo "starting" ; echo "cannot connect" >&2; exit 2')
    write_config(project, on, off, status)
    unknown = (f"freeze status command `{project}/status.sh` exited 2: cannot connect")
    how = "it must exit 0 (frozen) or 1 (not frozen); fix it, or what it checks"
    asked = cli("freeze", "status", "--json")
    assert asked.exit_code == 1
    assert json.loads(asked.stdout) == {"ok": False, "exit_code": 1, "error": {
        "type": "StatusUnknown", "message": unknown, "hint": how}}
    assert cli("freeze", "status").stderr == f"error: {unknown} — {how}\n"
    assert cli("status").lines[-1] == f"freeze:    error={unknown} — {how}"
    off_refused = cli("freeze", "off", "--yes")
    assert (off_refused.exit_code, off_refused.stderr) == (1, (
        f"error: cannot tell whether the old application is frozen: {unknown}; nothing was changed — {how}; or run the"
        f" off command by hand: `{project}/off.sh`\n"))
    on_refused = cli("freeze", "on", "--yes")
    assert (on_refused.exit_code, on_refused.stderr) == (1, (
        f"error: cannot tell whether the old application is frozen: {unknown}; nothing was changed — {how}; a freeze"
        " golive cannot check is not made\n"))
    assert maint.exists() and not (project / "on-ran").exists()
    assert cli("rollback", "--yes").stdout == "nothing to roll back: no run has applied steps\n"

    # a freeze made while status worked is still undone when it stops working: the undo runs off
    maint.unlink()
    script(project, "status.sh", f"test -e {maint}")
    assert cli("freeze", "on", "--yes").exit_code == 0
    script(project, "status.sh", 'echo "cannot connect" >&2; exit 2')
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert not maint.exists()


def test_a_hanging_status_is_named_and_ended_with_all_it_started(project: Path, cli) -> None:
    maint = project / "maint"
    on = script(project, "on.sh", f"touch {maint}")
    off = script(project, "off.sh", f"rm -f {maint}")
    once = project / "slow-once"
    status = script(project, "status.sh", f"if [ ! -e {once} ]; then touch {once}; sleep 3; fi; test -e {maint}")
    write_config(project, on, off, status)
    slow = cli("freeze", "on", "--yes")
    assert slow.exit_code == 0, slow.stderr
    assert slow.lines[0] == (f"    ! waiting for the freeze status command `{project}/status.sh` to finish (up to 30s)")

    pid_file = project / "sleeper"
    status = script(project, "status.sh", f"sleep 300 & echo $! > {pid_file}; wait")
    write_config(project, on, off, status, "status_timeout = 1\n")
    started = time.monotonic()
    shown = cli("status")
    assert time.monotonic() - started < 8
    assert shown.lines[-1] == (f"freeze:    error=freeze status command `{project}/status.sh` did not finish within 1s"
                               " (it was ended, with every process it started) — fix the command, or raise"
                               " [source.freeze].status_timeout")
    assert _gone(int(pid_file.read_text()))  # (not left running once `golive status` stopped waiting)


def _gone(pid: int, tries: int = 50) -> bool:
    for _ in range(tries):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # ended, its parent (init, here) yet to collect it
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("method", ["file", "command"])
def test_an_undo_that_fails_names_the_flag_file_or_the_off_command_to_use_by_hand(project: Path, cli,
                                                                                  method: str) -> None:
    flag = project / "MAINTENANCE"
    blocker = project / "blocker"
    if method == "file":
        (project / "golive.toml").write_text(f'[project]\nname = "freeze-test"\n\n[source]\nurl = "sqlite:///old.db"\n'
                                             f'\n[source.freeze]\nmethod = "file"\nflag_file = "{flag}"\n')
        hand = f"make the old application writable again: remove its flag file: `rm -f {flag}`"
    else:
        write_config(project, json.dumps(["touch", str(flag)]),
                     json.dumps(["sh", "-c", f"test ! -e {blocker} && rm -f {flag}"]), json.dumps(["test", "-e", str(flag)]))
        hand = (f"make the old application writable again: run the off command `sh -c 'test ! -e {blocker} && rm -f"
                f" {flag}'`")
    assert cli("freeze", "on", "--yes").exit_code == 0
    if method == "file":  # (the flag cannot be removed: a folder in its place)
        flag.unlink()
        (flag / "kept").mkdir(parents=True)
    else:
        blocker.touch()
    failed = cli("rollback", "--yes")
    assert failed.exit_code == 4
    assert f"  by hand: {hand}" in failed.stderr.splitlines()


def test_the_rollback_plan_says_off_runs_even_when_status_says_writable_already(project: Path, cli) -> None:
    maint, ran = project / "maint", project / "off-ran"
    on = script(project, "on.sh", f"touch {maint}")
    off = script(project, "off.sh", f"rm -f {maint}; touch {ran}")
    status = script(project, "status.sh", f"test -e {maint}")
    write_config(project, on, off, status)
    assert cli("freeze", "on", "--yes").exit_code == 0
    maint.unlink()  # (unfrozen by hand; or a status that no longer sees the freeze)
    assert cli("rollback", "--dry-run").lines[2:] == [
        f"      old application (command) (status says writable already; `{project}/off.sh` runs all the same):"
        " unchanged (writable)"]
    assert cli("rollback", "--yes").exit_code == 0
    assert ran.exists()


def test_an_on_command_a_killed_golive_left_running_is_ended_before_the_rollback_runs_off(project: Path, cli) -> None:
    """golive SIGKILLed while the on command ran (a slow reload of the old app): the command's process group lived
    on, the rollback's off ran, and then on finished — the old application frozen again after the rollback said it
    was writable."""
    maint, begun = project / "maint", project / "on-begun"
    on = script(project, "on.sh", f"touch {begun}; sleep 4; touch {maint}")
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", f"test -e {maint}")
    write_config(project, on, off, status)
    _kill_golive_once_begun(project, begun)
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    [ended] = [line for line in rolled.lines if line.startswith("    ! ending the freeze")]
    assert re.fullmatch(r"    ! ending the freeze on command a stopped golive left running \(process group \d+\), so it"
                        r" cannot finish after this one", ended), ended
    assert rolled.lines.index(ended) < rolled.lines.index(next(line for line in rolled.lines if "undone [1]" in line))
    assert " (first ending the on command a stopped golive left running, process group " in rolled.lines[2]
    time.sleep(5)  # (past the on command's sleep: had it lived on, it would have touched maint by now)
    assert not maint.exists()
    assert not (project / ".golive" / "freeze-command.json").exists()


def test_commands_that_print_other_than_utf8_are_judged_by_their_exit_code(project: Path, cli) -> None:
    """A Latin-1 "Wartungsmodus für Flask aktiviert" from on failed the freeze ('utf-8' codec can't decode) and
    undid it though the command had succeeded; from off it failed every rollback (exit 4); from status it made
    `golive freeze status` an internal error. What a command prints goes into messages only: decoded with
    replacement, and the exit code decides."""
    maint = project / "maint"
    on = script(project, "on.sh", f"touch {maint}; printf 'Wartungsmodus f\\374r Flask aktiviert\\n'")
    off = script(project, "off.sh", f"rm -f {maint}; printf 'Wartungsmodus f\\374r Flask beendet\\n' >&2")
    status = script(project, "status.sh", f"printf '\\377\\n'; test -e {maint}")
    write_config(project, on, off, status)
    assert cli("freeze", "status").stdout == "freeze: off (command)\n"
    frozen = cli("freeze", "on", "--yes")
    assert (frozen.exit_code, frozen.lines[-1]) == (0, "the old application is frozen (read-only)"), frozen.stderr
    assert maint.exists()
    assert cli("freeze", "status").stdout == "freeze: on (command)\n"
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert not maint.exists()

    script(project, "status.sh", "printf 'Datenbank nicht erreichbar: \\374\\n' >&2; exit 2")
    unknown = cli("freeze", "status")
    assert (unknown.exit_code, unknown.stderr) == (1, (
        f"error: freeze status command `{project}/status.sh` exited 2: Datenbank nicht erreichbar: \ufffd — it must"
        " exit 0 (frozen) or 1 (not frozen); fix it, or what it checks\n"))
    script(project, "status.sh", f"test -e {maint}")
    script(project, "on.sh", "printf 'Fehler: \\374ber\\n' >&2; exit 3")
    failed = cli("freeze", "on", "--yes")
    assert failed.exit_code == 1
    assert failed.stderr.startswith(f"error: step freeze writes failed: freeze command `{project}/on.sh` exited 3:"
                                    " Fehler: \ufffdber — fix the command or the app")


def test_an_on_command_that_exits_leaving_a_helper_running_is_done_and_its_helper_lives_on(project: Path,
                                                                                           cli) -> None:
    """`sh -c "…; sleep 30 & echo started helper; exit 0"`: golive waited for the end of the command's output, which
    the helper held, not for the command: "did not finish within 4s", the helper killed, the freeze undone (two
    minutes lost with the default timeout). The command is done when it exits, with what it printed by then; the
    helper is its own business: not ended, and not left in freeze-command.json for the next command (the
    rollback's off) to end as what a killed golive left running. A command that itself hangs is still ended with
    its whole group at its timeout."""
    maint, helper = project / "maint", project / "helper-pid"
    on = script(project, "on.sh", f"touch {maint}; sleep 30 & echo $! > {helper}; echo started helper; exit 0")
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", f"test -e {maint}")
    write_config(project, on, off, status, "timeout = 4\n")
    started = time.monotonic()
    frozen = cli("freeze", "on", "--yes")
    assert (frozen.exit_code, frozen.stderr) == (0, "")
    assert time.monotonic() - started < 3
    assert not any("waiting for the freeze" in line for line in frozen.lines)
    pid = int(helper.read_text())
    try:
        assert not (project / ".golive" / "freeze-command.json").exists()
        rolled = cli("rollback", "--yes")
        assert rolled.exit_code == 0, rolled.stderr
        assert not any("ending the freeze" in line for line in rolled.lines)
        assert not maint.exists() and not _gone(pid, tries=1)  # (the helper left running by on: still running)

        script(project, "on.sh", f"sleep 30 & echo $! > {helper}; echo app busy >&2; exit 3")
        failed = cli("freeze", "on", "--yes")  # (what it printed before it exited is its message)
        assert failed.stderr.startswith(f"error: step freeze writes failed: freeze command `{project}/on.sh` exited 3:"
                                        " app busy — fix the command or the app")
        os.kill(int(helper.read_text()), signal.SIGKILL)

        script(project, "on.sh", f"sleep 30 & echo $! > {helper}; wait")  # (the command itself hangs: ended)
        write_config(project, on, off, status, "timeout = 1\n")
        hung = cli("freeze", "on", "--yes")
        assert hung.stderr.startswith(f"error: step freeze writes failed: freeze on command `{project}/on.sh` did not"
                                      " finish within 1s (it was ended, with every process it started)")
        assert _gone(int(helper.read_text()))
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_command_past_its_timeout_is_ended_with_a_member_that_ignores_sigterm(project: Path, cli) -> None:
    """SIGTERM went to the group and golive returned once the leader exited: a member that ignores SIGTERM lived
    on ("it was ended, with every process it started", rolled back) and froze the app seconds later. After SIGTERM
    the group is SIGKILLed until no member is left."""
    maint, pid_file = project / "maint", project / "member-pid"
    on = script(project, "on.sh", f"sh -c 'trap \"\" TERM; echo $$ > {pid_file}; sleep 30; touch {maint}' & wait")
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", f"test -e {maint}")
    write_config(project, on, off, status, "timeout = 1\n")
    failed = cli("freeze", "on", "--yes")
    assert failed.stderr.startswith(f"error: step freeze writes failed: freeze on command `{project}/on.sh` did not"
                                    " finish within 1s (it was ended, with every process it started)")
    pid = int(pid_file.read_text())
    try:
        assert _gone(pid, tries=1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _kill_golive_once_begun(project: Path, begun: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "golive", "freeze", "on", "--yes"], cwd=project,
                            env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not begun.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert begun.exists() and (project / ".golive" / "freeze-command.json").exists()
    proc.kill()
    assert proc.wait() == -signal.SIGKILL


def test_a_command_that_finished_after_golive_was_killed_keeps_its_helper_and_a_running_one_is_in_the_plan(
        project: Path, cli) -> None:
    """golive SIGKILLed while on ran; on then finished by itself, leaving a helper (`sleep 99 &`); freeze off ended
    the group as "left running", killing the helper. A leftover counts only while the command itself (the group's
    leader) runs; one that does is named in freeze on's and off's own plan, as in the rollback's."""
    maint, begun, helper = project / "maint", project / "on-begun", project / "helper-pid"
    on = script(project, "on.sh", f"touch {begun}; sleep 1; sleep 99 & echo $! > {helper}; touch {maint}")
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", f"test -e {maint}")
    write_config(project, on, off, status)
    _kill_golive_once_begun(project, begun)
    deadline = time.monotonic() + 10
    while not maint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # (on has exited)
    pid = int(helper.read_text())
    try:
        unfrozen = cli("freeze", "off", "--yes")
        assert unfrozen.exit_code == 0, unfrozen.stderr
        assert not any("ending the freeze" in line or "first ending" in line for line in unfrozen.lines)
        assert not maint.exists() and not _gone(pid, tries=1)  # (on's helper: its own, not ended)
    finally:
        os.kill(pid, signal.SIGKILL)

    begun.unlink()
    script(project, "on.sh", f"touch {begun}; sleep 30; touch {maint}")
    _kill_golive_once_begun(project, begun)
    pgid = json.loads((project / ".golive" / "freeze-command.json").read_text())["pgid"]
    try:
        planned = cli("freeze", "on", "--dry-run")
        assert planned.exit_code == 0, planned.stderr
        assert (f"      old application (command) (first ending the on command a stopped golive left running, process"
                f" group {pgid}): writable -> frozen") in planned.lines, planned.lines
    finally:
        os.killpg(pgid, signal.SIGKILL)


def test_a_commands_output_is_kept_by_its_end_without_control_characters(project: Path) -> None:
    """A 30 MB output was read whole (~290 MB for golive), the failure showed its first 200 characters, the command
    joined by spaces, and a colour or terminal title reached the terminal raw. golive keeps the last 64 KiB, shows
    the command as a shell takes it and the last line, and prints no control characters."""
    maint = project / "maint"
    on = script(project, "on.sh", "head -c 30000000 /dev/zero | tr '\\0' x; echo\n"
                                  "printf 'first line\\n\\033]0;TITLE\\007\\033[31mapp busy\\033[0m\\r\\n' >&2; exit 3")
    off = script(project, "off.sh", f"rm -f {maint}")
    status = script(project, "status.sh", f"test -e {maint}")
    write_config(project, on, off, status)
    measure = ("import resource, subprocess, sys\n"
               "done = subprocess.run([sys.executable, '-m', 'golive', 'freeze', 'on', '--yes'], capture_output=True,"
               " text=True)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(done.returncode)\n"
               "sys.stdout.write(done.stderr)")
    done = subprocess.run([sys.executable, "-c", measure], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"}, timeout=60)
    rss_kib, code, *stderr = done.stdout.splitlines()
    assert code == "1", done
    assert stderr[0].startswith(f"error: step freeze writes failed: freeze command `{project}/on.sh` exited 3: app busy"
                                " — fix the command or the app")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", "\n".join(stderr))
    assert int(rss_kib) < 75 * 1024  # (golive itself is some 40 MB; the output read whole made it 100 and more)
