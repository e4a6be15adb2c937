"""The Linode API unreachable, or its answers lost, around a DNS switch and its undo: what golive says and does.

A rollback that cannot read the records stops before it changes or marks anything; an update whose answer was lost
is read back and said as what it is (made, or not yet); an undo that ends with every record as before is done; a
change is journaled once Linode has confirmed it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from golive.sandbox.linode import LinodeEmulator
from tests.dns.conftest import NEW, NEW6, OLD, OLD6, zone
from tests.dns.test_switch import _journal_states, targets


def _config(project: Path, old: str, new: str) -> None:
    config = project / "golive.toml"
    config.write_text(config.read_text().replace(old, new))


def _dead_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_rollback_with_the_linode_api_unreachable_changes_and_marks_nothing(dns_project: Path,
                                                                               emulator: LinodeEmulator, cli) -> None:
    """The API refused every connection: the rollback exited 4 ("nothing was changed by this call" and 3 by-hand
    lines), marked the switch partially rolled back, and each retry added a failed rollback run and 3 more by-hand
    lines; its dry run showed a clean plan, the check for records changed by hand silently skipped. Now the plan finds
    the records cannot be read: the rollback stops before changing or marking anything (exit 1), the dry run shows
    the plan from the journal marked as not read, and is refused the same; once the API answers, it rolls back."""
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    switched, journaled = zone(emulator), _journal_states(dns_project)
    dead = f"http://127.0.0.1:{_dead_port()}/v4"
    _config(dns_project, emulator.url, dead)
    error = (f"error: the DNS records of `dns switch to new` could not be read: cannot reach the Linode API at {dead}"
             " (list records of domain 1): connection refused — nothing was changed; check [linode].api_url and the"
             " network, and run `golive rollback{}` again when the Linode API answers\n")
    planned = cli("rollback", "--dry-run")
    assert (planned.exit_code, planned.stderr) == (1, error.format("")), planned
    mark = "(could not be read: as the run left it, not checked for changes by hand)"
    assert f"      dns www.example.org A #3 {mark}: {NEW} -> {OLD}" in planned.lines, planned.stdout
    for _ in range(2):
        refused = cli("rollback", "--yes")
        assert (refused.exit_code, refused.stderr) == (1, error.format(" --yes")), refused
    assert _journal_states(dns_project) == journaled  # (no rollback run, nothing marked undo_failed)
    assert zone(emulator) == switched
    history = cli("history", json.loads(cli("history", "--json").stdout)["runs"][0]["id"])
    assert "by hand" not in history.stdout
    _config(dns_project, dead, emulator.url)
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_an_undo_that_cannot_read_a_record_before_changing_any_marks_nothing(dns_project: Path,
                                                                            emulator: LinodeEmulator, cli) -> None:
    """The switch fails at www A (500, not carried out) and puts the apex back; undoing the failed run, the read of
    www AAAA fails (500) before any write. That was exit 4, the step undo_failed, by-hand lines for records never
    changed. Nothing was changed by the undo: the run is failed, the step left for `golive rollback`."""
    original = zone(emulator)
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 500},
                                                      {"method": "GET", "path": "/records/4$", "status": 500}]))
    failed = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert failed.exit_code == 1, failed.stderr
    [line] = failed.stderr.splitlines()
    assert line.startswith("error: step dns switch to new failed (dns www.example.org A #3: the Linode API failed"
                           " (update record 3: 500 "), line
    assert ") and the undo of step 1 (dns switch to new) of run " in line
    assert " stopped before changing anything: the Linode API failed (read record 4: 500 " in line, line
    assert line.endswith("; then `golive rollback` undoes the run"), line
    states = _journal_states(dns_project)
    assert [s for s in states if s[2] in ("undo_failed", "partially_rolled_back")] == [], states
    assert ("run", "dns switch", "failed") in states
    emulator.edit(lambda s: s["faults"].update(rules=[]))
    assert zone(emulator) == original
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert zone(emulator) == original


def test_an_update_whose_answer_is_lost_is_read_back_and_said_as_made(dns_project: Path, emulator: LinodeEmulator,
                                                                      cli) -> None:
    """Linode carries out every PUT but the first and answers after golive stopped waiting: the switch failed with
    "update record 3: no answer within 3s … nothing was changed by this call" though the change was made, and its undo
    exited 4 with the by-hand line "none: every record … reads back as before". The record is read back: made, so the
    switch goes on, saying so."""
    _config(dns_project, "retry_interval = 0.05", "retry_interval = 0.05\ntimeout = 1")
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "delay_ms": 1500, "skip": 1}]))
    switched = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert switched.exit_code == 0, switched.stderr
    for record, value in ((3, NEW), (4, NEW6)):
        assert (f"    ! the Linode API at {emulator.url} gave no answer to update record {record}: no answer within 1s"
                f" ([linode].timeout); read back, it holds {value}: the change was made") in switched.lines, \
            switched.stdout
    assert "nothing was changed" not in switched.stdout + switched.stderr
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}


def test_an_update_answered_too_late_and_not_made_says_what_the_read_back_found(dns_project: Path,
                                                                              emulator: LinodeEmulator, cli) -> None:
    """www A's PUT is answered 500 after golive stopped waiting, and not carried out: the error says the change may
    have been made and what the record held when read back, not "nothing was changed by this call"; the apex is put
    back, and the run rolled back (exit 1)."""
    original = zone(emulator)
    _config(dns_project, "retry_interval = 0.05", "retry_interval = 0.05\ntimeout = 1")
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 500,
                                                      "delay_ms": 1500}]))
    failed = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert failed.exit_code == 1, failed.stderr
    [line] = failed.stderr.splitlines()
    assert line.startswith(f"error: step dns switch to new failed: dns www.example.org A #3: the Linode API at"
                           f" {emulator.url} gave no answer to update record 3: no answer within 1s ([linode].timeout);"
                           f" the change may have been made: read back right after, it holds {OLD} still (Linode may"
                           " yet carry it out); the 1 record(s) changed before it were put back — check"), line
    assert "nothing was changed" not in line
    assert zone(emulator) == original
    assert ("run", "dns switch", "rolled_back") in _journal_states(dns_project)


def test_an_undo_whose_failure_leaves_every_record_as_before_is_done(dns_project: Path, emulator: LinodeEmulator,
                                                                     cli) -> None:
    """www A's PUT is carried out and then answered 500, every time: the switch puts the apex back, and its undo's
    PUT of www A fails though it put the record back. That was exit 4 with the by-hand line "none: every record …
    reads back as before it": the read-back proves the zone is as before, so the undo is done and the run rolled back
    (exit 1), saying so."""
    original = zone(emulator)
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 500,
                                                      "processed": True}]))
    failed = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert failed.exit_code == 1, failed.stderr
    assert "by hand" not in failed.stderr
    assert failed.stderr.endswith(" — rolled back 1 step(s); the system is as it was before run"
                                  f" {json.loads(cli('history', '--json').stdout)['runs'][0]['id']}\n"), failed.stderr
    assert any(line.startswith("    ! the Linode API failed (update record 3: 500 ") and line.endswith(
        "; every record of `dns switch to new` reads back as before it all the same: undone") for line in failed.lines), \
        failed.stdout
    assert zone(emulator) == original
    assert ("run", "dns switch", "rolled_back") in _journal_states(dns_project)


def test_a_change_is_journaled_once_linode_confirmed_it(dns_project: Path, emulator: LinodeEmulator) -> None:
    """www A's PUT meets a rate limit of 30 s, and the switch is stopped (SIGTERM) while golive waits it out: the log
    line of the change to www A was journaled before the PUT, so `history` and the report showed a change never made.
    Only the apex, changed, is logged."""
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 429,
                                                      "retry_after": 30}]))
    proc = subprocess.Popen([sys.executable, "-m", "golive", "dns", "switch", "--yes", "--no-ttl-wait"],
                            cwd=dns_project, env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    journal = dns_project / ".golive" / "journal.db"

    def events() -> list[tuple[Any, ...]]:
        if not journal.exists():
            return []
        with sqlite3.connect(journal) as db:
            try:
                return list(db.execute("SELECT phase, message FROM events WHERE kind = 'log' ORDER BY id"))
            except sqlite3.OperationalError:  # (the journal being made: its tables not there yet)
                return []

    deadline = time.monotonic() + 30
    while not any("(update record 3)" in str(message) for _, message in events()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert [m for phase, m in events() if phase == "apply"] == [f"dns example.org A #1: {OLD} -> {NEW}"]
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): OLD, ("www", "AAAA"): OLD6}
