"""A probe through the proxy ends within its timeout whatever the proxy does: one that trickles its answer a
byte at a time resets httpx's read timeout with every byte, and a swap's confirm loop (or its undo) would wait
on it for ever. The proxy here is a real loopback socket server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from golive.swap.proxy import probe, probe_served


@contextlib.contextmanager
def _server(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/healthz"
    finally:
        server.close()


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
    with _server(_trickle(head)) as url:
        started = time.monotonic()
        assert probe(url, timeout=1.0) == (0, "ReadTimeout")
        assert time.monotonic() - started < 2.0  # (the answer would take 20 s)


def test_a_proxy_that_answers_is_heard_with_the_upstream_it_names() -> None:
    with _server(_answers) as url:
        assert probe_served(url, timeout=2.0) == (200, "ok", "http://127.0.0.1:8002")
