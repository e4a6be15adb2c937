"""A probe through the proxy ends within its timeout whatever the proxy does: one that trickles its answer a
byte at a time resets httpx's read timeout with every byte, and a swap's confirm loop (or its undo) would wait
on it for ever. The proxy here is a real loopback socket server."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

import pytest

from golive.swap.proxy import probe, probe_served
from tests.cli.test_status_probe import _server


def _trickle(head: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.recv(4096)
            for byte in head + b"." * 400:
                conn.sendall(bytes([byte]))
                time.sleep(0.05)
    return handle


def _answers(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Golive-Upstream: http://127.0.0.1:8002\r\n"
                     b"Connection: close\r\n\r\nok")


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nX-Slow: ",  # the headers trickle
    b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n",  # the body does
])
def test_a_proxy_that_trickles_its_answer_times_the_probe_out_within_its_timeout(head: bytes) -> None:
    with _server(_trickle(head)) as port:
        url = f"http://127.0.0.1:{port}/healthz"
        started = time.monotonic()
        assert probe(url, timeout=1.0) == (0, "ReadTimeout")
        assert time.monotonic() - started < 2.0  # (the answer would take 20 s)


def test_a_proxy_that_answers_is_heard_with_the_upstream_it_names() -> None:
    with _server(_answers) as port:
        assert probe_served(f"http://127.0.0.1:{port}/healthz", timeout=2.0) == (200, "ok", "http://127.0.0.1:8002")
