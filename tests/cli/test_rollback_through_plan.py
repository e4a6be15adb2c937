"""`golive rollback --through` plans every run from the state the newer runs' undos leave (nothing is undone
while planning): a TTL lowering undone after the switch that also set a TTL (`[dns].switch_ttl`). Against the
Linode emulator, as tests/dns."""

from __future__ import annotations

import json
from pathlib import Path

from golive.sandbox.linode import LinodeEmulator
from tests.dns.conftest import NEW, NEW6, OLD, OLD6, dns_project, emulator, nameservers, zone

__all__ = ["dns_project", "emulator", "nameservers"]  # (the fixtures, used by name)


def test_the_ttl_lowerings_plan_starts_from_the_ttl_the_switchs_undo_puts_back(
        dns_project: Path, emulator: LinodeEmulator, cli) -> None:
    config = dns_project / "golive.toml"
    config.write_text(config.read_text() + "switch_ttl = 120\n")
    lowered = cli("dns", "lower-ttl", "--yes", "--json")
    assert lowered.exit_code == 0, lowered.stderr
    lower_run = json.loads(lowered.lines[-1])["run"]
    assert cli("dns", "switch", "--yes", "--no-ttl-wait").exit_code == 0  # targets to NEW, TTL 300 -> 120

    planned = cli("rollback", "--through", lower_run, "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    lowering = planned.lines[planned.lines.index(next(line for line in planned.lines if "(dns lower-ttl)" in line)):]
    assert lowering[2:] == ["      dns example.org A #1: ttl_sec=300 -> ttl_sec=3600",  # not 120, "changed since"
                            "      dns www.example.org A #3: ttl_sec=300 -> ttl_sec=3600",
                            "      dns www.example.org AAAA #4: ttl_sec=300 -> ttl_sec=3600"]
    assert cli("rollback", "--through", lower_run, "--yes").exit_code == 0
    records = {(r["name"], r["type"]): (r["target"], r["ttl_sec"]) for r in zone(emulator)}
    assert [records[key] for key in (("", "A"), ("www", "A"), ("www", "AAAA"))] == [(OLD, 3600), (OLD, 3600), (OLD6, 3600)]
    assert not {NEW, NEW6} & {target for target, _ in records.values()}
