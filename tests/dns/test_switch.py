"""`golive dns` end to end over real HTTP and DNS on loopback: switch, read back, verify with a
propagation delay, revert to a zone equal field for field; retries, auth errors, a failure halfway
and a crash halfway. The token never appears in any output or in the journal."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from golive.sandbox.dns import DnsServer
from golive.sandbox.linode import LinodeEmulator
from tests.dns.conftest import NEW, NEW6, OLD, OLD6, RO_TOKEN, TOKEN, zone


def targets(emulator: LinodeEmulator) -> dict[tuple[str, str], str]:
    """Where the configured records point (the apex AAAA is in the zone but not configured: never touched)."""
    found = {(r["name"], r["type"]): r["target"] for r in zone(emulator) if r["type"] in ("A", "AAAA")}
    assert found.pop(("", "AAAA")) == OLD6
    return found


def no_token_anywhere(project: Path, *outputs: str) -> None:
    for out in outputs:
        assert TOKEN not in out
    journal = project / ".golive" / "journal.db"
    if journal.exists():
        assert TOKEN not in "\n".join(sqlite3.connect(journal).iterdump())


def test_show_and_plan(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    shown = cli("dns", "show")
    assert shown.exit_code == 0, shown.stderr
    rows = [line.split() for line in shown.lines[2:]]
    assert [r[:5] for r in rows] == [["example.org", "A", OLD, "3600", "old"], ["www.example.org", "A", OLD, "3600", "old"],
                                     ["www.example.org", "AAAA", OLD6, "3600", "old"]]
    plan = cli("dns", "plan", "--no-ttl-wait")  # (the records' TTL is an hour: without it, refused as below)
    assert plan.lines[0] == "Plan: dns switch to new — 1 step(s), 3 change(s)"
    assert plan.lines[2:] == [f"      dns example.org A #1: {OLD} -> {NEW}", f"      dns www.example.org A #3: {OLD} -> {NEW}",
                              f"      dns www.example.org AAAA #4: {OLD6} -> {NEW6}"]
    doc = json.loads(cli("dns", "show", "--json").stdout)
    assert [r["points_at"] for r in doc["records"]] == ["old", "old", "old"]
    no_token_anywhere(dns_project, shown.stdout, plan.stdout, json.dumps(doc))


def test_switch_read_back_verify_with_delay_then_revert_exactly(dns_project: Path, emulator: LinodeEmulator,
                                                                 nameservers: list[DnsServer], cli) -> None:
    original = zone(emulator)
    for server in nameservers:
        server.delay = 1.5
    switched = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert switched.exit_code == 0, switched.stderr
    assert switched.lines[-1] == "switched to new; check propagation with `golive dns verify --expect new`"
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}
    started = time.monotonic()
    verified = cli("dns", "verify", "--expect", "new", "--timeout", "10")
    waited = time.monotonic() - started
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert verified.lines[-1] == "all 2 nameserver(s) answer new for 3 record(s)"
    assert 0.5 < waited < 10  # it had to wait for the delay, and stopped once all agreed
    reverted = cli("dns", "revert", "--yes")
    assert reverted.exit_code == 0, reverted.stderr
    assert zone(emulator) == original  # every field of every record (but the `updated` stamp)
    old = cli("dns", "verify", "--expect", "old", "--timeout", "10")
    assert old.exit_code == 0
    again = cli("dns", "revert", "--yes")
    assert (again.exit_code, again.stdout, again.stderr) == (
        0, "nothing to revert: no applied DNS switch in the journal (`golive dns show` shows where the records point)\n",
        "")
    no_token_anywhere(dns_project, switched.stdout, switched.stderr, verified.stdout, reverted.stdout)


def test_verify_times_out_naming_the_lagging_servers(dns_project: Path, emulator: LinodeEmulator,
                                                     nameservers: list[DnsServer], cli) -> None:
    nameservers[1].delay = 60
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    result = cli("dns", "verify", "--timeout", "1.5")
    assert result.exit_code == 1
    lagging = f"127.0.0.1:{nameservers[1].port}"
    assert result.stderr.startswith("error: after 1.5s, 3 answer(s) are not new yet: ")
    assert lagging in result.stderr and f"127.0.0.1:{nameservers[0].port}" not in result.stderr
    assert f"({'example.org'} A -> {OLD})" in result.stderr


def test_lower_ttl_prints_the_earliest_safe_switch(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    result = cli("dns", "lower-ttl", "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.lines[-1].startswith("earliest safe switch: ")
    assert result.lines[-1].endswith(" UTC (now + the old TTL of 3600s)")
    ttls = {(r["name"], r["type"]): r["ttl_sec"] for r in zone(emulator) if r["type"] in ("A", "AAAA")}
    assert ttls == {("", "A"): 300, ("", "AAAA"): 3600, ("www", "A"): 300, ("www", "AAAA"): 300}
    assert cli("rollback", "--yes").exit_code == 0
    assert {r["ttl_sec"] for r in zone(emulator) if r["type"] in ("A", "AAAA")} == {3600}


def test_429_with_retry_after_then_success(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    emulator.edit(lambda s: s["faults"].update({"rules": [{"method": "PUT", "path": "/records/", "status": 429,
                                                          "times": 1, "retry_after": 1}]}))
    started = time.monotonic()
    result = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert [s for _, t, s, _ in emulator.responses if t.endswith("{recordId}")].count(429) == 1
    assert targets(emulator)[("www", "A")] == NEW


def test_401_bad_token_changes_nothing(dns_project: Path, emulator: LinodeEmulator, cli, monkeypatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_LINODE_TOKEN", "tok-wrong-0000000000000000")
    before = zone(emulator)
    result = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert result.exit_code == 2
    assert result.stderr == ("error: Linode rejected the token (find domain example.org: 401 Invalid Token)"
                             " — check [linode].token (env:GOLIVE_TEST_LINODE_TOKEN): it must be a valid personal"
                             " access token\n")
    assert zone(emulator) == before
    assert "tok-wrong" not in result.stderr + result.stdout


def test_403_read_only_token_leaves_the_zone_whole(dns_project: Path, emulator: LinodeEmulator, cli, monkeypatch) -> None:
    monkeypatch.setenv("GOLIVE_TEST_LINODE_TOKEN", RO_TOKEN)
    before = zone(emulator)
    result = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: step dns switch to new failed: dns example.org A #1: the Linode token may"
                                    " not do this (update record 1: 403 Unauthorized)")
    assert zone(emulator) == before


def test_500_on_the_second_of_three_updates_restores_the_first(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    # the second record to be updated (#3, www A) fails every time; the first (#1) has been changed by then
    emulator.edit(lambda s: s["faults"].update({"rules": [{"method": "PUT", "path": "/records/3$", "status": 500}]}))
    before = zone(emulator)
    result = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert result.exit_code == 1
    assert "dns www.example.org A #3: the Linode API failed (update record 3: 500" in result.stderr
    assert "the 1 record(s) changed before it were put back" in result.stderr
    emulator.edit(lambda s: s["faults"].clear())
    assert zone(emulator) == before
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}
    assert [r["ttl_sec"] for r in zone(emulator)] == [r["ttl_sec"] for r in before]


def test_record_changed_by_hand_is_refused_unless_forced(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    def by_hand(state: dict) -> None:
        state["domains"][0]["records"][2]["target"] = "192.0.2.99"

    emulator.edit(by_hand)
    result = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert (result.exit_code, result.stderr) == (2, (
        f"error: dns www.example.org A #3 points at 192.0.2.99, neither old ({OLD}) nor new ({NEW}): someone changed it"
        " by hand — check it in Linode, then pass --force to switch it anyway\n"))
    forced = cli("dns", "switch", "--yes", "--force", "--no-ttl-wait")
    assert forced.exit_code == 0
    assert cli("rollback", "--yes").exit_code == 0
    assert targets(emulator)[("www", "A")] == "192.0.2.99"


def test_sigkill_during_a_switch_of_three_records_then_rollback(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    original = zone(emulator)
    env = {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "dns.switch:mid:pause",
           "GOLIVE_FAULT_MARKER": str(dns_project / "paused")}
    proc = subprocess.Popen([sys.executable, "-m", "golive", "dns", "switch", "--yes", "--no-ttl-wait"], cwd=dns_project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (dns_project / "paused").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=10)
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): OLD, ("www", "AAAA"): OLD6}  # killed after 1 of 3
    status = cli("status")
    assert "crashed (its process is gone)" in status.stdout
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert zone(emulator) == original
    assert cli("rollback", "--yes").stdout == "nothing to roll back: no run has applied steps\n"
    no_token_anywhere(dns_project, out, err, rolled.stdout, rolled.stderr, status.stdout)


def test_switch_waits_for_resolvers_to_forget_the_long_ttl(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    before = zone(emulator)
    for args in (["--dry-run"], ["--yes"]):  # records still at 3600 s: a switch, and its undo, would take an hour
        early = cli("dns", "switch", *args)
        assert (early.exit_code, early.stderr) == (2, (
            "error: the records' TTL is still 3600s: resolvers would keep the old answer that long after the switch"
            " (and the new one after an undo) — run `golive dns lower-ttl` at least 3600s before the switch, or pass"
            " --no-ttl-wait\n"))
    assert zone(emulator) == before
    assert cli("dns", "lower-ttl", "--yes").exit_code == 0
    soon = cli("dns", "switch", "--yes")  # lowered, but resolvers may still hold the 3600 s answer
    assert soon.exit_code == 2
    assert " UTC from 3600s: resolvers may hold the old answer until " in soon.stderr
    assert soon.stderr.endswith("s from now) — wait until then, or pass --no-ttl-wait\n")
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}
    journal = sqlite3.connect(dns_project / ".golive" / "journal.db")  # an hour and a bit goes by
    journal.execute("UPDATE steps SET finished_at = '2020-01-01T00:00:00+00:00' WHERE kind = 'dns.lower_ttl'")
    journal.commit()
    journal.close()
    switched = cli("dns", "switch", "--yes")
    assert switched.exit_code == 0, switched.stderr
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}


def test_plan_is_refused_as_the_switch_is_while_resolvers_hold_the_long_ttl(dns_project: Path, emulator: LinodeEmulator,
                                                                           cli) -> None:
    """`dns plan` showed the changes and exited 0 while `dns switch --dry-run` refused the same switch (exit 2): a
    plan that says the switch will go, at 2 a.m., before one that will not."""
    refused = cli("dns", "switch", "--dry-run")
    assert refused.exit_code == 2, refused.stdout
    for args in ([], ["--to", "new"]):
        plan = cli("dns", "plan", *args)
        assert (plan.exit_code, plan.stdout, plan.stderr) == (2, "", refused.stderr), args
    assert cli("dns", "lower-ttl", "--yes").exit_code == 0
    soon = cli("dns", "plan")  # lowered, but not an old TTL ago
    assert soon.exit_code == 2, soon.stdout
    assert " UTC from 3600s: resolvers may hold the old answer until " in soon.stderr
    shown = cli("dns", "plan", "--no-ttl-wait")
    assert shown.exit_code == 0, shown.stderr
    assert shown.lines[2:-1] == [f"      dns example.org A #1: {OLD} -> {NEW}",
                                 f"      dns www.example.org A #3: {OLD} -> {NEW}",
                                 f"      dns www.example.org AAAA #4: {OLD6} -> {NEW6}"]
    assert shown.lines[-1].startswith("earliest safe switch: ") and shown.lines[-1].endswith(" UTC from 3600s)")


def test_lower_ttl_never_raises_a_shorter_ttl_nor_asks_for_one_linode_would_round(dns_project: Path,
                                                                                  emulator: LinodeEmulator, cli) -> None:
    rounded = cli("dns", "lower-ttl", "--yes", "--ttl", "600")  # Linode keeps 300 or 3600, nothing between
    assert (rounded.exit_code, rounded.stderr) == (2, "error: --ttl 600: Linode would round 600s up to 3600s; it keeps"
                                                      " only 30, 120, 300, 3600, 7200, … seconds — pick one of them\n")
    assert cli("dns", "lower-ttl", "--yes", "--ttl", "120").exit_code == 0
    higher = cli("dns", "lower-ttl", "--yes", "--ttl", "300")
    assert higher.exit_code == 0, higher.stderr
    assert "      dns www.example.org A #3: unchanged (ttl_sec=120)" in higher.lines
    assert {r["ttl_sec"] for r in zone(emulator) if r["type"] == "A"} == {120}


def test_a_silent_linode_api_is_an_error_in_seconds_and_status_does_not_wait_for_it(
        dns_project: Path, emulator: LinodeEmulator, cli, monkeypatch) -> None:
    import socket

    from golive.cli import status_cmd

    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    config = dns_project / "golive.toml"
    text = config.read_text().replace(emulator.url, f"http://127.0.0.1:{silent.getsockname()[1]}/v4")
    try:
        config.write_text(text.replace("retry_interval = 0.05", "retry_interval = 0.05\ntimeout = 0.5"))
        started = time.monotonic()
        shown = cli("dns", "show")
        took = time.monotonic() - started
        assert (shown.exit_code, shown.stderr) == (1, (
            f"error: cannot reach the Linode API at http://127.0.0.1:{silent.getsockname()[1]}/v4 (find domain"
            " example.org): no answer within 0.5s ([linode].timeout) — check [linode].api_url and the network;"
            " nothing was changed by this call\n"))
        assert took < 5  # one attempt and one retry of 0.5 s each, not the SDK's wait without end
        config.write_text(text.replace("retry_interval = 0.05", "retry_interval = 0.05\ntimeout = 60"))
        monkeypatch.setattr(status_cmd, "STATUS_WAIT", 1.0)
        started = time.monotonic()
        status = cli("status")
        assert time.monotonic() - started < 5
        assert status.exit_code == 0
        assert "dns:       error=no answer within 1s" in status.lines
    finally:
        silent.close()


def _www_a(emulator: LinodeEmulator) -> list[dict[str, object]]:
    return [r for r in zone(emulator) if (r["name"], r["type"]) == ("www", "A")]


def test_undo_recreates_a_deleted_record_once_even_when_linode_loses_the_answer(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    """After the switch someone deletes www A. The rollback (--force: a deletion is a hand change) makes it again;
    Linode makes it, but its answer comes
    too late ([linode].timeout), then (the next time) as a 500. A client that sends the POST again makes a second
    A record for www — half the visitors on each server. golive looks before sending again."""
    config = dns_project / "golive.toml"
    config.write_text(config.read_text().replace("retry_interval = 0.05", "retry_interval = 0.05\ntimeout = 1"))
    original = zone(emulator)
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    # answered too late, a 500 after the record was made (sent once each), a 500 before (sent again, once)
    for lost, posts in (({"delay_ms": 2500}, 1), ({"status": 500, "processed": True}, 1), ({"status": 500}, 2)):
        www = _www_a(emulator)
        assert [r["target"] for r in www] == [NEW]
        rule = {"method": "POST", "path": "/records$", "times": 1, **lost}

        def delete_www_and_lose_the_next_answer(state: dict[str, Any], gone: object = www[0]["id"], rule=rule) -> None:
            state["domains"][0]["records"] = [r for r in state["domains"][0]["records"] if r["id"] != gone]
            state["faults"]["rules"] = [rule]

        emulator.edit(delete_www_and_lose_the_next_answer)
        rolled = cli("rollback", "--yes", "--force")  # (a deletion is a hand change: made again only with --force)
        assert rolled.exit_code == 0, rolled.stderr
        assert [(r["target"], r["ttl_sec"]) for r in _www_a(emulator)] == [(OLD, 3600)]  # one record, as it was
        creates = [r for r in emulator.responses if r[:2] == ("POST", "/domains/{domainId}/records")]
        assert len(creates) == posts  # sent again only when a look found no record
        emulator.responses.clear()
        emulator.edit(lambda s: s["faults"].update(rules=[]))
        assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    assert cli("rollback", "--yes").exit_code == 0
    def by_value(records: list[dict[str, object]]) -> list[dict[str, object]]:  # the recreated www A is new
        return sorted(({k: v for k, v in r.items() if k not in ("id", "created")} for r in records), key=lambda r: json.dumps(r))

    assert by_value(zone(emulator)) == by_value(original)


def test_a_switch_with_nothing_to_change_makes_no_run_so_rollback_still_reverts(dns_project: Path,
                                                                                 emulator: LinodeEmulator, cli) -> None:
    """A second `dns switch` (a script run twice, a nervous operator) made an empty run; the `golive rollback`
    meant to take DNS back then "rolled back 1 step(s)" of that empty run and left the records on the new server."""
    original = zone(emulator)
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    again = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert again.exit_code == 0
    assert again.lines[-1] == "nothing to do: every change is already in place (no run was made)"
    assert f"      dns www.example.org A #3: unchanged ({NEW})" in again.lines
    assert json.loads(cli("dns", "switch", "--yes", "--no-ttl-wait", "--json").lines[-1])["run"] is None
    assert [line.split()[1] for line in cli("history").lines[1:]] == ["dns"]  # one run: the switch
    assert cli("rollback", "--yes").exit_code == 0
    assert zone(emulator) == original


def test_the_rollback_plan_shows_records_as_they_are_now(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    """Someone points www at a third server after the switch, and deletes the apex: the rollback's plan said
    "NEW -> OLD" for both, from the journal; it now shows what the undo will really change."""
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0

    def by_hand(state: dict) -> None:
        records = state["domains"][0]["records"]
        next(r for r in records if (r["name"], r["type"]) == ("www", "A"))["target"] = "192.0.2.99"
        records.remove(next(r for r in records if (r["name"], r["type"]) == ("", "A")))

    emulator.edit(by_hand)
    planned = cli("rollback", "--dry-run")
    assert planned.lines[2:] == [f"      dns example.org A #1 (deleted since the run: only with --force): create {OLD}",
                                 f"      dns www.example.org A #3 (changed since the run: only with --force): 192.0.2.99"
                                 f" -> {OLD}",
                                 f"      dns www.example.org AAAA #4: {NEW6} -> {OLD6}"]
    assert cli("rollback", "--yes", "--force").exit_code == 0  # (a refusal without --force: the test below)
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_undoing_a_ttl_lowering_puts_back_the_ttl_and_never_the_switch_made_after_it(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    lowered = cli("dns", "lower-ttl", "--yes", "--json")
    assert lowered.exit_code == 0, lowered.stderr
    run = json.loads(lowered.lines[-1])["run"]
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    planned = cli("rollback", "--run", run, "--dry-run")
    assert "      dns www.example.org A #3: ttl_sec=300 -> ttl_sec=3600" in planned.lines, planned.stdout
    assert not any(OLD in line for line in planned.lines), planned.stdout  # the plan moves no target
    undone = cli("rollback", "--run", run, "--yes")
    assert undone.exit_code == 0, undone.stderr
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}  # still switched
    assert {r["ttl_sec"] for r in zone(emulator) if r["type"] in ("A", "AAAA")} == {3600}
    assert cli("rollback", "--yes").exit_code == 0  # the switch's own undo takes the switch back
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_a_second_lowering_does_not_shorten_the_wait_the_first_one_started(dns_project: Path, emulator: LinodeEmulator,
                                                                          cli) -> None:
    assert cli("dns", "lower-ttl", "--yes").exit_code == 0  # 3600 s -> 300 s: resolvers may hold 3600 s answers
    assert cli("dns", "lower-ttl", "--yes", "--ttl", "30").exit_code == 0  # 300 s -> 30 s
    journal = sqlite3.connect(dns_project / ".golive" / "journal.db")  # 300 s and more after the second lowering
    journal.execute("UPDATE steps SET finished_at = '2020-01-01T00:00:00+00:00' WHERE kind = 'dns.lower_ttl'"
                    " AND params = '{\"ttl\": 30}'")
    assert journal.total_changes == 1
    journal.commit()
    journal.close()
    soon = cli("dns", "switch", "--yes")
    assert soon.exit_code == 2, soon.stdout
    assert " UTC from 3600s: resolvers may hold the old answer until " in soon.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_addresses_are_compared_as_addresses_not_as_text(dns_project: Path, emulator: LinodeEmulator,
                                                         nameservers: list[DnsServer], cli) -> None:
    def respell(state: dict[str, Any]) -> None:  # someone wrote the old AAAA target by hand, long-hand
        for r in state["domains"][0]["records"]:
            if r["type"] == "AAAA" and r["name"] == "www":
                r["target"] = "2001:0DB8:0000::0010"

    emulator.edit(respell)
    config = dns_project / "golive.toml"
    config.write_text(config.read_text().replace(f'new_target_v6 = "{NEW6}"', 'new_target_v6 = "2001:DB8::20"'))
    shown = cli("dns", "show", "--json")
    assert [r["points_at"] for r in json.loads(shown.stdout)["records"]] == ["old", "old", "old"], shown.stdout
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0  # (not refused as changed by hand)
    assert targets(emulator)[("www", "AAAA")] == NEW6
    verified = cli("dns", "verify", "--timeout", "3")
    assert verified.exit_code == 0, verified.stderr


def test_the_rollback_plan_shows_a_record_already_put_back_as_unchanged(dns_project: Path, emulator: LinodeEmulator,
                                                                       cli) -> None:
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0

    def half_undone(state: dict[str, Any]) -> None:  # a rollback killed after putting back the first record
        for r in state["domains"][0]["records"]:
            if (r["name"], r["type"]) == ("www", "AAAA"):
                r["target"] = OLD6

    emulator.edit(half_undone)
    planned = cli("rollback", "--dry-run")
    assert f"      dns www.example.org AAAA #4: unchanged ({OLD6})" in planned.lines, planned.stdout
    assert f"      dns www.example.org A #3: {NEW} -> {OLD}" in planned.lines, planned.stdout
    assert "changed since the run" not in planned.stdout


def test_a_lowering_killed_after_its_changes_still_counts_for_the_ttl_wait(dns_project: Path, emulator: LinodeEmulator,
                                                                          cli) -> None:
    env = {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "1:after:kill"}
    killed = subprocess.run([sys.executable, "-m", "golive", "dns", "lower-ttl", "--yes"], cwd=dns_project, env=env,
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert {r["ttl_sec"] for r in zone(emulator) if r["type"] == "A"} == {300}  # lowered, then the process died
    assert cli("dns", "lower-ttl", "--yes").exit_code == 0  # nothing to do: every TTL is short already
    soon = cli("dns", "switch", "--yes")  # resolvers may still hold the hour-long answers
    assert soon.exit_code == 2, soon.stdout
    assert " UTC from 3600s: resolvers may hold the old answer until " in soon.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_an_ipv4_mapped_ipv6_target_verifies(dns_project: Path, emulator: LinodeEmulator,
                                             nameservers: list[DnsServer], cli) -> None:
    config = dns_project / "golive.toml"
    config.write_text(config.read_text().replace(f'new_target_v6 = "{NEW6}"', 'new_target_v6 = "::ffff:198.51.100.20"'))
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    verified = cli("dns", "verify", "--timeout", "3")  # the servers answer ::ffff:198.51.100.20, Python writes ::ffff:c633:6414
    assert verified.exit_code == 0, verified.stderr


def test_verify_before_any_switch_says_so_at_once_instead_of_waiting(dns_project: Path, emulator: LinodeEmulator,
                                                                      nameservers: list[DnsServer], cli) -> None:
    started = time.monotonic()
    early = cli("dns", "verify", "--expect", "new", "--timeout", "600")  # (the switch was refused: the TTL wait)
    assert time.monotonic() - started < 30
    assert (early.exit_code, early.stderr) == (1, (
        f"error: 3 record(s) at Linode do not point at the new target (first: example.org A -> {OLD}): the nameservers"
        " cannot answer new yet — `golive dns switch --to new` first (`golive dns show` shows the records)\n"))
    assert cli("dns", "verify", "--expect", "old", "--timeout", "3").exit_code == 0


def test_undoing_a_lowering_killed_half_way_puts_back_ttls_and_never_targets(dns_project: Path, emulator: LinodeEmulator,
                                                                            cli) -> None:
    env = {**os.environ, "NO_COLOR": "1", "GOLIVE_FAULT": "1:mid:kill"}  # killed after its first record
    killed = subprocess.run([sys.executable, "-m", "golive", "dns", "lower-ttl", "--yes"], cwd=dns_project, env=env,
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    lowered = json.loads(cli("history", "--json").stdout)["runs"][0]["id"]
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    undone = cli("rollback", "--run", lowered, "--yes")  # what it set is not journaled: only a TTL can be its business
    assert undone.exit_code == 0, undone.stderr
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}
    assert {r["ttl_sec"] for r in zone(emulator) if r["type"] in ("A", "AAAA")} == {3600}


def test_a_revert_left_undoing_is_finished_by_dns_revert(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    journal = sqlite3.connect(dns_project / ".golive" / "journal.db")  # a revert interrupted in its undo
    journal.execute("UPDATE steps SET status = 'undoing' WHERE kind = 'dns.switch'")
    journal.commit()
    journal.close()
    again = cli("dns", "revert", "--yes")  # what the interrupted revert's hint says
    assert again.exit_code == 0, again.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_verify_asks_the_nameservers_even_when_the_linode_api_is_down(dns_project: Path, emulator: LinodeEmulator,
                                                                     nameservers: list[DnsServer], cli) -> None:
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    config = dns_project / "golive.toml"
    config.write_text(config.read_text().replace(emulator.url, "http://127.0.0.1:9/v4"))  # (nothing listens there)
    verified = cli("dns", "verify", "--expect", "new", "--timeout", "3")
    assert verified.exit_code == 0, verified.stderr
    assert verified.stderr.startswith("warning: could not read the records at Linode (cannot reach the Linode API at"
                                      " http://127.0.0.1:9/v4 (find domain example.org): connection refused); asking the"
                                      " nameservers all the same"), verified.stderr


def test_a_second_lowering_prints_the_earliest_safe_switch_of_the_first(dns_project: Path, emulator: LinodeEmulator,
                                                                       cli) -> None:
    assert cli("dns", "lower-ttl", "--yes").exit_code == 0  # 3600 s -> 300 s
    second = cli("dns", "lower-ttl", "--yes", "--ttl", "30")
    assert second.exit_code == 0, second.stderr
    assert second.lines[-1].startswith("earliest safe switch: "), second.stdout
    assert " UTC from 3600s: resolvers may hold those answers until then)" in second.lines[-1]  # not "now + 300s"


def _journal_states(project: Path) -> list[tuple[str, ...]]:
    journal = sqlite3.connect(project / ".golive" / "journal.db")
    try:
        runs = [("run", c, s) for c, s in journal.execute("SELECT command, status FROM runs ORDER BY started_at")]
        return runs + [("step", k, s) for k, s in journal.execute("SELECT kind, status FROM steps ORDER BY seq")]
    finally:
        journal.close()


def test_a_rollback_with_a_bad_or_read_only_token_changes_and_marks_nothing(dns_project: Path, emulator: LinodeEmulator,
                                                                           cli, monkeypatch) -> None:
    """A rollback with a bad token (401) exited 4 with a by-hand line for every record, and a read-only one (403)
    the same at its first PUT, both marking the run partially rolled back and the step undo_failed, though nothing
    was changed. Both are found by the rollback's plan now, before anything is undone or journaled: a bad token is
    a configuration error (exit 2, as everywhere); a read-only token fails with nothing changed (exit 1, as a switch
    with one does). Each names the token's reference; the right token then rolls back."""
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    switched, journaled = zone(emulator), _journal_states(dns_project)
    monkeypatch.setenv("GOLIVE_TEST_LINODE_TOKEN", "tok-wrong-0000000000000000")
    bad = cli("rollback", "--yes")
    assert (bad.exit_code, bad.stderr) == (2, (
        "error: Linode rejected the token (list records of domain 1: 401 Invalid Token) — check [linode].token"
        " (env:GOLIVE_TEST_LINODE_TOKEN): it must be a valid personal access token\n"))
    monkeypatch.setenv("GOLIVE_TEST_LINODE_TOKEN", RO_TOKEN)
    read_only = cli("rollback", "--yes")
    assert (read_only.exit_code, read_only.stderr) == (1, (
        "error: the Linode token may not change DNS records (its scopes: domains:read_only); the undo of `dns switch"
        " to new` would change 3 record(s) — nothing was changed; put a token with the domains:read_write scope in"
        " [linode].token (env:GOLIVE_TEST_LINODE_TOKEN), then run `golive rollback --yes` again\n"))
    assert "by hand" not in bad.stderr + read_only.stderr
    assert zone(emulator) == switched
    assert _journal_states(dns_project) == journaled  # (no rollback run, no step marked undo_failed)
    monkeypatch.setenv("GOLIVE_TEST_LINODE_TOKEN", TOKEN)
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_a_record_added_while_golive_pages_a_big_zone_is_read_again(dns_project: Path, emulator: LinodeEmulator,
                                                                    cli) -> None:
    """A zone of over 100 records is listed in pages; a record added between two pages made the SDK raise
    `RuntimeError: List PaginatedList (155 items) has changed since creation!` — an internal error in `dns show`
    and in a rollback. The listing is read again (a few times), then a one-line error says to run again."""
    import threading

    from golive.sandbox.linode_api import Api

    def big_zone(state: dict[str, Any]) -> None:
        for n in range(120):
            Api(state).create_record(state["domains"][0]["id"], {"type": "TXT", "name": f"t{n}", "target": f"v{n}"})
        state["faults"]["rules"] = [{"method": "GET", "path": "/records$", "delay_ms": 300}]  # (page 1 answers late)

    emulator.edit(big_zone)
    stop, added = threading.Event(), [0]

    def listings() -> int:
        return sum(1 for r in list(emulator.responses) if r[1] == "/domains/{domainId}/records")

    def colleague(times: int | None) -> None:
        """Adds a record while each first page is answered late (its answer is logged before the delay)."""
        seen = 0
        while not stop.is_set() and (times is None or added[0] < times):
            if listings() > seen and listings() % 2 == 1:  # (an attempt's first page, not its second)
                seen = listings()
                with emulator.store.lock:
                    state = emulator.store.load()
                    Api(state).create_record(state["domains"][0]["id"], {"type": "TXT", "name": f"x{added[0]}",
                                                                         "target": "x"})
                    emulator.store.save(state)
                added[0] += 1
            time.sleep(0.01)

    once = threading.Thread(target=colleague, args=(1,))
    once.start()
    shown = cli("dns", "show", "--json")
    once.join()
    assert shown.exit_code == 0, shown.stderr
    assert [r["points_at"] for r in json.loads(shown.stdout)["records"]] == ["old", "old", "old"]
    assert (added[0], listings()) == (1, 4)  # two pages, read twice
    emulator.responses.clear()
    busy = threading.Thread(target=colleague, args=(None,))
    busy.start()
    try:
        failed = cli("dns", "show")
    finally:
        stop.set()
        busy.join()
    assert (failed.exit_code, failed.stderr) == (1, (
        "error: the Linode listing changed while golive read it, 3 times (list records of domain 1: records were added"
        " or deleted meanwhile) — run the command again once no one is editing the zone; nothing was changed by this"
        " call\n"))


def test_the_by_hand_lines_of_a_failed_undo_name_only_what_is_not_back(dns_project: Path, emulator: LinodeEmulator,
                                                                       cli) -> None:
    """The rollback's PUT of www A fails (500) before it is carried out: the by-hand lines listed every record with
    `TTL 3600` (no switch_ttl: the switch never sets a TTL), the ones already back too. They are read from the records
    now: nothing but what is not back. (A failure that leaves every record back is no failed undo:
    tests/dns/test_api_unanswered.py.)"""
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 500}]))
    again = cli("rollback", "--yes")
    assert again.exit_code == 4, again.stderr
    assert [line for line in again.stderr.splitlines() if line.startswith("  by hand: ")] == [  # (not www AAAA: back)
        f"  by hand: in the Linode DNS manager, set record #1 ((apex) A) back to target {OLD}",
        f"  by hand: in the Linode DNS manager, set record #3 (www A) back to target {OLD}"], again.stderr
    assert targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): OLD6}


def test_status_of_a_half_switched_zone_is_not_ok_and_says_what_to_do(dns_project: Path, emulator: LinodeEmulator,
                                                                      cli) -> None:
    """A switch interrupted half way left the apex on new and www on old: `status --json` said `dns.ok: true`,
    though README's `ok` is "shows nothing to act on"."""
    def half(state: dict[str, Any]) -> None:
        next(r for r in state["domains"][0]["records"] if (r["name"], r["type"]) == ("", "A"))["target"] = NEW

    emulator.edit(half)
    doc = json.loads(cli("status", "--json").stdout)["state"]["dns"]
    assert (doc["ok"], doc["points_to"], doc["new"], doc["old"]) == (False, "mixed", 1, 2)
    shown = cli("status")
    assert any("half switched=finish with `golive dns switch` (or `--to old`), or undo with `golive rollback`" in line
               for line in shown.lines), shown.stdout


def test_a_bad_token_met_by_the_undo_of_a_failed_switch_changes_and_marks_nothing(dns_project: Path,
                                                                                 emulator: LinodeEmulator, cli) -> None:
    """The switch fails at www A (500, every time) and puts the apex back; undoing the failed run, Linode answers 401
    at its first read. That was exit 4, the step marked undo_failed and by-hand lines for records never changed.
    The undo changed nothing before the 401 (the gateway sent no write): a configuration error, exit 2, the step left
    as it was for `golive rollback` once the token is fixed."""
    original = zone(emulator)
    emulator.edit(lambda s: s["faults"].update(rules=[{"method": "PUT", "path": "/records/3$", "status": 500},
                                                      {"method": "GET", "path": "/records/4$", "status": 401}]))
    failed = cli("dns", "switch", "--yes", "--no-ttl-wait")
    assert failed.exit_code == 2, failed.stderr
    [line] = failed.stderr.splitlines()
    assert line.startswith("error: step dns switch to new failed (dns www.example.org A #3: the Linode API failed"
                           " (update record 3: 500 "), line
    assert ") and the undo of step 1 (dns switch to new) of run " in line
    assert line.endswith(" stopped before changing anything: Linode rejected the token (read record 4: 401 Invalid"
                         " Token) — check [linode].token (env:GOLIVE_TEST_LINODE_TOKEN): it must be a valid personal"
                         " access token; then `golive rollback` undoes the run"), line
    assert [s for s in _journal_states(dns_project) if s[2] in ("undo_failed", "partially_rolled_back")] == []
    assert ("run", "dns switch", "failed") in _journal_states(dns_project)
    emulator.edit(lambda s: s["faults"].update(rules=[]))
    assert zone(emulator) == original  # (the switch put the apex back itself)
    rolled = cli("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert zone(emulator) == original


def test_a_switch_record_edited_into_an_empty_object_is_one_line_naming_the_run_and_step(dns_project: Path,
                                                                                         cli) -> None:
    """`{}` as the switch step's journaled record (valid JSON, the wrong shape) made `golive rollback` an internal
    error: KeyError: 'domain_id'."""
    import sqlite3

    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0
    run = json.loads(cli("history", "--json").stdout)["runs"][0]["id"]
    with sqlite3.connect(dns_project / ".golive" / "journal.db") as db:
        db.execute("UPDATE steps SET record = '{}', before = '{}' WHERE run_id = ?", (run,))
    refused = cli("rollback", "--yes")
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: journal: run {run} step 1 (") and \
        "its record cannot be read back (KeyError: 'domain_id'); nothing was undone — `golive history" in refused.stderr, \
        refused.stderr


def test_a_revert_with_nothing_to_revert_is_nothing_to_do(dns_project: Path, cli) -> None:
    """`dns revert` with no switch in the journal exited 1 while `golive rollback` with nothing to do exits 0: a
    drill's clean-up that runs it twice broke. Exit 0, and under --json a result as rollback's nothing-to-do."""
    for args in ([], ["--dry-run"]):
        result = cli("dns", "revert", "--yes", "--json", *args)
        assert (result.exit_code, result.stderr) == (0, ""), result
        assert [json.loads(line) for line in result.lines] == [
            {"event": "result", "ok": True, "target": None, "run": None, "status": "nothing to do", "steps": [],
             "notices": []}]


def test_the_earliest_safe_switch_is_in_the_json_of_lower_ttl_and_plan(dns_project: Path, emulator: LinodeEmulator,
                                                                       cli) -> None:
    """`dns lower-ttl --json` left out the earliest safe switch time its human output prints; `dns plan --json` (and
    the refusal of a switch for the TTL wait) gave it nowhere either. ISO UTC, `earliest_switch`; null until known."""
    from datetime import UTC, datetime, timedelta

    long_ttl = cli("dns", "plan", "--json")
    assert long_ttl.exit_code == 2
    assert json.loads(long_ttl.stdout)["error"]["earliest_switch"] is None  # (not lowered yet: not known)
    before = datetime.now(UTC)
    lowered = cli("dns", "lower-ttl", "--yes", "--json")
    assert lowered.exit_code == 0, lowered.stderr
    result = json.loads(lowered.lines[-1])
    at = datetime.fromisoformat(result["earliest_switch"])
    assert result["event"] == "result" and at.utcoffset() == timedelta(0)
    assert before + timedelta(seconds=3600) - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(seconds=3600)
    refused = cli("dns", "plan", "--json")
    assert refused.exit_code == 2
    waited = datetime.fromisoformat(json.loads(refused.stdout)["error"]["earliest_switch"])
    assert abs(waited - at) <= timedelta(seconds=1)  # (the lowering's finish, a moment before the line was made)
    shown = cli("dns", "plan", "--no-ttl-wait", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert datetime.fromisoformat(json.loads(shown.stdout)["earliest_switch"]) == waited
    again = cli("dns", "lower-ttl", "--yes", "--json")  # (every TTL short already: no run, the first one's wait)
    assert (json.loads(again.lines[-1])["run"], json.loads(again.lines[-1])["earliest_switch"]) == (
        None, waited.isoformat())
    human = cli("dns", "lower-ttl", "--yes")
    assert human.lines[-1] == (f"earliest safe switch: {waited:%Y-%m-%d %H:%M:%S} UTC (the lowering at"
                               f" {waited - timedelta(seconds=3600):%H:%M:%S} UTC from 3600s: resolvers may hold those"
                               " answers until then)"), human.stdout
