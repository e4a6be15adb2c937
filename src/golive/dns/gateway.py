"""The Linode gateway: the only module that imports ``linode_api4``.

Retries 408/429/5xx with ``Retry-After`` honoured (the SDK's urllib3 retry), and turns API errors
into golive errors that say what to do. Records are handled as plain dicts of their fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from golive.errors import ConfigError, GoliveError

if TYPE_CHECKING:
    from golive.config.models import GoliveConfig

__all__ = ["FIELDS", "MUTABLE", "LinodeDns", "from_config"]

FIELDS = ("id", "type", "name", "target", "priority", "weight", "port", "service", "protocol", "ttl_sec", "tag")
MUTABLE = ("target", "priority", "weight", "port", "service", "protocol", "ttl_sec", "tag")


def from_config(config: GoliveConfig) -> LinodeDns:
    linode = config.require("linode")
    return LinodeDns(linode.token.resolve(), linode.api_url, retries=linode.retries, interval=linode.retry_interval,
                     timeout=linode.timeout)


class LinodeDns:
    def __init__(self, token: str, api_url: str, *, retries: int = 5, interval: float = 1.0,
                 timeout: float = 10.0) -> None:
        from linode_api4 import LinodeClient
        from requests.adapters import HTTPAdapter

        self.api_url, self.timeout = api_url, timeout
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

        retry = self.client.session.get_adapter(api_url).max_retries.new(connect=min(retries, 2), read=min(retries, 1))
        adapter = TimedAdapter(max_retries=retry)
        self.client.session.mount("http://", adapter)
        self.client.session.mount("https://", adapter)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from linode_api4.errors import ApiError
        from requests.exceptions import RequestException

        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            raise _translate(exc, what, self.api_url) from None
        except RequestException as exc:
            text = str(exc)
            reason = (f"no answer within {self.timeout:g}s ([linode].timeout)" if "Read timed out" in text else
                      "connection refused" if "Connection refused" in text else
                      "the connection timed out" if "timed out" in text else type(exc).__name__)
            raise GoliveError(f"cannot reach the Linode API at {self.api_url} ({what}): {reason}",
                              hint="check [linode].api_url and the network; nothing was changed by this call") from None

    def domain_id(self, domain: str) -> int:
        from linode_api4 import Domain

        found = self._call(f"find domain {domain}", lambda: list(self.client.domains(Domain.domain == domain)))
        if not found:
            raise ConfigError(f"domain {domain} is not in this Linode account",
                              hint="check [dns].domain, or that the token belongs to the account holding it")
        return int(found[0].id)

    def records(self, domain_id: int) -> list[dict[str, Any]]:
        from linode_api4 import Domain

        def load() -> list[dict[str, Any]]:
            return [_fields(r) for r in Domain(self.client, domain_id).records]

        return list(self._call(f"list records of domain {domain_id}", load))

    def record(self, domain_id: int, record_id: int) -> dict[str, Any] | None:
        from linode_api4.errors import ApiError

        try:
            return dict(self.client.get(f"/domains/{domain_id}/records/{record_id}"))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise _translate(exc, f"read record {record_id}", self.api_url) from None

    def update(self, domain_id: int, record_id: int, values: dict[str, Any]) -> dict[str, Any]:
        from linode_api4 import DomainRecord

        def save() -> dict[str, Any]:
            record = self.client.load(DomainRecord, record_id, domain_id)
            for key, value in values.items():
                setattr(record, key, value)
            record.save()
            return _fields(self.client.load(DomainRecord, record_id, domain_id))  # read back

        return dict(self._call(f"update record {record_id}", save))

    def create(self, domain_id: int, values: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in values.items() if k != "id" and v is not None}
        return dict(self._call("create record", self.client.post, f"/domains/{domain_id}/records", data=body))


def _fields(record: Any) -> dict[str, Any]:
    return {key: getattr(record, key) for key in FIELDS}


def _translate(exc: Any, what: str, api_url: str) -> GoliveError:
    reasons = "; ".join(exc.errors) or str(exc)
    if exc.status == 401:
        return ConfigError(f"Linode rejected the token ({what}: 401 {reasons})",
                           hint="check [linode].token: it must be a valid personal access token")
    if exc.status == 403:
        return GoliveError(f"the Linode token may not do this ({what}: 403 {reasons})",
                           hint="use a token with the domains:read_write scope")
    if exc.status == 404:
        return GoliveError(f"not found in Linode ({what}: 404)", hint="check [dns].domain and [dns].records")
    if exc.status == 429:
        return GoliveError(f"Linode rate limit still exceeded after retries ({what})",
                           hint="wait a minute and run again; raise [linode].retries to wait longer")
    return GoliveError(f"the Linode API failed ({what}: {exc.status} {reasons}) after retries",
                       hint=f"check Linode's status page; the API at {api_url} may be degraded")
