"""A record's TTL of 0 is its domain's TTL (the domain's `ttl_sec`; 0 there is Linode's day), not always a day
(../shared/linode/README.md and the spec's Domain.ttl_sec): the switch's TTL wait and `dns lower-ttl` go by it."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from golive.sandbox.linode import LinodeEmulator
from tests.dns.conftest import NEW, NEW6, OLD, OLD6, zone


def _zone_default(emulator: LinodeEmulator, domain_ttl: int) -> None:
    """The domain's own TTL set to ``domain_ttl``, and every A/AAAA record's to 0 (the domain's)."""
    def edit(state: dict[str, Any]) -> None:
        state["domains"][0]["ttl_sec"] = domain_ttl
        for r in state["domains"][0]["records"]:
            if r["type"] in ("A", "AAAA"):
                r["ttl_sec"] = 0

    emulator.edit(edit)


def _targets(emulator: LinodeEmulator) -> dict[tuple[str, str], str]:
    return {(r["name"], r["type"]): r["target"] for r in zone(emulator)
            if r["type"] in ("A", "AAAA") and (r["name"], r["type"]) != ("", "AAAA")}


def test_a_record_at_ttl_0_in_a_domain_of_two_days_waits_two_days(dns_project: Path, emulator: LinodeEmulator,
                                                                  cli) -> None:
    """Taken as a day: the switch went a day early (resolvers still holding the old answer), and lower-ttl said
    the earliest safe switch was now + 86400s."""
    _zone_default(emulator, 172800)
    early = cli("dns", "switch", "--dry-run")
    assert (early.exit_code, early.stderr) == (2, (
        "error: the records' TTL is still 172800s: resolvers would keep the old answer that long after the switch"
        " (and the new one after an undo) — run `golive dns lower-ttl` at least 172800s before the switch, or pass"
        " --no-ttl-wait\n"))
    lowered = cli("dns", "lower-ttl", "--yes")
    assert lowered.exit_code == 0, lowered.stderr
    assert lowered.lines[-1].endswith(" UTC (now + the old TTL of 172800s)"), lowered.stdout
    ttls = {(r["name"], r["type"]): r["ttl_sec"] for r in zone(emulator) if r["type"] in ("A", "AAAA")}
    assert ttls == {("", "A"): 300, ("", "AAAA"): 0, ("www", "A"): 300, ("www", "AAAA"): 300}  # (apex AAAA: not ours)
    journal = sqlite3.connect(dns_project / ".golive" / "journal.db")  # a day and a bit goes by: not two days
    a_day_ago = (datetime.now(UTC) - timedelta(seconds=86400 + 3600)).isoformat()
    journal.execute("UPDATE steps SET finished_at = ? WHERE kind = 'dns.lower_ttl'", (a_day_ago,))
    journal.commit()
    journal.close()
    soon = cli("dns", "switch", "--yes")
    assert soon.exit_code == 2, soon.stdout
    assert " UTC from 172800s: resolvers may hold the old answer until " in soon.stderr
    assert _targets(emulator) == {("", "A"): OLD, ("www", "A"): OLD, ("www", "AAAA"): OLD6}


def test_a_record_at_ttl_0_in_a_domain_of_300s_switches_at_once(dns_project: Path, emulator: LinodeEmulator,
                                                               cli) -> None:
    """Taken as a day: the switch was refused and lower-ttl set 300 s and asked to wait a day for nothing."""
    _zone_default(emulator, 300)
    before = zone(emulator)
    lowered = cli("dns", "lower-ttl", "--yes")  # already as short as the cutover TTL: nothing to lower
    assert lowered.exit_code == 0, lowered.stderr
    assert lowered.lines[-1] == "nothing to do: every change is already in place (no run was made)"
    assert zone(emulator) == before
    switched = cli("dns", "switch", "--yes")
    assert switched.exit_code == 0, switched.stderr
    assert _targets(emulator) == {("", "A"): NEW, ("www", "A"): NEW, ("www", "AAAA"): NEW6}


def test_a_domain_at_ttl_0_is_linodes_day(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    _zone_default(emulator, 0)
    early = cli("dns", "switch", "--dry-run")
    assert early.exit_code == 2
    assert early.stderr.startswith("error: the records' TTL is still 86400s: "), early.stderr


def test_dns_show_says_what_a_ttl_of_0_is(dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    """`dns show` printed a record's TTL 0 as `0`: an operator reading it as "no caching" would switch at once."""
    _zone_default(emulator, 172800)
    shown = cli("dns", "show")
    assert shown.exit_code == 0, shown.stderr
    assert [[line.split()[0], " ".join(line.split()[3:6])] for line in shown.lines[2:]] == [
        ["example.org", "172800 (the domain's)"], ["www.example.org", "172800 (the domain's)"],
        ["www.example.org", "172800 (the domain's)"]], shown.stdout
    doc = json.loads(cli("dns", "show", "--json").stdout)
    ttls = {(r["name"], r["type"]): (r["ttl_sec"], r["effective_ttl"]) for r in doc["records"]}
    assert ttls == {("", "A"): (0, 172800), ("www", "A"): (0, 172800), ("www", "AAAA"): (0, 172800)}
