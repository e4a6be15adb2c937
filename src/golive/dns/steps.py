"""DNS steps: lower the TTL ahead of time, and switch the records between old and new targets.

Both snapshot every configured record (all fields) before touching anything; undo puts each
record back field for field (only the ones that differ, so it is idempotent and safe with a
read-only token when nothing was changed). If an update fails midway, the records already changed
are put back before the step fails: no half-switched zone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.errors import ConfigError, GoliveError, UnsafePlan

if TYPE_CHECKING:
    from golive.config.models import Dns
    from golive.dns.gateway import LinodeDns

__all__ = ["LowerTtl", "Switch", "configured_records"]


def configured_records(dns: Dns, gateway: LinodeDns) -> tuple[int, list[dict[str, Any]]]:
    """The domain id and every Linode record matching [dns].records (several per name: round robin)."""
    domain_id = gateway.domain_id(dns.domain)
    everything = gateway.records(domain_id)
    chosen = []
    for wanted in dns.records:
        found = [r for r in everything if r["name"] == wanted.name and r["type"] == wanted.type]
        if not found:
            raise ConfigError(f"no {wanted.type} record {dns.fqdn(wanted.name)!r} in Linode domain {dns.domain}",
                              hint="create it in Linode, or fix [dns].records")
        chosen += found
    return domain_id, chosen


def _label(dns: Dns, record: dict[str, Any]) -> str:
    return f"dns {dns.fqdn(record['name'])} {record['type']} #{record['id']}"


class _RecordsStep(Step):
    """A step over the configured records: subclasses say what each record should become."""

    may_set: tuple[str, ...] = ("target", "ttl_sec")  # the fields ``desired`` may name

    def _dns(self, ctx: StepContext) -> Dns:
        if ctx.config is None:
            raise ConfigError("DNS steps need a config with [dns] and [linode]")
        dns: Dns = ctx.config.require("dns")
        return dns

    def _gateway(self, ctx: StepContext) -> LinodeDns:
        gateway: LinodeDns = ctx.gateways.get("linode")
        return gateway

    def _current(self, ctx: StepContext) -> tuple[int, list[dict[str, Any]]]:
        return configured_records(self._dns(ctx), self._gateway(ctx))

    def desired(self, ctx: StepContext, record: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def refuse(self, dns: Dns, records: list[dict[str, Any]]) -> None:
        """Raise UnsafePlan when the plan must not go ahead with the records as they are (default: it may)."""

    def plan(self, ctx: StepContext) -> list[Change]:
        dns = self._dns(ctx)
        _, records = self._current(ctx)
        self.refuse(dns, records)
        changes = []
        for record in records:
            want = self.desired(ctx, record)
            before = {k: record[k] for k in want}
            changes.append(Change(_label(dns, record), _compact(before), _compact(want)))
        return changes

    def snapshot(self, ctx: StepContext) -> Record:
        domain_id, records = self._current(ctx)
        return {"domain_id": domain_id, "records": records}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        dns, gateway = self._dns(ctx), self._gateway(ctx)
        domain_id: int = before["domain_id"]
        changed: list[dict[str, Any]] = []
        # the fields this step set on each record: its undo puts back those and nothing else (undoing a TTL
        # lowering must not take back the switch made after it)
        fields: dict[str, list[str]] = {}
        for record in before["records"]:
            want = self.desired(ctx, record)
            if all(record[k] == v for k, v in want.items()):
                continue
            ctx.log("apply", f"{_label(dns, record)}: {_compact({k: record[k] for k in want})} -> {_compact(want)}")
            try:
                gateway.update(domain_id, record["id"], want)
            except GoliveError as exc:
                self._put_back(ctx, domain_id, changed, {**fields, str(record["id"]): list(want)})
                raise GoliveError(f"{_label(dns, record)}: {exc.message}; the {len(changed)} record(s) changed before"
                                  " it were put back", hint=exc.hint) from None
            changed.append(record)
            fields[str(record["id"])] = list(want)
            ctx.checkpoint("mid")
        return {**before, "fields": fields}

    def _put_back(self, ctx: StepContext, domain_id: int, records: list[dict[str, Any]],
                  fields: dict[str, list[str]] | None) -> None:
        for record in reversed(records):
            self._restore_one(ctx, domain_id, record, _owned(fields, record, self.may_set))

    def _restore_one(self, ctx: StepContext, domain_id: int, record: dict[str, Any], owned: list[str]) -> None:
        if not owned:
            return
        dns, gateway = self._dns(ctx), self._gateway(ctx)
        now = gateway.record(domain_id, record["id"])
        if now is None:
            if "target" not in owned:  # (deleted since: a TTL's undo has nothing to put back)
                ctx.log("undo", f"{_label(dns, record)}: was deleted since; left so")
                return
            now = gateway.create(domain_id, record)  # made again (or an equal record found: never a second one)
            ctx.log("undo", f"{_label(dns, record)}: was deleted; back as #{now['id']}")
        diff = {k: record[k] for k in owned if now.get(k) != record[k]}
        if diff:
            ctx.log("undo", f"{_label(dns, record)}: {_compact({k: now.get(k) for k in diff})} -> {_compact(diff)}")
            gateway.update(domain_id, now["id"], diff)

    def undo(self, ctx: StepContext, record: Record) -> None:
        self._put_back(ctx, record["domain_id"], record["records"], record.get("fields"))

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        """From what the records are *now* back to the snapshot: a record someone changed (or deleted) since
        the run is shown as it is, and marked, instead of as the run left it."""

        try:
            now = _as_left(ctx, record["domain_id"], {r["id"]: r for r in self._gateway(ctx).records(record["domain_id"])})
        except GoliveError:  # (the API unreachable: what the journal says; the undo itself will say more)
            return super().undo_plan(ctx, changes, record)
        dns, left = self._dns(ctx), {c.what: c.after for c in changes}
        out = []
        for before in record.get("records", []):
            label, current, owned = _label(dns, before), now.get(before["id"]), _owned(record.get("fields"), before, self.may_set)
            if not owned:
                continue
            if current is None:
                out.append(Change(f"{label} (deleted since the run)", None,
                                  _compact({"target": before["target"]}) if "target" in owned else None))
                continue
            keys = [k for k in owned if current.get(k) != before[k]] or [k for k in owned if k in ("target", "ttl_sec")][:1]
            shown_now = _compact({k: current.get(k) for k in keys})
            back = all(current.get(k) == before[k] for k in owned)  # (put back already: a rollback killed half way)
            moved = not back and label in left and left[label] != _compact({k: current.get(k) for k in _keys(left[label])})
            out.append(Change(label + (" (changed since the run)" if moved else ""), shown_now,
                              _compact({k: before[k] for k in keys})))
        return out

    def check(self, ctx: StepContext) -> list[str]:
        dns = self._dns(ctx)
        _, records = self._current(ctx)
        problems = []
        for record in records:
            want = self.desired(ctx, record)
            if any(record[k] != v for k, v in want.items()):
                problems.append(f"{_label(dns, record)} reads back {_compact({k: record[k] for k in want})},"
                                f" expected {_compact(want)}")
        return problems

    def manual_undo(self, record: Record) -> list[str]:
        shown = {"target": "target {}", "ttl_sec": "TTL {}"}
        return [f"in the Linode DNS manager, set record #{r['id']} ({r['name'] or '(apex)'} {r['type']}) back to "
                + ", ".join(shown.get(k, k + " {}").format(r[k]) for k in owned)
                for r in record.get("records", []) if (owned := _owned(record.get("fields"), r, self.may_set))]


def _as_left(ctx: StepContext, domain_id: int, now: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The records as the DNS undos planned ahead of this one in the same rollback leave them (`rollback
    --through`: the switch, undone before the TTL lowering older than it), as ``_restore_one`` puts them back.
    A record deleted since comes back under a new id: an older undo finds its own record deleted still."""
    from golive.core.runner import UNDONE_FIRST

    for planned in ctx.options.get(UNDONE_FIRST, []):
        step, undo = planned.step, planned.record or {}
        if not isinstance(step, _RecordsStep) or undo.get("domain_id") != domain_id:
            continue
        for before in undo.get("records", []):
            current = now.get(before["id"])
            if current is not None:
                now[before["id"]] = {**current, **{k: before[k] for k in _owned(undo.get("fields"), before, step.may_set)}}
    return now


def _owned(fields: dict[str, list[str]] | None, record: dict[str, Any], may_set: tuple[str, ...]) -> list[str]:
    """The fields a step set on ``record`` (its undo's business). Not known — a step killed half way, or a run
    journaled before steps kept them —: every field that kind of step may set (a TTL lowering never the target)."""
    if fields is None:
        return list(may_set)
    return fields.get(str(record["id"]), [])


def _keys(compact: Any) -> list[str]:
    """The fields a :func:`_compact` text names (``target`` alone is shown bare)."""
    text = str(compact)
    return [part.split("=", 1)[0] for part in text.split()] if "=" in text else ["target"]


def _compact(values: dict[str, Any]) -> str:
    if set(values) == {"target"}:
        return str(values["target"])
    return " ".join(f"{k}={v}" for k, v in values.items())


class Switch(_RecordsStep):
    """Point the configured records at the new (or old) target; refuse hand-changed records unless forced."""

    kind = "dns.switch"

    def __init__(self, to: str = "new", force: bool = False, ttl_wait: bool = False,
                 lowered: dict[str, Any] | None = None) -> None:
        # ttl_wait: refuse while resolvers may hold the old answer (golive.dns.ttl); lowered: the journal's
        # latest `dns lower-ttl` ({"at": iso time, "old_ttl": s}), which the step cannot read itself
        super().__init__(to=to, force=force, ttl_wait=ttl_wait, lowered=lowered)

    def refuse(self, dns: Dns, records: list[dict[str, Any]]) -> None:
        from datetime import UTC, datetime

        from golive.dns.ttl import Lowered, wait_reason

        if not self.params.get("ttl_wait"):
            return
        lowered = self.params.get("lowered")
        last = Lowered(datetime.fromisoformat(lowered["at"]), int(lowered["old_ttl"])) if lowered else None
        reason = wait_reason(records, dns.cutover_ttl, last, datetime.now(UTC))
        if reason is not None:
            raise UnsafePlan(reason[0], hint=reason[1])

    @property
    def title(self) -> str:
        return f"dns switch to {self.params['to']}"

    def desired(self, ctx: StepContext, record: dict[str, Any]) -> dict[str, Any]:
        dns = self._dns(ctx)
        to = self.params["to"]
        other = "old" if to == "new" else "new"
        want: dict[str, Any] = {"target": dns.target(record["type"], to)}
        if dns.switch_ttl is not None:
            want["ttl_sec"] = dns.switch_ttl
        known = (dns.target(record["type"], to), dns.target(record["type"], other))
        if record["target"] not in known and not self.params["force"]:
            raise UnsafePlan(
                f"{_label(dns, record)} points at {record['target']}, neither old ({known[1] if to == 'new' else known[0]})"
                f" nor new ({known[0] if to == 'new' else known[1]}): someone changed it by hand",
                hint="check it in Linode, then pass --force to switch it anyway")
        return want


class LowerTtl(_RecordsStep):
    """Set the configured records' TTL (ahead of the switch, so resolvers forget the old answer quickly)."""

    kind = "dns.lower_ttl"
    may_set = ("ttl_sec",)

    def __init__(self, ttl: int = 300) -> None:
        super().__init__(ttl=ttl)

    @property
    def title(self) -> str:
        return f"dns lower TTL to {self.params['ttl']}"

    def desired(self, ctx: StepContext, record: dict[str, Any]) -> dict[str, Any]:
        from golive.dns.ttl import effective

        # lower, never raise: a record already at a shorter TTL keeps it
        return {"ttl_sec": min(self.params["ttl"], effective(record["ttl_sec"]))}
