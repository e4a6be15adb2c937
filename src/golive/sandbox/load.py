"""A bounded HTTP load on loopback, to prove that a swap fails no request.

``clients`` threads each keep one HTTP/1.1 keep-alive connection and GET the URL in a loop until
stopped (or ``max_seconds``/``max_requests``). A failure is a non-2xx answer or a connection error.
One case is a retry, not a failure, as browsers do: a *reused* idle connection that the server
closed (Apache's graceful reload closes idle keep-alive connections) fails before any response
byte; the client retries once on a new connection, and only a failed retry counts as a failure.
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
            statistics.quantiles(values, n=100)[int(q * 100) - 1]


class Load:
    def __init__(self, url: str, clients: int = 8, max_seconds: float = 120, max_requests: int = 500_000) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.clients, self.max_seconds, self.max_requests = clients, max_seconds, max_requests
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
            thread = threading.Thread(target=self._client, name=f"load-{i}", daemon=True)
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

    def _client(self) -> None:
        conn, used = self._connect(), False
        while not self._stop.is_set():
            if time.monotonic() - self._t0 > self.max_seconds or len(self._samples) >= self.max_requests:
                break
            started, phase = time.monotonic(), self.phase
            try:
                status, body = self._once(conn)
            except RETRYABLE as exc:
                conn.close()
                conn = self._connect()
                if used:  # the server closed an idle reused connection: retry once, as a browser does
                    with self._lock:
                        self._retries += 1
                    try:
                        status, body = self._once(conn)
                    except (OSError, http.client.HTTPException) as again:
                        status, body = 0, f"{type(again).__name__} on retry"
                else:
                    status, body = 0, type(exc).__name__
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = self._connect()
                status, body = 0, type(exc).__name__
            used = status != 0
            sample = Sample(started - self._t0, time.monotonic() - started, status, body, phase)
            with self._lock:
                self._samples.append(sample)
                if not 200 <= status < 300 and len(self._errors) < 20:
                    self._errors.append(f"{sample.at:.3f}s {status} {body[:80]}")
        conn.close()
