"""A local emulator of the Linode API v4 Domains endpoints, for rehearsals and tests.

It is held to ``../shared/linode/`` (Linode's OpenAPI description, the official SDK's fixtures and
the behaviour notes there): bearer tokens with scopes (401 unknown token, 403 read-only token
writing), the pagination envelope, ``X-Filter``, TTL rounding, the apex as ``""``, implicit
ns1-5.linode.com NS records (zone file only), FQDN normalisation of CNAME/MX targets, the error
envelope, the OAuth scope headers and rate limits with ``Retry-After``/``X-RateLimit-*``. The
operations themselves are in :mod:`golive.sandbox.linode_api`.

State lives in a JSON file so the emulator can run as its own process and be inspected, and so the
sandbox DNS server can serve the same zones. Faults are set in the state's ``faults`` object
(see :class:`Faults`).

Run by hand: ``golive sandbox linode --port 8780 --state linode.json``.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from golive.sandbox.linode_api import Api, ApiError, new_state, public

__all__ = ["Faults", "LinodeEmulator"]

TEMPLATES = {
    "list_domains": "/domains", "create_domain": "/domains", "import_domain": "/domains/import",
    "get_domain": "/domains/{domainId}", "update_domain": "/domains/{domainId}",
    "delete_domain": "/domains/{domainId}", "clone_domain": "/domains/{domainId}/clone",
    "zone_file": "/domains/{domainId}/zone-file", "list_records": "/domains/{domainId}/records",
    "create_record": "/domains/{domainId}/records", "get_record": "/domains/{domainId}/records/{recordId}",
    "update_record": "/domains/{domainId}/records/{recordId}",
    "delete_record": "/domains/{domainId}/records/{recordId}",
}


@dataclass
class Faults:
    """Fault injection, read from the state's ``faults`` object on every request:

    - ``latency_ms``: added to every response;
    - ``rules``: a list of ``{"status": 429|5xx, "method": "PUT", "path": "regex", "nth": N,
      "skip": K, "times": T, "retry_after": S, "processed": bool, "delay_ms": D}``: the Nth request
      overall (``nth``), or requests matching method/path after skipping the first K matches, fail
      with that status, T times (absent = every time). With ``"processed": true`` the request is
      carried out first and only its answer is lost: the status replaces it. A rule with
      ``delay_ms`` and no status carries the request out and answers that late: a client that gives
      up first does not know the change was made. With a status too, ``delay_ms`` delays the error (a
      request not carried out, unless ``processed``, whose client gives up first all the same).

    A rule's counts (``skip``, ``times``) are kept by its content, not its place in the list: a new rule written
    where an old one was (the state file edited by hand) starts from zero.
    """

    seen: dict[str, int] = field(default_factory=dict)  # rule (its JSON) -> matching requests seen
    fired: dict[str, int] = field(default_factory=dict)

    def check(self, spec: dict[str, Any], count: int, method: str, path: str,
              processed: bool = False) -> ApiError | float | None:
        """The fault for this request (an error, or seconds to wait before answering), looking at the
        rules that act before the request is carried out, or (``processed``) after it."""
        for index, rule in _keyed(spec.get("rules", [])):
            if bool(rule.get("processed") or "status" not in rule) != processed:
                continue
            if "nth" in rule:
                hit = count == rule["nth"]
            else:
                if rule.get("method", method) != method or not re.search(rule.get("path", ""), path):
                    continue
                self.seen[index] = self.seen.get(index, 0) + 1
                hit = self.seen[index] > rule.get("skip", 0)
            if hit and (rule.get("times") is None or self.fired.get(index, 0) < rule["times"]):
                self.fired[index] = self.fired.get(index, 0) + 1
                if "status" not in rule:
                    return float(rule.get("delay_ms", 0)) / 1000
                status = int(rule["status"])
                headers = {"Retry-After": str(rule.get("retry_after", 1))} if status == 429 else {}
                reason = {429: "Too Many Requests", 401: "Invalid Token", 403: "Unauthorized"}.get(
                    status, "Please try again later (injected fault)")
                return ApiError(status, reason, headers=headers, delay=float(rule.get("delay_ms", 0)) / 1000)
        return None


def _keyed(rules: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each rule with its key: its JSON, and which of the equal rules it is (two equal rules count apart)."""
    keyed, equal = [], dict[str, int]()
    for rule in rules:
        text = json.dumps(rule, sort_keys=True)
        equal[text] = equal.get(text, 0) + 1
        keyed.append((f"{text}#{equal[text]}", rule))
    return keyed


class Store:
    """The state file, read and written under one lock; writes are atomic (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        if not path.exists():
            self.save(new_state())

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def save(self, state: dict[str, Any], changed: bool = True) -> None:
        if changed:
            state["version"] = state.get("version", 0) + 1
            state["changed_at"] = time.time()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


# (method, regex, handler name, needs write scope, paginated)
ROUTES: list[tuple[str, re.Pattern[str], str, bool, bool]] = [
    ("GET", re.compile(r"^/v4/domains$"), "list_domains", False, True),
    ("POST", re.compile(r"^/v4/domains$"), "create_domain", True, False),
    ("POST", re.compile(r"^/v4/domains/import$"), "import_domain", True, False),
    ("GET", re.compile(r"^/v4/domains/(\d+)$"), "get_domain", False, False),
    ("PUT", re.compile(r"^/v4/domains/(\d+)$"), "update_domain", True, False),
    ("DELETE", re.compile(r"^/v4/domains/(\d+)$"), "delete_domain", True, False),
    ("POST", re.compile(r"^/v4/domains/(\d+)/clone$"), "clone_domain", True, False),
    ("GET", re.compile(r"^/v4/domains/(\d+)/zone-file$"), "zone_file", False, False),
    ("GET", re.compile(r"^/v4/domains/(\d+)/records$"), "list_records", False, True),
    ("POST", re.compile(r"^/v4/domains/(\d+)/records$"), "create_record", True, False),
    ("GET", re.compile(r"^/v4/domains/(\d+)/records/(\d+)$"), "get_record", False, False),
    ("PUT", re.compile(r"^/v4/domains/(\d+)/records/(\d+)$"), "update_record", True, False),
    ("DELETE", re.compile(r"^/v4/domains/(\d+)/records/(\d+)$"), "delete_record", True, False),
]


class RateLimiter:
    def __init__(self) -> None:
        self.general: dict[str, deque[float]] = {}
        self.paginated: dict[str, deque[float]] = {}

    def hit(self, token: str, paginated: bool, limits: dict[str, int]) -> dict[str, str]:
        now = time.monotonic()
        checks = [(self.general, 120.0, limits.get("general_per_2min", 800))]
        if paginated:
            checks.append((self.paginated, 60.0, limits.get("paginated_per_min", 200)))
        headers: dict[str, str] = {}
        for windows, span, limit in checks:
            window = windows.setdefault(token, deque())
            while window and window[0] <= now - span:
                window.popleft()
            reset = int(time.time() + (span - (now - window[0]) if window else span))
            if len(window) >= limit:
                retry = max(1, math.ceil(span - (now - window[0])))
                raise ApiError(429, "Too Many Requests", headers={
                    "Retry-After": str(retry), "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset)})
            window.append(now)
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - len(window)),
                       "X-RateLimit-Reset": str(reset)}
        return headers


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read responses, not logs
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {"X-Accepted-OAuth-Scopes": "domains:read_only"}
        route = next(((m, rx, name, write, paged) for m, rx, name, write, paged in ROUTES
                      if m == method and rx.match(url.path)), None)
        template = url.path
        delay = 0.0
        try:
            with emulator.store.lock:
                state = emulator.store.load()
                emulator.count += 1
                spec = state.get("faults", {})
                if spec.get("latency_ms"):
                    time.sleep(spec["latency_ms"] / 1000)
                if route is None:
                    raise ApiError(404, "Not found")
                _, rx, name, write, paged = route
                template = TEMPLATES[name]
                headers["X-Accepted-OAuth-Scopes"] = "domains:read_write" if write else "domains:read_only"
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                scopes = state.get("tokens", {}).get(token)
                if not token or scopes is None:
                    raise ApiError(401, "Invalid Token")
                headers["X-OAuth-Scopes"] = " ".join(scopes)
                if write and "domains:read_write" not in scopes and "*" not in scopes:
                    raise ApiError(403, "Unauthorized")
                headers.update(emulator.limiter.hit(token, paged and method == "GET", state.get("limits", {})))
                fault = emulator.faults.check(spec, emulator.count, method, url.path)
                if isinstance(fault, ApiError):  # (a delay acts after the request: processed=True below)
                    raise fault
                body = json.loads(raw) if raw else {}
                flt = json.loads(self.headers.get("X-Filter") or "{}")
                api = Api(state)
                status, payload = 200, self._dispatch(api, name, rx.match(url.path).groups(),  # type: ignore[union-attr]
                                                      body, flt, parse_qs(url.query))
                if api.changed:
                    emulator.store.save(state)
                after = emulator.faults.check(spec, emulator.count, method, url.path, processed=True)
                if isinstance(after, ApiError):
                    raise after
                delay = after or 0.0
        except ApiError as exc:
            status, payload = exc.status, exc.body()
            headers.update(exc.headers)
            delay = exc.delay
        except json.JSONDecodeError:
            status, payload = 400, {"errors": [{"reason": "Request body or X-Filter is not valid JSON"}]}
        emulator.responses.append((method, template, status, payload))
        if delay:  # outside the store's lock: other clients are served meanwhile
            time.sleep(delay)
        data = json.dumps(payload).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _dispatch(api: Api, name: str, ids: tuple[str, ...], body: dict[str, Any], flt: dict[str, Any],
                  query: dict[str, list[str]]) -> dict[str, Any]:
        nums = [int(i) for i in ids]
        if name == "list_domains":
            return api.list_domains(flt, query)
        if name == "list_records":
            return api.list_records(nums[0], flt, query)
        if name == "get_domain":
            return public(api.domain(nums[0]))
        if name == "get_record":
            return dict(api.record(api.domain(nums[0]), nums[1]))
        if name in ("create_domain", "import_domain"):
            return getattr(api, name)(body)  # type: ignore[no-any-return]
        if name in ("update_domain", "clone_domain", "create_record"):
            return getattr(api, name)(nums[0], body)  # type: ignore[no-any-return]
        if name == "update_record":
            return api.update_record(nums[0], nums[1], body)
        return getattr(api, name)(*nums)  # type: ignore[no-any-return]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: LinodeEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up before a late answer (``delay_ms``: what the fault is for) is no error of the
        emulator's: no traceback on stderr, where it landed in the output of the golive under test."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):  # (BrokenPipeError, ConnectionResetError)
            return
        super().handle_error(request, client_address)


class LinodeEmulator:
    """The emulator as an object: ``start()`` serves on a loopback port in a thread."""

    def __init__(self, state_path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = Store(state_path)
        self.server = _Server((host, port), _Handler)
        self.server.emulator = self
        self.faults = Faults()
        self.limiter = RateLimiter()
        self.count = 0
        # (method, path template, status, body) of every response, so tests can check them all
        self.responses: list[tuple[str, str, int, dict[str, Any]]] = []
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v4"

    def start(self) -> LinodeEmulator:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="linode-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def edit(self, change: Any) -> None:
        """Change the state in place (seed data, tokens, faults): ``change(state)``."""
        with self.store.lock:
            state = self.store.load()
            change(state)
            self.store.save(state)
            self.faults = Faults()

    def serve_forever(self) -> None:
        self.server.serve_forever()
