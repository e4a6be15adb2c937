"""A bounded HTTP load on loopback, to prove that a swap fails no request.

``clients`` threads each keep one HTTP/1.1 keep-alive connection and GET the URL in a loop until
stopped (or ``max_seconds``/``max_requests``). A failure is a non-2xx answer or a connection error.
One case is a retry, not a failure, as browsers do: a *reused* idle connection that the server
closed (Apache's graceful reload closes idle keep-alive connections) fails before any response
byte; the client retries once on a new connection, and only a failed retry counts as a failure.

By default each client sends its next request as soon as the last one is answered (a closed loop,
as fast as the machine allows). With ``rate`` each client sends ``rate`` requests a second on a
fixed schedule; a request's latency is then counted from when it was *due*, so a stall also counts
against the requests that had to wait behind it (no coordinated omission).
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["Load", "LoadResult", "Sample"]

RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load started
    latency: float
    status: int  # 0 = no answer
    body: str
    phase: str


@dataclass
class LoadResult:
    samples: list[Sample]
    retries: int
    errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.samples)

    @property
    def failures(self) -> int:
        return sum(not 200 <= s.status < 300 for s in self.samples)

    def bodies(self) -> list[str]:
        """The distinct answers in the order they first appeared (e.g. blue, green, blue)."""
        order: list[str] = []
        for s in sorted(self.samples, key=lambda s: s.at):
            if 200 <= s.status < 300 and (not order or order[-1] != s.body):
                order.append(s.body)
        return order

    def counts(self) -> Counter[str]:
        return Counter(s.body for s in self.samples)

    def latency(self, phase: str | None = None, q: float = 0.5) -> float:
        values = sorted(s.latency for s in self.samples if phase is None or s.phase == phase)
        if not values:
            return 0.0
        if q >= 1:
            return values[-1]
        return values[min(len(values) - 1, int(q * len(values)))] if len(values) < 20 else \
            statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]  # (never past the max)


class Load:
    def __init__(self, url: str, clients: int = 8, max_seconds: float = 120, max_requests: int = 500_000,
                 rate: float | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.clients, self.max_seconds, self.max_requests, self.rate = clients, max_seconds, max_requests, rate
        self.phase = "steady"
        self._samples: list[Sample] = []
        self._errors: list[str] = []
        self._retries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0

    def start(self) -> Load:
        self._t0 = time.monotonic()
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i,), name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return LoadResult(list(self._samples), self._retries, list(self._errors))

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def _once(self, conn: http.client.HTTPConnection) -> tuple[int, str]:
        conn.request("GET", self.path, headers={"Connection": "keep-alive"})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace").strip()

    def _due(self, index: int, sent: int) -> float:
        """When request ``sent`` of client ``index`` starts: now, or its slot on the paced schedule."""
        if self.rate is None:
            return time.monotonic()
        due = self._t0 + (sent + index / self.clients) / self.rate  # clients spread over one interval
        self._stop.wait(max(0.0, due - time.monotonic()))
        return due

    def _exchange(self, conn: http.client.HTTPConnection, used: bool) -> tuple[http.client.HTTPConnection, int, str]:
        try:
            status, body = self._once(conn)
        except RETRYABLE as exc:
            conn.close()
            conn = self._connect()
            if not used:
                return conn, 0, type(exc).__name__
            with self._lock:  # the server closed an idle reused connection: retry once, as a browser does
                self._retries += 1
            try:
                status, body = self._once(conn)
            except (OSError, http.client.HTTPException) as again:
                status, body = 0, f"{type(again).__name__} on retry"
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = self._connect()
            status, body = 0, type(exc).__name__
        return conn, status, body

    def _client(self, index: int) -> None:
        conn, used, sent = self._connect(), False, 0
        while not self._stop.is_set():
            if time.monotonic() - self._t0 > self.max_seconds or len(self._samples) >= self.max_requests:
                break
            started = self._due(index, sent)
            if self._stop.is_set():
                break
            phase, sent = self.phase, sent + 1
            conn, status, body = self._exchange(conn, used)
            used = status != 0
            sample = Sample(started - self._t0, time.monotonic() - started, status, body, phase)
            with self._lock:
                self._samples.append(sample)
                if not 200 <= status < 300 and len(self._errors) < 20:
                    self._errors.append(f"{sample.at:.3f}s {status} {body[:80]}")
        conn.close()
