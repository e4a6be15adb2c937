"""An authoritative DNS server for the emulated Linode zones, on loopback UDP and TCP.

It reads the emulator's state file, answers with the AA flag for the zones it holds (A, AAAA,
CNAME, MX, TXT, NS, SOA; the five ns1-5.linode.com NS records implicit, as on Linode), NXDOMAIN
with the SOA for names that do not exist, REFUSED outside its zones. The SOA serial is the
domain's serial, bumped by every change. ``delay`` makes a change visible only that many seconds
after the API accepted it, as on the real nameservers, so that waiting for propagation is testable.

Run by hand: ``golive sandbox dns --port 5353 --state linode.json --delay 5``.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
import time
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from golive.sandbox.linode_api import NS_SERVERS

__all__ = ["DnsServer"]

SUPPORTED = ("A", "AAAA", "CNAME", "MX", "TXT", "NS")


class ZoneHistory:
    """Versions of the zones as the state file had them, each with the time the API changed it."""

    def __init__(self, state_path: Path, delay: float) -> None:
        self.path = state_path
        self.delay = delay
        self.versions: list[tuple[float, int, list[dict[str, Any]]]] = []
        self.lock = threading.Lock()
        self._stat: tuple[float, int] | None = None

    def poll(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if self._stat == (st.st_mtime, st.st_size):
            return
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # caught between writes; the next poll sees it whole
        self._stat = (st.st_mtime, st.st_size)
        with self.lock:
            if not self.versions or self.versions[-1][1] != state.get("version"):
                self.versions.append((float(state.get("changed_at", 0)), int(state.get("version", 0)),
                                      state.get("domains", [])))
                del self.versions[:-200]

    def visible(self) -> list[dict[str, Any]]:
        """The zones as a resolver would see them now: the newest version older than ``delay``."""
        self.poll()
        cutoff = time.time() - self.delay
        with self.lock:
            seen = [v for v in self.versions if v[0] <= cutoff] or self.versions[:1]
            return seen[-1][2] if seen else []


def _rr(owner: dns.name.Name, ttl: int, rtype: str, text: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, ttl, dns.rdataclass.IN, rtype, text)


class Resolver:
    def __init__(self, history: ZoneHistory) -> None:
        self.history = history

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags &= ~dns.flags.RA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        qname, qtype = question.name, dns.rdatatype.to_text(question.rdtype)
        zone = self._zone(qname)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        origin = dns.name.from_text(zone["domain"])
        default_ttl = zone.get("ttl_sec") or 86400
        mailbox = (zone.get("soa_email") or f"hostmaster@{zone['domain']}").replace("@", ".")
        soa = _rr(origin, default_ttl, "SOA", f"{NS_SERVERS[0]}. {mailbox}. {zone.get('serial', 1)} 14400 14400 1209600 300")
        records = self._records(zone, origin)
        at_name = [r for r in records if r[0] == qname]
        if not at_name:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(soa)
            return response
        if qtype == "SOA" and qname == origin:
            response.answer.append(soa)
            return response
        matches = [r for r in at_name if r[1] == qtype] or [r for r in at_name if r[1] == "CNAME"]
        if not matches:
            response.authority.append(soa)  # NOERROR, no data
            return response
        by_type: dict[str, dns.rrset.RRset] = {}
        for owner, rtype, ttl, text in matches:
            rrset = by_type.get(rtype)
            if rrset is None:
                by_type[rtype] = rrset = _rr(owner, ttl, rtype, text)
            else:
                rrset.add(dns.rdata.from_text(dns.rdataclass.IN, rtype, text), ttl)
        response.answer.extend(by_type.values())
        return response

    def _zone(self, qname: dns.name.Name) -> dict[str, Any] | None:
        zones = [z for z in self.history.visible() if qname.is_subdomain(dns.name.from_text(z["domain"]))]
        return max(zones, key=lambda z: len(z["domain"]), default=None)

    @staticmethod
    def _records(zone: dict[str, Any], origin: dns.name.Name) -> list[tuple[dns.name.Name, str, int, str]]:
        default_ttl = zone.get("ttl_sec") or 86400
        out = [(origin, "NS", default_ttl, f"{ns}.") for ns in NS_SERVERS]
        out.append((origin, "SOA", default_ttl, ""))
        for r in zone.get("records", []):
            if r["type"] not in SUPPORTED:
                continue
            owner = dns.name.from_text(r["name"], origin) if r["name"] else origin
            ttl = r.get("ttl_sec") or default_ttl
            if r["type"] in ("CNAME", "NS"):
                text = f"{r['target']}."
            elif r["type"] == "MX":
                text = f"{r.get('priority', 0)} {r['target']}."
            elif r["type"] == "TXT":
                text = '"' + str(r["target"]).replace('"', '\\"') + '"'
            else:
                text = r["target"]
            out.append((owner, r["type"], ttl, text))
        return out


class _Udp(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.reply(data, udp=True)
        if reply:
            sock.sendto(reply, self.client_address)


class _Tcp(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        while True:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            length = struct.unpack("!H", head)[0]
            data = b""
            while len(data) < length:
                chunk = self.request.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
            reply = self.server.reply(data, udp=False)
            if reply:
                self.request.sendall(struct.pack("!H", len(reply)) + reply)


class _Mixin:
    resolver: Resolver

    def reply(self, data: bytes, udp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
        response = self.resolver.answer(query)
        wire: bytes = response.to_wire(max_size=512 if udp else 65535)
        return wire


class _UdpServer(_Mixin, socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True


class _TcpServer(_Mixin, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DnsServer:
    """Serve the emulator's zones on ``host:port`` (UDP and TCP, the same port)."""

    def __init__(self, state_path: Path, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0) -> None:
        self.history = ZoneHistory(state_path, delay)
        self.history.poll()
        resolver = Resolver(self.history)
        self.udp = self._bind_pair(host, port)
        self.udp.resolver = resolver
        self.tcp.resolver = resolver
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def _bind_pair(self, host: str, port: int) -> _UdpServer:
        for _ in range(50):  # port 0: find one free for both UDP and TCP
            udp = _UdpServer((host, port), _Udp)
            try:
                self.tcp = _TcpServer((host, udp.server_address[1]), _Tcp)
                return udp
            except OSError:
                udp.server_close()
                if port:
                    raise
        raise OSError("no port free for both UDP and TCP")

    @property
    def port(self) -> int:
        return int(self.udp.server_address[1])

    @property
    def delay(self) -> float:
        return self.history.delay

    @delay.setter
    def delay(self, value: float) -> None:
        self.history.delay = value

    def start(self) -> DnsServer:
        for target in (self.udp.serve_forever, self.tcp.serve_forever, self._poll):
            kwargs = {"poll_interval": 0.05} if target != self._poll else {}
            thread = threading.Thread(target=target, kwargs=kwargs, daemon=True, name="sandbox-dns")
            thread.start()
            self._threads.append(thread)
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            self.history.poll()

    def stop(self) -> None:
        self._stop.set()
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
