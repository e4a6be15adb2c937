"""The emulator against Linode's description and the official SDK's own call patterns, over real
HTTP on loopback. (Every response of every DNS test is validated against the OpenAPI spec by the
`emulator` fixture's teardown.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from linode_api4 import Domain, DomainRecord, LinodeClient
from linode_api4.errors import ApiError

from golive.sandbox.linode import LinodeEmulator
from golive.sandbox.linode_api import round_ttl
from tests.dns.conftest import RO_TOKEN, TOKEN, shared_linode, spec_validator


def client(emulator: LinodeEmulator, token: str = TOKEN) -> LinodeClient:
    return LinodeClient(token, base_url=emulator.url, retry_rate_limit_interval=0.05)


def test_sdk_lists_more_than_100_records_across_pages(emulator: LinodeEmulator) -> None:
    sdk = client(emulator)
    domain = sdk.domains(Domain.domain == "example.org")[0]
    for i in range(120):
        domain.record_create("TXT", name=f"t{i}", target=f"value {i}")
    records = list(domain.records)
    assert len(records) == 7 + 120
    pages = [(m, t, s, b["page"], b["pages"]) for m, t, s, b in emulator.responses if t.endswith("/records") and m == "GET"]
    assert [p[3] for p in pages] == [1, 2] and pages[0][4] == 2


def test_sdk_record_save_and_filters(emulator: LinodeEmulator) -> None:
    sdk = client(emulator)
    [domain] = sdk.domains(Domain.domain == "example.org")
    www = next(r for r in domain.records if r.name == "www" and r.type == "A")
    www.target = "198.51.100.20"
    www.ttl_sec = 200  # rounds up to 300
    www.save()
    again = sdk.load(DomainRecord, www.id, domain.id)
    assert (again.target, again.ttl_sec) == ("198.51.100.20", 300)
    apex = next(r for r in domain.records if r.name == "" and r.type == "A")
    apex.ttl_sec = 7000
    apex.save()  # the SDK omits the empty apex name: the name must stay ""
    assert sdk.load(DomainRecord, apex.id, domain.id).name == ""
    only_a = sdk.get(f"/domains/{domain.id}/records", filters={"type": "A"})
    assert {r["name"] for r in only_a["data"]} == {"", "www"}
    either = sdk.get(f"/domains/{domain.id}/records", filters={"+or": [{"type": "MX"}, {"type": "CNAME"}]})
    assert sorted(r["type"] for r in either["data"]) == ["CNAME", "MX"]
    ordered = sdk.get(f"/domains/{domain.id}/records", filters={"+order_by": "name", "+order": "desc"})
    assert ordered["data"][0]["name"] == "www"
    with pytest.raises(ApiError) as caught:
        sdk.get(f"/domains/{domain.id}/records", filters={"ttl_sec": 300})
    assert caught.value.status == 400 and caught.value.errors == ["Cannot filter on ttl_sec"]


def test_normalisation_ttl_apex_and_implicit_ns(emulator: LinodeEmulator) -> None:
    sdk = client(emulator)
    [domain] = sdk.domains(Domain.domain == "example.org")
    by_type = {r.type: r for r in domain.records}
    assert by_type["MX"].target == "mail.example.org"  # relative made fully qualified
    assert by_type["CNAME"].target == "www.example.org"  # trailing dot dropped
    assert all(r.type != "NS" for r in domain.records)  # the five NS records are implicit
    zone_file = sdk.get(f"/domains/{domain.id}/zone-file")["zone_file"]
    assert [line for line in zone_file if " NS " in line] == [f"@    NS  ns{i}.linode.com." for i in range(1, 6)]
    assert [round_ttl(v) for v in (0, 1, 30, 31, 120, 121, 299, 301, 86401, 5_000_000)] == [
        0, 30, 30, 120, 120, 300, 300, 3600, 172800, 2419200]
    created = domain.record_create("A", name="api.example.org", target="192.0.2.7", ttl_sec=45)
    assert (created.name, created.ttl_sec) == ("api", 120)


def test_auth_scopes_and_error_envelope(emulator: LinodeEmulator) -> None:
    url = f"{emulator.url}/domains"
    no_token = httpx.get(url)
    assert no_token.status_code == 401 and no_token.json() == {"errors": [{"reason": "Invalid Token"}]}
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    ro = httpx.get(url, headers={"Authorization": f"Bearer {RO_TOKEN}"})
    assert ro.status_code == 200
    assert ro.headers["X-OAuth-Scopes"] == "domains:read_only"
    assert ro.headers["X-Accepted-OAuth-Scopes"] == "domains:read_only"
    write = httpx.post(url, json={"domain": "x.org", "soa_email": "a@x.org"},
                       headers={"Authorization": f"Bearer {RO_TOKEN}"})
    assert write.status_code == 403 and write.headers["X-Accepted-OAuth-Scopes"] == "domains:read_write"
    bad = httpx.post(f"{emulator.url}/domains/1/records", json={"type": "A", "name": "x", "target": "not-an-ip"},
                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 400
    assert bad.json() == {"errors": [{"reason": "Must be a valid IPv4 address", "field": "target"}]}
    page = httpx.get(url, params={"page_size": 10}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.json() == {"errors": [{"reason": "Must be between 25 and 500", "field": "page_size"}]}


def test_rate_limit_answers_429_with_retry_after(emulator: LinodeEmulator) -> None:
    emulator.edit(lambda s: s["limits"].update({"paginated_per_min": 3}))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    statuses = [httpx.get(f"{emulator.url}/domains", headers=headers) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    last = statuses[-1]
    assert int(last.headers["Retry-After"]) >= 1
    assert last.headers["X-RateLimit-Limit"] == "3" and last.headers["X-RateLimit-Remaining"] == "0"
    assert statuses[0].headers["X-RateLimit-Remaining"] == "2"


def test_clone_import_and_delete(emulator: LinodeEmulator) -> None:
    sdk = client(emulator)
    [domain] = sdk.domains(Domain.domain == "example.org")
    clone = sdk.post(f"/domains/{domain.id}/clone", data={"domain": "example.net"})
    assert clone["domain"] == "example.net"
    assert len(list(sdk.load(Domain, clone["id"]).records)) == len(list(domain.records))
    imported = sdk.post("/domains/import", data={"domain": "example.com", "remote_nameserver": "ns.example.com"})
    assert imported["domain"] == "example.com"
    sdk.load(Domain, imported["id"]).delete()
    assert [d.domain for d in sdk.domains()] == ["example.org", "example.net"]


def test_the_validator_accepts_the_sdk_fixtures_and_rejects_a_wrong_shape() -> None:
    validate = spec_validator()
    fixtures = shared_linode() / "fixtures"
    validate("GET", "/domains", 200, json.loads((fixtures / "domains.json").read_text()))
    validate("POST", "/domains/{domainId}/records", 200, json.loads((fixtures / "domains_12345_records.json").read_text()))
    validate("GET", "/domains/{domainId}/zone-file", 200, json.loads((fixtures / "domains_12345_zone-file.json").read_text()))
    wrong: dict[str, Any] = {"data": [{"id": "not-an-int"}], "page": 1, "pages": 1, "results": 1}
    with pytest.raises(Exception, match="not-an-int"):
        validate("GET", "/domains/{domainId}/records", 200, wrong)


def test_a_fault_rule_written_where_another_was_fires_as_its_own(emulator: LinodeEmulator) -> None:
    """The counts of `times` and `skip` were kept by the rule's place in the list and outlived an edit of the state
    file: a new rule with `times: 1` written where a spent one was never fired."""
    def rules(*new: dict[str, Any]) -> None:  # the state file edited by hand, as README says (not emulator.edit)
        with emulator.store.lock:
            state = emulator.store.load()
            state["faults"]["rules"] = list(new)
            emulator.store.save(state)

    def statuses(path: str, n: int) -> list[int]:
        return [httpx.get(f"{emulator.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
                for _ in range(n)]

    rules({"method": "GET", "path": "/domains$", "status": 503, "times": 1})
    assert statuses("/domains", 2) == [503, 200]
    rules({"method": "GET", "path": "/records$", "status": 500, "times": 1, "skip": 1})
    assert statuses("/domains/1/records", 3) == [200, 500, 200]
    rules({"method": "GET", "path": "/records$", "status": 500, "times": 1, "skip": 1},
          {"method": "GET", "path": "/records$", "status": 500, "times": 1, "skip": 1})
    assert statuses("/domains/1/records", 3) == [200, 500, 200]  # the first is the spent one; the second its own
