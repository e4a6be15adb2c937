"""`dns verify --timeout S` ends about S seconds after it starts, also when a nameserver never answers."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from golive.dns.verify import QUERY_TIMEOUT
from golive.sandbox.dns import DnsServer
from golive.sandbox.linode import LinodeEmulator


def test_verify_against_silent_nameservers_ends_at_its_timeout(dns_project: Path, emulator: LinodeEmulator,
                                                               nameservers: list[DnsServer], cli) -> None:
    """Each query waited its own 2 s, one after the other: with a silent server and three records `--timeout 3` took
    7 s and more (two silent servers: 12). Now every query of a round waits at most the time left.

    No absolute time is asserted beyond the timeout itself: the same command against the answering servers is timed
    first (the CLI's start, the config, the Linode read), and the silent run must end before the timeout plus twice
    that plus one query's bound (QUERY_TIMEOUT: the last round may begin just before the deadline). Before the fix
    the run overshoots that by several query bounds; a slow machine stretches both measurements alike."""
    started = time.monotonic()
    assert cli("dns", "verify", "--expect", "old", "--timeout", "3").exit_code == 0
    overhead = time.monotonic() - started
    silent = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]  # bound, never read: no answer
    try:
        for sock in silent:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in silent]
        config = dns_project / "golive.toml"
        servers = ", ".join(f'"127.0.0.1:{s.port}"' for s in nameservers)
        config.write_text(config.read_text().replace(servers, ", ".join(f'"127.0.0.1:{p}"' for p in ports)))
        started = time.monotonic()
        failed = cli("dns", "verify", "--expect", "old", "--timeout", "3")
        took = time.monotonic() - started
    finally:
        for sock in silent:
            sock.close()
    assert failed.exit_code == 1, failed.stderr
    assert failed.stderr.startswith("error: after 3s, 6 answer(s) are not old yet: "), failed.stderr
    assert f"127.0.0.1:{ports[0]} (www.example.org AAAA -> error: Timeout)" in failed.stderr
    assert 3 <= took < 3 + QUERY_TIMEOUT + 2 * overhead, (took, overhead)
