"""Propagation check: ask every authoritative nameserver directly (RD=0), require the AA flag and
the expected answer for every configured record, until all agree or a deadline passes."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from golive.errors import CheckFailed, ConfigError

if TYPE_CHECKING:
    from golive.config.models import Dns

__all__ = ["QUERY_TIMEOUT", "Answer", "parse_server", "query", "verify"]

QUERY_TIMEOUT = 2.0  # seconds one query waits for its answer, at most
LAST_LOOK = 0.5  # ... and at least, in a round begun with (almost) no time left: the deadline's last look


@dataclass(frozen=True)
class Answer:
    server: str
    name: str
    rtype: str
    values: tuple[str, ...]
    ttl: int | None
    authoritative: bool
    error: str | None
    expected: str

    @property
    def ok(self) -> bool:
        return self.error is None and self.authoritative and self.values == (self.expected,)

    @property
    def state(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if not self.authoritative:
            return "not authoritative (no AA)"
        return "ok" if self.ok else "waiting"


def parse_server(entry: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``ip:port`` or ``[v6]:port`` -> (address, port)."""
    host, port = entry, 53
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif entry.count(":") == 1:
        host, _, text = entry.partition(":")
        port = int(text)
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
    except socket.gaierror as exc:
        raise ConfigError(f"nameserver {entry!r} in [dns].nameservers does not resolve ({exc.strerror})",
                          hint="use an address (ip:port) or a resolvable name") from None
    return str(address), port


def query(server: str, name: str, rtype: str, expected: str, timeout: float = QUERY_TIMEOUT) -> Answer:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query

    address, port = parse_server(server)
    message = dns.message.make_query(name, rtype)
    message.flags &= ~dns.flags.RD  # ask the server itself, not its recursion
    try:
        response = dns.query.udp(message, address, port=port, timeout=timeout)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(message, address, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError) as exc:
        return Answer(server, name, rtype, (), None, False, type(exc).__name__, expected)
    wanted = message.question[0].rdtype
    from golive.dns.gateway import canonical_ip

    # (one spelling per address on both sides: dnspython writes ::ffff:198.51.100.20, Python ::ffff:c633:6414)
    values = tuple(sorted(canonical_ip(rd.to_text()) for rrset in response.answer if rrset.rdtype == wanted
                          for rd in rrset))
    ttl = min((rrset.ttl for rrset in response.answer), default=None)
    return Answer(server, name, rtype, values, ttl, bool(response.flags & dns.flags.AA), None, canonical_ip(expected))


def verify(dns: Dns, expect: str, timeout: float, on_round: Callable[[list[Answer]], None] | None = None,
           interval: float = 0.5) -> list[Answer]:
    if not dns.nameservers:
        raise ConfigError("[dns].nameservers is empty: there is nobody to ask",
                          hint='list the authoritative servers, e.g. nameservers = ["ns1.linode.com", …]')
    deadline = time.monotonic() + timeout
    asks: list[tuple[str, str, str, str]] = [(server, dns.fqdn(r.name), r.type, dns.target(r.type, expect))
                                             for server in dns.nameservers for r in dns.records]
    with ThreadPoolExecutor(max_workers=min(len(asks), 16), thread_name_prefix="dns-verify") as pool:
        return _rounds(pool, asks, expect, timeout, deadline, on_round, interval)


def _rounds(pool: ThreadPoolExecutor, asks: list[tuple[str, str, str, str]], expect: str, timeout: float,
            deadline: float, on_round: Callable[[list[Answer]], None] | None, interval: float) -> list[Answer]:
    """Every server asked for every record at once each round, each query waiting at most the time left (a silent
    server held each round 2 s per record, one after the other: `--timeout 3` took 7 s and more)."""
    while True:
        bound = min(QUERY_TIMEOUT, max(deadline - time.monotonic(), LAST_LOOK))
        answers = [future.result() for future in [pool.submit(query, *ask, timeout=bound) for ask in asks]]
        if on_round is not None:
            on_round(answers)
        if all(a.ok for a in answers):
            return answers
        if time.monotonic() >= deadline:
            lagging = sorted({f"{a.server} ({a.name} {a.rtype} -> {', '.join(a.values) or a.state})"
                              for a in answers if not a.ok})
            raise CheckFailed(f"after {timeout:g}s, {len(lagging)} answer(s) are not {expect} yet: {'; '.join(lagging)}",
                              hint="wait longer (--timeout) or check those nameservers; DNS was not changed by verify")
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
