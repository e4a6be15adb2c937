"""The sandbox's authoritative DNS server over real UDP and TCP on loopback."""

from __future__ import annotations

import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import httpx

from golive.sandbox.dns import DnsServer
from golive.sandbox.linode import LinodeEmulator
from tests.dns.conftest import OLD, TOKEN


def ask(server: DnsServer, name: str, rtype: str, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rtype)
    query.flags &= ~dns.flags.RD
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, "127.0.0.1", port=server.port, timeout=3)


def texts(response: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


def test_answers_every_record_type_authoritatively(emulator: LinodeEmulator, nameservers: list[DnsServer]) -> None:
    server = nameservers[0]
    www = ask(server, "www.example.org", "A")
    assert www.flags & dns.flags.AA and not www.flags & dns.flags.RA
    assert texts(www) == [OLD]
    assert texts(ask(server, "example.org", "NS", tcp=True)) == [f"ns{i}.linode.com." for i in range(1, 6)]
    assert texts(ask(server, "example.org", "MX")) == ["10 mail.example.org."]
    assert texts(ask(server, "docs.example.org", "CNAME")) == ["www.example.org."]
    assert texts(ask(server, "example.org", "TXT")) == ['"v=spf1 -all"']
    assert texts(ask(server, "www.example.org", "AAAA")) == ["2001:db8::10"]


def test_nxdomain_with_soa_refused_outside_and_serial_bumped(emulator: LinodeEmulator,
                                                            nameservers: list[DnsServer]) -> None:
    server = nameservers[0]
    missing = ask(server, "nope.example.org", "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.flags & dns.flags.AA
    [soa] = missing.authority
    serial = soa[0].serial
    assert ask(server, "example.com", "A").rcode() == dns.rcode.REFUSED
    response = httpx.put(f"{emulator.url}/domains/1/records/3", json={"target": "198.51.100.20"},
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    deadline = time.monotonic() + 5
    while texts(ask(server, "www.example.org", "A")) != ["198.51.100.20"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ask(server, "example.org", "SOA").answer[0][0].serial > serial


def test_latency_fault_is_added_to_every_answer(emulator: LinodeEmulator) -> None:
    emulator.edit(lambda s: s["faults"].update({"latency_ms": 300}))
    started = time.monotonic()
    assert httpx.get(f"{emulator.url}/domains", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert time.monotonic() - started >= 0.3
