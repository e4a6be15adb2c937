"""Fixtures for the DNS tests: the Linode emulator and two authoritative DNS servers on loopback,
a project whose golive.toml points at them, and a check that every response the emulator gave in
a test validates against Linode's OpenAPI description in ../shared/linode/."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golive.sandbox.dns import DnsServer
from golive.sandbox.linode import LinodeEmulator
from golive.sandbox.linode_api import seed

TOKEN = "tok-rw-5d41402abc4b2a76b9719d911017c592"
RO_TOKEN = "tok-ro-7215ee9c7d9dc229d2921a40e899ec5f"
OLD, NEW, OLD6, NEW6 = "203.0.113.10", "198.51.100.20", "2001:db8::10", "2001:db8::20"


def shared_linode() -> Path:
    """../shared/linode beside the checkout (CI clones with shared/ beside it)."""
    for base in (Path(__file__).resolve().parents[3], Path("/work")):
        if (base / "shared" / "linode").is_dir():
            return base / "shared" / "linode"
    raise AssertionError("../shared/linode (Linode's API description) is missing beside the checkout")


@functools.cache
def spec_validator() -> Any:
    """Validate (method, path template, status, body) against the 4.176.0 spec.

    Three deviations of the real API from its own spec are allowed, each documented in
    shared/linode/README.md or visible in the official SDK's own fixtures: the apex record's name is
    "" (the spec says minLength 1); a domain's description/group come back as ""; and a record's
    `tag` is null for non-CAA records (the spec marks it nullable but its enum lacks null, which
    OpenAPI 3.0.3 requires).
    """
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    spec = json.loads((shared_linode() / "openapi-domains-4.176.0.json").read_text())
    spec = copy.deepcopy(spec)
    del spec["components"]["schemas"]["DomainRecord"]["properties"]["name"]["minLength"]
    spec["components"]["schemas"]["DomainRecord"]["properties"]["tag"]["enum"].append(None)
    for key in ("description", "group"):
        del spec["components"]["schemas"]["Domain"]["properties"][key]["minLength"]
    registry = Registry().with_resource("urn:linode-spec", Resource.from_contents(spec, default_specification=DRAFT4))

    def validate(method: str, template: str, status: int, body: dict[str, Any]) -> None:
        responses = spec["paths"][template][method.lower()]["responses"]
        key = str(status) if str(status) in responses else "default"
        escaped = template.replace("~", "~0").replace("/", "~1")
        if key not in responses:  # an operation with no error response listed: the spec's common one
            assert status >= 400, f"{method} {template} answered {status}, which the spec does not list"
            base = "#/components/responses/ErrorResponse"
        else:
            base = responses[key].get("$ref") or f"#/paths/{escaped}/{method.lower()}/responses/{key}"
        validator(f"urn:linode-spec{base}/content/application~1json/schema").validate(body)

    @functools.cache
    def validator(ref: str) -> Any:
        return OAS30Validator({"$ref": ref}, registry=registry)

    return validate


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[LinodeEmulator]:
    emu = LinodeEmulator(tmp_path / "linode-state.json").start()

    def setup(state: dict[str, Any]) -> None:
        state["tokens"] = {TOKEN: ["domains:read_write"], RO_TOKEN: ["domains:read_only"]}
        seed(state, "example.org", OLD, names=("", "www"), target_v6=OLD6, ttl=3600)
        domain = state["domains"][0]
        from golive.sandbox.linode_api import Api

        api = Api(state)
        api.create_record(domain["id"], {"type": "MX", "name": "", "target": "mail", "priority": 10})
        api.create_record(domain["id"], {"type": "CNAME", "name": "docs", "target": "www.example.org."})
        api.create_record(domain["id"], {"type": "TXT", "name": "", "target": "v=spf1 -all"})

    emu.edit(setup)
    yield emu
    emu.stop()
    validate = spec_validator()
    for method, template, status, body in emu.responses:
        validate(method, template, status, body)


@pytest.fixture
def nameservers(emulator: LinodeEmulator) -> Iterator[list[DnsServer]]:
    servers = [DnsServer(emulator.store.path).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def config_text(emulator: LinodeEmulator, servers: list[DnsServer], records: str | None = None) -> str:
    records = records or '[{ name = "", type = "A" }, { name = "www", type = "A" }, { name = "www", type = "AAAA" }]'
    ns = ", ".join(f'"127.0.0.1:{s.port}"' for s in servers)
    return f"""\
[project]
name = "dns-test"

[linode]
token = "env:GOLIVE_TEST_LINODE_TOKEN"
api_url = "{emulator.url}"
retries = 3
retry_interval = 0.05

[dns]
domain = "example.org"
records = {records}
old_target = "{OLD}"
new_target = "{NEW}"
old_target_v6 = "{OLD6}"
new_target_v6 = "{NEW6}"
cutover_ttl = 300
nameservers = [{ns}]
propagation_timeout = 10
"""


@pytest.fixture
def dns_project(tmp_path: Path, emulator: LinodeEmulator, nameservers: list[DnsServer],
                monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    config = project / "golive.toml"
    config.write_text(config_text(emulator, nameservers))
    config.chmod(0o600)
    monkeypatch.chdir(project)
    monkeypatch.setenv("GOLIVE_TEST_LINODE_TOKEN", TOKEN)
    monkeypatch.delenv("GOLIVE_FAULT", raising=False)
    return project


def zone(emulator: LinodeEmulator) -> list[dict[str, Any]]:
    """Every record of example.org, all fields but `updated`, sorted by id."""
    state = emulator.store.load()
    records = state["domains"][0]["records"]
    return sorted(({k: v for k, v in r.items() if k != "updated"} for r in records), key=lambda r: r["id"])
