"""Records someone changes by hand while golive works on them, against the Linode emulator: during a switch
(also while golive waits out a rate limit), after it and before its rollback, and between the rollback's plan
and its undo. golive never overwrites such a change silently: it stops naming the record, or overwrites it
only with --force and then journals what the record held. Also: a rate-limit wait is said, and a failure to
put records back is shown beside the failure that made golive put them back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from golive.sandbox.linode import LinodeEmulator
from tests.dns.conftest import NEW, NEW6, OLD, OLD6, TOKEN, zone

HAND = "192.0.2.77"


def targets(emulator: LinodeEmulator) -> dict[tuple[str, str], str]:
    return {(r["name"], r["type"]): r["target"] for r in zone(emulator) if r["type"] in ("A", "AAAA") and
            (r["name"], r["type"]) != ("", "AAAA")}


def put_by_hand(emulator: LinodeEmulator, record_id: int, target: str) -> None:
    """What a colleague does in the Linode DNS manager: a PUT through the API."""
    domain = emulator.store.load()["domains"][0]["id"]
    answer = httpx.put(f"{emulator.url}/domains/{domain}/records/{record_id}", json={"target": target},
                       headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text


def run_held(project: Path, fault: str, args: list[str], at_hold: Callable[[], None]) -> tuple[int, str, str]:
    """golive as a process, held at ``fault`` (a GOLIVE_FAULT WHERE:POINT): ``at_hold`` runs at the first hold."""
    marker = project / "held"
    env = {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": f"{fault}:hold", "GOLIVE_FAULT_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "golive", *args], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    held, deadline = 0, time.monotonic() + 60
    while proc.poll() is None:
        assert time.monotonic() < deadline
        if marker.exists():
            held += 1
            if held == 1:
                at_hold()
            marker.unlink()
        time.sleep(0.02)
    out, err = proc.communicate(timeout=10)
    assert held >= 1, err
    return proc.returncode, out, err


def test_a_record_changed_during_the_switch_stops_it_naming_the_record(dns_project: Path, emulator: LinodeEmulator,
                                                                       cli) -> None:
    """Held after the first record (#1); www A (#3) is changed by hand: golive read it in its snapshot and would
    have overwritten it, and its undo would have put back the snapshot's value — the hand change gone both ways."""
    code, out, err = run_held(dns_project, "1:mid", ["dns", "switch", "--yes", "--no-ttl-wait"],
                              lambda: put_by_hand(emulator, 3, HAND))
    assert code == 1, out + err
    assert err.startswith(f"error: step dns switch to new failed: dns www.example.org A #3 was changed by someone else"
                          f" during the step: it holds {HAND} now, not {OLD} as planned; it was left so, and the 1"
                          " record(s) changed before it were put back — check it in Linode, then run the command again"
                          " (--force overwrites it)"), err
    assert "succeeded" not in out
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): HAND, ("www", "AAAA"): OLD6}
    assert cli("rollback", "--yes").exit_code == 0
    assert targets(emulator)[("www", "A")] == HAND  # (nothing put the snapshot's value back over it)


def test_a_ttl_changed_during_a_lowering_stops_it_too(dns_project: Path, emulator: LinodeEmulator) -> None:
    def by_hand() -> None:
        domain = emulator.store.load()["domains"][0]["id"]
        assert httpx.put(f"{emulator.url}/domains/{domain}/records/3", json={"ttl_sec": 7200},
                         headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    code, out, err = run_held(dns_project, "1:mid", ["dns", "lower-ttl", "--yes"], by_hand)
    assert code == 1, out + err
    assert err.startswith("error: step dns lower TTL to 300 failed: dns www.example.org A #3 was changed by someone"
                          " else during the step: it holds ttl_sec=7200 now, not ttl_sec=3600 as planned; it was left"
                          " so, and the 1 record(s) changed before it were put back — check it in Linode, then run the"
                          " command again — rolled back"), err  # (lower-ttl has no --force to offer)
    assert {(r["name"], r["type"]): r["ttl_sec"] for r in zone(emulator) if r["type"] in ("A", "AAAA")} == {
        ("", "A"): 3600, ("", "AAAA"): 3600, ("www", "A"): 7200, ("www", "AAAA"): 3600}


def test_with_force_the_switch_overwrites_it_and_its_undo_puts_back_what_it_replaced(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    code, out, err = run_held(dns_project, "1:mid", ["dns", "switch", "--yes", "--no-ttl-wait", "--force"],
                              lambda: put_by_hand(emulator, 3, HAND))
    assert code == 0, out + err
    assert (f"    ! dns www.example.org A #3: changed by someone else during the step, to {HAND}; overwritten with"
            f" {NEW} (--force); its undo puts that back") in out.splitlines(), out
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): HAND, ("www", "AAAA"): OLD6}


def test_a_record_changed_while_golive_waits_out_a_rate_limit_is_not_overwritten(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    """The PUT of www A answers 429 (Retry-After: 1; a minute at Linode): the window a hand change can fall in
    is the whole wait, not milliseconds. The wait is said; the record is read again after it."""
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 429,
                                                      "times": 1, "retry_after": 1}]))

    def change_during_the_wait() -> None:
        deadline = time.monotonic() + 30
        while not any(r[1].endswith("{recordId}") and r[2] == 429 for r in list(emulator.responses)):
            assert time.monotonic() < deadline
            time.sleep(0.01)

        def by_hand(state: dict[str, Any]) -> None:
            next(r for r in state["domains"][0]["records"] if r["id"] == 3)["target"] = HAND
            state["faults"]["rules"] = []

        emulator.edit(by_hand)

    watcher = threading.Thread(target=change_during_the_wait)
    watcher.start()
    result = cli("dns", "switch", "--yes", "--no-ttl-wait")
    watcher.join()
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "    ! golive waits 1 s for the Linode API's rate limit (update record 3)" in result.lines, result.stdout
    assert f"dns www.example.org A #3 was changed by someone else during the step: it holds {HAND} now" in result.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): HAND, ("www", "AAAA"): OLD6}


def test_a_rate_limit_wait_is_an_event_under_json(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    emulator.edit(lambda s: s["faults"].update(rules=[
        {"method": "GET", "path": "/records$", "status": 429, "times": 1, "retry_after": 1},  # (urllib3 waits)
        {"method": "PUT", "path": "/records/1$", "status": 429, "times": 1, "retry_after": 2}]))  # (golive waits)
    result = cli("dns", "switch", "--yes", "--no-ttl-wait", "--json")
    assert result.exit_code == 0, result.stderr
    notices = [e["message"] for e in map(json.loads, result.lines) if e.get("phase") == "notice"]
    assert notices == ["golive waits 1 s for the Linode API's rate limit (list records of domain 1)",
                       "golive waits 2 s for the Linode API's rate limit (update record 1)"]
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}


def test_a_rollback_refuses_to_overwrite_a_record_changed_since_the_run_unless_forced(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    put_by_hand(emulator, 3, "192.0.2.99")
    for command in (["rollback"], ["dns", "revert"]):
        refused = cli(*command, "--yes")
        assert (refused.exit_code, refused.stderr) == (2, (
            "error: 1 DNS record(s) were changed by hand since `dns switch to new`: dns www.example.org A #3 holds"
            f" 192.0.2.99 (before the run: {OLD}); the undo would overwrite them — nothing was changed; check them in"
            f" Linode, then run `golive {' '.join(command)} --yes --force` to put them back as before the run anyway"
            " (what they hold now is written to the journal)\n"))
        assert targets(emulator) == {("", "A"): NEW, ("www", "A"): "192.0.2.99", ("www", "AAAA"): NEW6}
    forced = cli("rollback", "--yes", "--force")
    assert forced.exit_code == 0, forced.stderr
    notice = (f"    ! dns www.example.org A #3: 192.0.2.99, set by someone else since the run, overwritten with {OLD}"
              " (--force)")
    assert notice in forced.lines, forced.stdout
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}
    journal = sqlite3.connect(dns_project / ".golive" / "journal.db")
    events = [m for (m,) in journal.execute("SELECT message FROM events WHERE phase = 'notice'")]
    assert notice.removeprefix("    ! ") in events  # (the human's value, kept in the journal and the report)


def test_a_record_put_back_by_hand_already_is_no_reason_to_refuse(dns_project: Path, emulator: LinodeEmulator,
                                                                  cli) -> None:
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    put_by_hand(emulator, 3, OLD)
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_a_record_changed_between_the_rollbacks_plan_and_its_undo_is_left_and_named(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    code, out, err = run_held(dns_project, "1:undo", ["rollback", "--yes"], lambda: put_by_hand(emulator, 3, HAND))
    assert code == 4, out + err
    assert f"1 record(s) changed by hand since the run were left as they are: dns www.example.org A #3 holds {HAND}" \
        in err.splitlines()[0], err
    assert (f"  by hand: check dns www.example.org A #3 in Linode: it holds {HAND}, set by hand since the run; set it"
            f" back to {OLD} if it should be, or run `golive rollback --yes --force`") in err.splitlines(), err
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): HAND, ("www", "AAAA"): OLD6}  # the others put back
    assert cli("rollback", "--yes", "--force").exit_code == 0
    assert targets(emulator)[("www", "A")] == OLD


def test_a_failed_put_back_is_shown_with_the_failure_that_caused_it(dns_project: Path, emulator: LinodeEmulator,
                                                                     cli) -> None:
    # www A (#3, the second record) fails; putting back the apex (#1, changed first) fails too
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 500},
                                                      {"method": "PUT", "path": "/records/1$", "status": 500,
                                                       "skip": 1}]))
    result = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert result.exit_code == 4, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: step dns switch to new failed (dns www.example.org A #3: the Linode API failed"
                            " (update record 3: 500 Please try again later (injected fault)) after retries; putting back"
                            " the 1 record(s) changed before it failed too: the Linode API failed (update record 1: 500"), \
        first
