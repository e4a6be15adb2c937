"""The Linode gateway: the only module that imports ``linode_api4``.

Retries 408/429/5xx with ``Retry-After`` honoured (the SDK's urllib3 retry), and turns API errors
into golive errors that say what to do. Records are handled as plain dicts of their fields.

A POST is the one request that is not safe to send twice: the SDK retries it like the rest, so a
create whose answer was lost (a timeout, a 5xx after the record was made) would make a second,
equal record — two A records for one name, a site answering from both servers at random. Here a
POST is retried by urllib3 only when it cannot have been carried out (refused connection, 429);
:meth:`LinodeDns.create` looks for the record before sending and again after an answer it did not
get, and sends again only when the record is not there.

A PUT is made conditional as far as the API allows (it has no ETag or If-Match): :meth:`LinodeDns.update`
with ``expect`` reads the record right before each PUT and raises :class:`RecordChanged` when someone else
changed it since the plan. A 429 on the PUT is waited out here, not by urllib3, so the record is read again
after the wait (up to a minute) and not overwritten blind. Every rate-limit wait is told to ``on_wait``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from golive.errors import ConfigError, GoliveError

if TYPE_CHECKING:
    from golive.config.models import GoliveConfig

__all__ = ["FIELDS", "MUTABLE", "LinodeDns", "OutcomeUnknown", "RecordChanged", "canonical_ip", "from_config"]

FIELDS = ("id", "type", "name", "target", "priority", "weight", "port", "service", "protocol", "ttl_sec", "tag")
MUTABLE = ("target", "priority", "weight", "port", "service", "protocol", "ttl_sec", "tag")


def from_config(config: GoliveConfig) -> LinodeDns:
    linode = config.require("linode")
    return LinodeDns(linode.token.resolve(), linode.api_url, retries=linode.retries, interval=linode.retry_interval,
                     timeout=linode.timeout, token_ref=str(linode.token))


class LinodeDns:
    def __init__(self, token: str, api_url: str, *, retries: int = 5, interval: float = 1.0,
                 timeout: float = 10.0, token_ref: str = "") -> None:
        from linode_api4 import LinodeClient
        from requests.adapters import HTTPAdapter

        self.api_url, self.timeout = api_url, timeout
        self.token_ref = token_ref  # (the token's reference, env:NAME or file:PATH, named by an error; never the token)
        self.scopes: set[str] | None = None  # the token's OAuth scopes, as the last answer said (X-OAuth-Scopes)
        # told each rate-limit wait before it starts, and each update whose answer was lost but which was made
        self.on_wait: Callable[[str], None] | None = None
        self._what = ""  # the call in flight (named in the wait's message)
        # PUTs and POSTs that may have been carried out (sent, or about to be; not one refused before it reached the
        # API): none, and nothing was changed through this gateway
        self.writes = 0
        self._zone_ttls: dict[int, int] = {}  # domain id -> its ttl_sec, as the domain's lookup read it
        dns = self
        self.client = LinodeClient(token, base_url=api_url, retry=retries > 0, retry_max=retries,
                                   retry_rate_limit_interval=interval, retry_statuses=[500, 503, 504])

        class TimedAdapter(HTTPAdapter):
            """The SDK sends without a timeout: an API that accepts the connection and never answers
            would hold golive (and `golive status`) forever. Each attempt waits at most ``timeout``; a
            silent API is retried once (a refused or unreachable one twice), not ``retries`` times."""

            def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                if kwargs.get("timeout") is None:
                    kwargs["timeout"] = timeout
                return super().send(request, *args, **kwargs)

        sdk_retry = self.client.session.get_adapter(api_url).max_retries

        class PostOnceRetry(type(sdk_retry)):  # type: ignore[misc]
            """The SDK's retry, but a POST that may have been carried out is not sent again."""

            def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
                if method.upper() == "POST" and status_code != 429:  # 429: refused before anything was done
                    return False
                if method.upper() == "PUT" and status_code == 429:  # waited out by update(), which reads again
                    return False
                return bool(super().is_retry(method, status_code, has_retry_after))

            def sleep(self, response: Any = None) -> None:
                if response is not None and response.status == 429:
                    after = self.get_retry_after(response) if self.respect_retry_after_header else None
                    dns._waiting(after or self.get_backoff_time())
                super().sleep(response)

            def _is_method_retryable(self, method: str) -> bool:  # read errors: the request was sent
                return method.upper() != "POST" and bool(super()._is_method_retryable(method))

        self.retries, self.interval = retries, interval
        retry = PostOnceRetry.__new__(PostOnceRetry)  # the SDK's settings, this class (`new()` keeps it)
        retry.__dict__.update(sdk_retry.new(connect=min(retries, 2), read=min(retries, 1)).__dict__)
        adapter = TimedAdapter(max_retries=retry)
        self.client.session.mount("http://", adapter)
        self.client.session.mount("https://", adapter)

        def scopes(response: Any, *args: Any, **kwargs: Any) -> None:
            if "X-OAuth-Scopes" in response.headers:
                self.scopes = set(response.headers["X-OAuth-Scopes"].split())

        self.client.session.hooks["response"].append(scopes)

    def may_write(self) -> bool | None:
        """Whether the token may change records, as the API's answers so far say (None: not known yet)."""
        if self.scopes is None:
            return None
        return bool(self.scopes & {"*", "domains:read_write"})

    def token_fix(self) -> str:
        """Where to put a token that works: the config key and, when known, its reference."""
        return f"[linode].token ({self.token_ref})" if self.token_ref else "[linode].token"

    def _call(self, what: str, fn: Any, *args: Any, unsure: bool = False, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with API errors made golive errors. ``unsure``: the request is a POST, and
        an answer lost after it was sent (a read timeout, a dropped connection, a 408/5xx) raises
        :class:`OutcomeUnknown`: the record may or may not have been made."""
        from linode_api4.errors import ApiError
        from requests.exceptions import RequestException

        self._what = what
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            error = _translate(exc, what, self.api_url, self.token_fix())
            if unsure and exc.status in (408, 500, 502, 503, 504):
                raise OutcomeUnknown(error.message, hint=error.hint) from None
            raise error from None
        except RequestException as exc:
            text = str(exc)
            reason = (f"no answer within {self.timeout:g}s ([linode].timeout)" if "Read timed out" in text else
                      "connection refused" if "Connection refused" in text else
                      "the connection timed out" if "timed out" in text else type(exc).__name__)
            message = f"cannot reach the Linode API at {self.api_url} ({what}): {reason}"
            if unsure and _sent(exc):
                raise OutcomeUnknown(message, hint="check [linode].api_url and the network") from None
            # (a write whose answer was lost never gets here: update() reads it back, create() raises OutcomeUnknown)
            raise GoliveError(message, hint="check [linode].api_url and the network; nothing was changed by this call") \
                from None

    def domain_id(self, domain: str) -> int:
        from linode_api4 import Domain

        found = self._listing(f"find domain {domain}", lambda: list(self.client.domains(Domain.domain == domain)))
        if not found:
            raise ConfigError(f"domain {domain} is not in this Linode account",
                              hint="check [dns].domain, or that the token belongs to the account holding it")
        self._zone_ttls[int(found[0].id)] = int(found[0].ttl_sec or 0)
        return int(found[0].id)

    def zone_ttl(self, domain_id: int) -> int:
        """The domain's own ``ttl_sec``: what a record's ``ttl_sec`` of 0 stands for (0 here too: Linode's default,
        :data:`golive.dns.ttl.DEFAULT_TTL`). Read with the domain's lookup, else asked for."""
        if domain_id not in self._zone_ttls:
            found = self._call(f"read domain {domain_id}", self.client.get, f"/domains/{domain_id}")
            self._zone_ttls[domain_id] = int(found.get("ttl_sec") or 0)
        return self._zone_ttls[domain_id]

    def records(self, domain_id: int) -> list[dict[str, Any]]:
        from linode_api4 import Domain

        def load() -> list[dict[str, Any]]:
            return [_fields(r) for r in Domain(self.client, domain_id).records]

        return list(self._listing(f"list records of domain {domain_id}", load))

    def _listing(self, what: str, load: Callable[[], list[Any]], attempts: int = 3) -> list[Any]:
        """A paged listing, read again when it changed while golive paged it: the SDK raises when the count of
        items changes between pages (a record added or deleted meanwhile, in a zone of over 100 records)."""
        for attempt in range(1, attempts + 1):
            try:
                return list(self._call(what, load))
            except RuntimeError as exc:
                if "has changed since creation" not in str(exc):
                    raise
                if attempt == attempts:
                    raise GoliveError(f"the Linode listing changed while golive read it, {attempts} times ({what}:"
                                      " records were added or deleted meanwhile)",
                                      hint="run the command again once no one is editing the zone; nothing was"
                                           " changed by this call") from None
                time.sleep(self.interval)
        raise AssertionError("unreachable")

    def record(self, domain_id: int, record_id: int) -> dict[str, Any] | None:
        """The record as it is now; None when it is gone (deleted since)."""
        from linode_api4.errors import ApiError

        def read() -> dict[str, Any] | None:
            try:
                found = dict(self.client.get(f"/domains/{domain_id}/records/{record_id}"))
            except ApiError as exc:
                if exc.status == 404:
                    return None
                raise
            if found.get("type") in ("A", "AAAA"):
                found["target"] = canonical_ip(found.get("target"))
            return found

        answer: dict[str, Any] | None = self._call(f"read record {record_id}", read)
        return answer

    def update(self, domain_id: int, record_id: int, values: dict[str, Any],
               expect: dict[str, Any] | None = None) -> dict[str, Any]:
        """Set ``values`` on the record; the record as Linode has it after. ``expect``: the values the caller
        saw; if the record, read right before each PUT (also after a rate-limit wait), holds others and is not
        already as asked, raise :class:`RecordChanged` instead of overwriting someone else's change."""
        from linode_api4 import DomainRecord
        from linode_api4.errors import ApiError
        from requests.exceptions import RequestException

        def load() -> Any:
            try:
                return self.client.load(DomainRecord, record_id, domain_id)
            except ApiError as exc:
                if exc.status == 404 and expect is not None:
                    raise RecordChanged(f"record {record_id} was deleted since it was read", record=None) from None
                raise

        def save() -> dict[str, Any]:
            for attempt in range(self.retries + 1):
                record = load()
                now = _fields(record)
                if expect is not None and any(now.get(k) != v for k, v in expect.items()) \
                        and any(now.get(k) != v for k, v in values.items()):
                    raise RecordChanged(f"record {record_id} was changed since it was read", record=now)
                for key, value in values.items():
                    setattr(record, key, value)
                try:
                    self._write(record.save)
                except ApiError as exc:
                    if exc.status != 429 or attempt == self.retries:
                        raise
                    wait = _retry_after(exc, self.interval)
                    self._waiting(wait)
                    time.sleep(wait)
                    continue
                except RequestException as exc:
                    if not _sent(exc):
                        raise
                    return self._lost(domain_id, record_id, values, exc)
                return _fields(load())  # read back
            raise AssertionError("unreachable")

        return dict(self._call(f"update record {record_id}", save))

    def _write(self, send: Callable[[], Any]) -> Any:
        """A PUT or POST, counted in ``writes`` unless it never reached the API (a refused connection)."""
        from requests.exceptions import RequestException

        self.writes += 1
        try:
            return send()
        except RequestException as exc:
            if not _sent(exc):
                self.writes -= 1
            raise

    def _lost(self, domain_id: int, record_id: int, values: dict[str, Any], exc: Exception) -> dict[str, Any]:
        """A PUT was sent and its answer lost (no answer within the timeout, the connection dropped): Linode may have
        carried it out. The record is read back: holding ``values``, the update was made (said, and returned); else
        an error saying what the read-back found."""
        reason = f"no answer within {self.timeout:g}s ([linode].timeout)" if "timed out" in str(exc) else \
            f"the connection was lost ({type(exc).__name__})"
        what = f"the Linode API at {self.api_url} gave no answer to update record {record_id}: {reason}"
        try:
            now = self.record(domain_id, record_id)
        except GoliveError as again:
            raise GoliveError(f"{what}; the change may have been made, and reading the record back failed too:"
                              f" {again.message}", hint="check [linode].api_url and the network, then the record"
                              " (`golive dns show`)") from None
        if now is not None and all(now.get(k) == v for k, v in values.items()):
            if self.on_wait is not None:
                self.on_wait(f"{what}; read back, it holds {_shown(values)}: the change was made")
            return {k: now.get(k) for k in FIELDS}
        holds = "it was deleted" if now is None else f"it holds {_shown({k: now.get(k) for k in values})} still"
        raise GoliveError(f"{what}; the change may have been made: read back right after, {holds} (Linode may yet"
                          " carry it out)", hint="check [linode].api_url and the network, then the record (`golive dns"
                                                 " show`)")

    def _waiting(self, seconds: float) -> None:
        if self.on_wait is not None:
            self.on_wait(f"golive waits {math.ceil(seconds)} s for the Linode API's rate limit ({self._what})")

    def find(self, domain_id: int, like: dict[str, Any]) -> dict[str, Any] | None:
        """A record of the same type and name pointing at the same target, if the domain has one."""
        same = [r for r in self.records(domain_id)
                if r["type"] == like["type"] and r["name"] == like["name"] and r["target"] == like["target"]]
        return same[0] if same else None

    def create(self, domain_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """Create a record, or return the equal one the domain already has (never two)."""
        body = {k: v for k, v in values.items() if k != "id" and v is not None}
        attempts = 1 + min(self.retries, 2)
        for attempt in range(1, attempts + 1):
            if (found := self.find(domain_id, body)) is not None:
                return found  # made by an earlier attempt whose answer was lost, or by someone else
            try:
                return dict(self._call("create record", self._write, lambda: self.client.post(
                    f"/domains/{domain_id}/records", data=body), unsure=True))
            except OutcomeUnknown:
                if attempt == attempts:
                    if (found := self.find(domain_id, body)) is not None:
                        return found
                    raise
                time.sleep(self.interval)  # (as the SDK's own retries wait)
        raise AssertionError("unreachable")


class OutcomeUnknown(GoliveError):
    """A request was sent and its answer lost: whether Linode carried it out is not known from here."""


class RecordChanged(GoliveError):
    """A record is no longer as the caller saw it: ``record`` is what it holds now (None: deleted)."""

    def __init__(self, message: str, *, record: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.record = record


def _sent(exc: Exception) -> bool:
    """Whether a request that failed without an answer reached the API (a read timeout, a dropped connection): then
    it may have been carried out. A refused connection, or one never made (a connect timeout, no route), was not."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ConnectTimeout, ReadTimeout

    text = str(exc)
    return isinstance(exc, ReadTimeout) or (isinstance(exc, RequestsConnectionError) and not isinstance(
        exc, ConnectTimeout) and "Connection refused" not in text and "NewConnectionError" not in text)


def _shown(values: dict[str, Any]) -> str:
    return str(values["target"]) if set(values) == {"target"} else " ".join(f"{k}={v}" for k, v in values.items())


def _retry_after(exc: Any, default: float) -> float:
    """The seconds a 429 asks to wait (``Retry-After``), else ``default``."""
    try:
        return max(0.0, float(exc.response.headers["Retry-After"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        return default


def _fields(record: Any) -> dict[str, Any]:
    fields = {key: getattr(record, key) for key in FIELDS}
    if fields["type"] in ("A", "AAAA"):  # one spelling per address ("2001:0DB8::10" is 2001:db8::10), as the config's
        fields["target"] = canonical_ip(fields["target"])
    return fields


def canonical_ip(text: Any) -> Any:
    """An IP address in its one canonical spelling; anything else as it is."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        return text


def _translate(exc: Any, what: str, api_url: str, token: str = "[linode].token") -> GoliveError:
    reasons = "; ".join(exc.errors) or str(exc)
    if exc.status == 401:
        return ConfigError(f"Linode rejected the token ({what}: 401 {reasons})",
                           hint=f"check {token}: it must be a valid personal access token")
    if exc.status == 403:
        return GoliveError(f"the Linode token may not do this ({what}: 403 {reasons})",
                           hint=f"use a token with the domains:read_write scope in {token}")
    if exc.status == 404:
        return GoliveError(f"not found in Linode ({what}: 404)", hint="check [dns].domain and [dns].records")
    if exc.status == 429:
        return GoliveError(f"Linode rate limit still exceeded after retries ({what})",
                           hint="wait a minute and run again; raise [linode].retries to wait longer")
    return GoliveError(f"the Linode API failed ({what}: {exc.status} {reasons}) after retries",
                       hint=f"check Linode's status page; the API at {api_url} may be degraded")
