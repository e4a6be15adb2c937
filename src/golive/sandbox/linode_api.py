"""The Linode Domains API operations of the emulator, on a loaded state (no HTTP here).

Rules held from ``../shared/linode/README.md``: TTLs round up to an allowed value, the apex is
``""``, CNAME/MX/NS targets are fully qualified without a trailing dot, X-Filter only on the
filterable fields, pagination with ``page`` from 1 and ``page_size`` 25-500.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

from golive.dns.ttl import ALLOWED_TTLS

__all__ = ["ALLOWED_TTLS", "NS_SERVERS", "Api", "ApiError", "new_state", "round_ttl"]

NS_SERVERS = tuple(f"ns{i}.linode.com" for i in range(1, 6))
RECORD_TYPES = ("A", "AAAA", "NS", "MX", "CNAME", "TXT", "SRV", "PTR", "CAA")
DOMAIN_FILTERABLE = ("domain", "group", "tags")
RECORD_FILTERABLE = ("type", "name", "target", "tag")
RECORD_MUTABLE = ("name", "target", "priority", "weight", "port", "service", "protocol", "ttl_sec", "tag")
DOMAIN_MUTABLE = ("domain", "type", "group", "status", "description", "soa_email", "retry_sec", "master_ips",
                  "axfr_ips", "expire_sec", "refresh_sec", "ttl_sec", "tags")


def round_ttl(value: int) -> int:
    """Round a TTL up to the next value Linode allows (0 = the zone default), capped at 2419200."""
    if value <= 0:
        return 0
    return next((allowed for allowed in ALLOWED_TTLS if allowed >= value), ALLOWED_TTLS[-1])


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def new_state(tokens: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"version": 0, "changed_at": time.time(), "next_domain_id": 1, "next_record_id": 1,
            "tokens": tokens or {}, "limits": {"general_per_2min": 800, "paginated_per_min": 200},
            "faults": {}, "domains": []}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, field: str | None = None, headers: dict[str, str] | None = None,
                 delay: float = 0.0):
        super().__init__(reason)
        self.status, self.reason, self.field, self.headers = status, reason, field, headers or {}
        self.delay = delay  # (an injected fault's: seconds the emulator waits before it answers)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"reason": self.reason}
        if self.field:
            error["field"] = self.field
        return {"errors": [error]}


def public(obj: dict[str, Any], private: tuple[str, ...] = ("records", "serial")) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in private}


def _matches(item: dict[str, Any], flt: Any, filterable: tuple[str, ...]) -> bool:
    if not isinstance(flt, dict):
        raise ApiError(400, "Filter must be an object", "X-Filter")
    for key, cond in flt.items():
        if key in ("+order_by", "+order"):
            continue
        if key == "+and":
            if not all(_matches(item, sub, filterable) for sub in cond):
                return False
            continue
        if key == "+or":
            if not any(_matches(item, sub, filterable) for sub in cond):
                return False
            continue
        if key not in filterable:
            raise ApiError(400, f"Cannot filter on {key}", "X-Filter")
        value = item.get(key)
        if not isinstance(cond, dict):
            ok = (cond in value) if isinstance(value, list) else value == cond
        else:
            ok = all(_compare(value, op, arg) for op, arg in cond.items())
        if not ok:
            return False
    return True


def _compare(value: Any, op: str, arg: Any) -> bool:
    if op == "+contains":
        return str(arg) in (value if isinstance(value, list) else str(value or ""))
    if op == "+neq":
        return bool(value != arg)
    ops = {"+gt": lambda a, b: a > b, "+gte": lambda a, b: a >= b, "+lt": lambda a, b: a < b,
           "+lte": lambda a, b: a <= b}
    if op not in ops:
        raise ApiError(400, f"Unknown filter operator {op}", "X-Filter")
    return value is not None and bool(ops[op](value, arg))


def _paginate(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    try:
        page = int(query.get("page", ["1"])[0])
        size = int(query.get("page_size", ["100"])[0])
    except ValueError:
        raise ApiError(400, "page and page_size must be integers") from None
    if page < 1:
        raise ApiError(400, "Must be greater than or equal to 1", "page")
    if not 25 <= size <= 500:
        raise ApiError(400, "Must be between 25 and 500", "page_size")
    pages = max(1, math.ceil(len(items) / size))
    return {"data": items[(page - 1) * size: page * size], "page": page, "pages": pages, "results": len(items)}


def _order(items: list[dict[str, Any]], flt: dict[str, Any]) -> list[dict[str, Any]]:
    key = flt.get("+order_by")
    if key:
        items = sorted(items, key=lambda i: (i.get(key) is None, i.get(key)), reverse=flt.get("+order") == "desc")
    return items


class Api:
    """The Domains operations on a loaded state. Each handler returns (status, body)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.changed = False

    def domain(self, domain_id: int) -> dict[str, Any]:
        for d in self.state["domains"]:
            if d["id"] == domain_id:
                return d  # type: ignore[no-any-return]
        raise ApiError(404, "Not found")

    def record(self, domain: dict[str, Any], record_id: int) -> dict[str, Any]:
        for r in domain["records"]:
            if r["id"] == record_id:
                return r  # type: ignore[no-any-return]
        raise ApiError(404, "Not found")

    def touch(self, domain: dict[str, Any]) -> None:
        domain["serial"] = domain.get("serial", 0) + 1
        self.changed = True

    # -- domains -------------------------------------------------------------------------------
    def list_domains(self, flt: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        items = [public(d) for d in self.state["domains"] if _matches(d, flt, DOMAIN_FILTERABLE)]
        return _paginate(_order(items, flt), query)

    def create_domain(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("domain", "")).lower().rstrip(".")
        if not re.match(r"^([a-z0-9-_]{1,63}\.)+[a-z]{2,16}$", name):
            raise ApiError(400, "Domain is not valid", "domain")
        if any(d["domain"] == name for d in self.state["domains"]):
            raise ApiError(400, "Domain already exists on Linode", "domain")
        kind = body.get("type", "master")
        if kind == "master" and not body.get("soa_email"):
            raise ApiError(400, "soa_email is required for master domains", "soa_email")
        domain = {"id": self.state["next_domain_id"], "domain": name, "type": kind, "group": "", "status": "active",
                  "description": "", "soa_email": body.get("soa_email", ""), "retry_sec": 0, "master_ips": [],
                  "axfr_ips": [], "expire_sec": 0, "refresh_sec": 0, "ttl_sec": 0, "tags": [], "records": [],
                  "serial": int(datetime.now(UTC).strftime("%Y%m%d")) * 100}
        self.state["next_domain_id"] += 1
        self._update_domain(domain, {k: v for k, v in body.items() if k != "domain"})
        self.state["domains"].append(domain)
        self.touch(domain)
        return public(domain)

    def _update_domain(self, domain: dict[str, Any], body: dict[str, Any]) -> None:
        for key, value in body.items():
            if key not in DOMAIN_MUTABLE:
                continue
            domain[key] = round_ttl(int(value)) if key in ("ttl_sec", "retry_sec", "expire_sec", "refresh_sec") else value

    def update_domain(self, domain_id: int, body: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(domain_id)
        self._update_domain(domain, body)
        self.touch(domain)
        return public(domain)

    def delete_domain(self, domain_id: int) -> dict[str, Any]:
        self.state["domains"].remove(self.domain(domain_id))
        self.changed = True
        return {}

    def clone_domain(self, domain_id: int, body: dict[str, Any]) -> dict[str, Any]:
        source = self.domain(domain_id)
        clone = self.create_domain({**public(source), "domain": body.get("domain", "")})
        target = self.domain(clone["id"])
        for record in source["records"]:
            self._add_record(target, {k: record[k] for k in ("type", *RECORD_MUTABLE)})
        return public(target)

    def import_domain(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("domain") or not body.get("remote_nameserver"):
            raise ApiError(400, "domain and remote_nameserver are required", "remote_nameserver")
        # No AXFR leaves this machine: the imported zone starts empty, as one with no records would.
        return self.create_domain({"domain": body["domain"], "soa_email": f"hostmaster@{body['domain']}"})

    def zone_file(self, domain_id: int) -> dict[str, Any]:
        d = self.domain(domain_id)
        soa_email = (d["soa_email"] or f"hostmaster@{d['domain']}").replace("@", ".")
        lines = [f"; {d['domain']} [{d['id']}]", f"$TTL {d['ttl_sec'] or 86400}",
                 f"@  IN  SOA  {NS_SERVERS[0]}. {soa_email}. {d['serial']} 14400 14400 1209600 86400"]
        lines += [f"@    NS  {ns}." for ns in NS_SERVERS]
        for r in d["records"]:
            name = r["name"] or "@"
            target = f"{r['target']}." if r["type"] in ("CNAME", "MX", "NS") else r["target"]
            prio = f"{r['priority']} " if r["type"] == "MX" else ""
            ttl = f"{r['ttl_sec']} " if r["ttl_sec"] else ""
            lines.append(f"{name}  {ttl}IN  {r['type']}  {prio}{target}")
        return {"zone_file": lines}

    # -- records -------------------------------------------------------------------------------
    def _normalise(self, domain: dict[str, Any], rtype: str, body: dict[str, Any], current: dict[str, Any]) -> None:
        if "name" in body:
            name = str(body["name"]).rstrip(".").lower()
            suffix = "." + domain["domain"]
            name = "" if name == domain["domain"] else name.removesuffix(suffix)
            body["name"] = name
        if "target" in body:
            target = str(body["target"])
            if rtype == "A":
                self._ip(target, 4)
            elif rtype == "AAAA":
                self._ip(target, 6)
            elif rtype in ("CNAME", "MX", "NS"):
                target = target.rstrip(".").lower()
                if "." not in target:
                    target = f"{target}.{domain['domain']}"
            body["target"] = target
        if "ttl_sec" in body:
            body["ttl_sec"] = round_ttl(int(body["ttl_sec"]))
        if rtype == "CNAME" and body.get("name", current.get("name")) == "":
            raise ApiError(400, "CNAME records cannot be at the zone apex", "name")

    @staticmethod
    def _ip(target: str, version: int) -> None:
        try:
            ok = ipaddress.ip_address(target).version == version
        except ValueError:
            ok = False
        if not ok:
            raise ApiError(400, f"Must be a valid IPv{version} address", "target")

    def _add_record(self, domain: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        rtype = body.get("type")
        if rtype not in RECORD_TYPES:
            raise ApiError(400, "Must be one of A, AAAA, NS, MX, CNAME, TXT, SRV, PTR, CAA", "type")
        if "target" not in body:
            raise ApiError(400, "target is required", "target")
        values = {k: body[k] for k in RECORD_MUTABLE if k in body}
        values.setdefault("name", "")
        self._normalise(domain, rtype, values, {})
        now = _stamp()
        record = {"id": self.state["next_record_id"], "type": rtype, "name": "", "target": "", "priority": 0,
                  "weight": 0, "port": 0, "service": None, "protocol": None, "ttl_sec": 0, "tag": None,
                  "created": now, "updated": now, **values}
        self.state["next_record_id"] += 1
        domain["records"].append(record)
        self.touch(domain)
        return record

    def list_records(self, domain_id: int, flt: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        domain = self.domain(domain_id)
        items = [dict(r) for r in domain["records"] if _matches(r, flt, RECORD_FILTERABLE)]
        return _paginate(_order(items, flt), query)

    def create_record(self, domain_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._add_record(self.domain(domain_id), body))

    def update_record(self, domain_id: int, record_id: int, body: dict[str, Any]) -> dict[str, Any]:
        domain = self.domain(domain_id)
        record = self.record(domain, record_id)
        values = {k: body[k] for k in RECORD_MUTABLE if k in body}
        self._normalise(domain, record["type"], values, record)
        record.update(values)
        record["updated"] = _stamp()
        self.touch(domain)
        return dict(record)

    def delete_record(self, domain_id: int, record_id: int) -> dict[str, Any]:
        domain = self.domain(domain_id)
        domain["records"].remove(self.record(domain, record_id))
        self.touch(domain)
        return {}




def seed(state: dict[str, Any], domain: str, target: str, names: tuple[str, ...] = ("", "www"),
         target_v6: str | None = None, ttl: int = 3600) -> None:
    """Add ``domain`` with A (and AAAA) records for ``names`` pointing at ``target`` (the old server)."""
    api = Api(state)
    created = api.create_domain({"domain": domain, "soa_email": f"hostmaster@{domain}", "ttl_sec": ttl})
    for name in names:
        api.create_record(created["id"], {"type": "A", "name": name, "target": target, "ttl_sec": ttl})
        if target_v6:
            api.create_record(created["id"], {"type": "AAAA", "name": name, "target": target_v6, "ttl_sec": ttl})
