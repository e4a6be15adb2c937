"""DNS steps: lower the TTL ahead of time, and switch the records between old and new targets.

Both snapshot every configured record (all fields) before touching anything; undo puts each
record back field for field (only the ones that differ, so it is idempotent and safe with a
read-only token when nothing was changed). Each record is read again right before it is changed
(also after a rate-limit wait): one someone else changed since the snapshot stops the step, naming
it, unless --force — then the undo keeps what golive really replaced. If an update fails midway,
the records already changed are put back before the step fails: no half-switched zone. The undos
are in :mod:`golive.dns.undo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.errors import ConfigError, GoliveError, UnsafePlan

if TYPE_CHECKING:
    from golive.config.models import Dns
    from golive.dns.gateway import LinodeDns

__all__ = ["AGAIN", "DRY_RUN", "FORCE", "REFUSED", "LowerTtl", "Switch", "configured_records"]

# ctx.options keys a rollback (or `dns revert`) sets: FORCE, overwrite records changed by hand since the run;
# DRY_RUN, only show the undo's plan (its refusals go into the REFUSED list, when given, for after the plan); AGAIN,
# the command line that runs the same undo again
FORCE, DRY_RUN, AGAIN, REFUSED = "force", "dry_run", "again", "refused"


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
        gateway.on_wait = ctx.notice  # (a rate-limit wait of a minute is said, not silent)
        return gateway

    def _current(self, ctx: StepContext) -> tuple[int, list[dict[str, Any]]]:
        return configured_records(self._dns(ctx), self._gateway(ctx))

    def desired(self, ctx: StepContext, record: dict[str, Any], zone_ttl: int | None) -> dict[str, Any]:
        """What ``record`` should hold. ``zone_ttl``: its domain's ``ttl_sec``, which a record's TTL of 0 stands for
        (None: not known, Linode's default)."""
        raise NotImplementedError

    def refuse(self, dns: Dns, records: list[dict[str, Any]], zone_ttl: int) -> None:
        """Raise UnsafePlan when the plan must not go ahead with the records as they are (default: it may)."""

    def plan(self, ctx: StepContext) -> list[Change]:
        dns = self._dns(ctx)
        domain_id, records = self._current(ctx)
        zone_ttl = self._gateway(ctx).zone_ttl(domain_id)
        self.refuse(dns, records, zone_ttl)
        changes = []
        for record in records:
            want = self.desired(ctx, record, zone_ttl)
            before = {k: record[k] for k in want}
            changes.append(Change(_label(dns, record), _compact(before), _compact(want)))
        return changes

    def snapshot(self, ctx: StepContext) -> Record:
        domain_id, records = self._current(ctx)
        return {"domain_id": domain_id, "zone_ttl": self._gateway(ctx).zone_ttl(domain_id), "records": records}

    def apply(self, ctx: StepContext, before: Record) -> Record:
        domain_id: int = before["domain_id"]
        changed: list[dict[str, Any]] = []  # each record as it was found right before golive changed it
        # the fields this step set on each record: its undo puts back those and nothing else (undoing a TTL
        # lowering must not take back the switch made after it); and what it set them to (read back): its undo
        # tells a value someone set since from its own
        fields: dict[str, list[str]] = {}
        done: dict[str, dict[str, Any]] = {}
        for record in before["records"]:
            want = self.desired(ctx, record, before.get("zone_ttl"))
            if all(record[k] == v for k, v in want.items()):
                continue
            try:
                found, after = self._update(ctx, domain_id, record, want)
            except GoliveError as exc:
                self._stop(ctx, domain_id, record, want, exc, changed, fields, done)
            # (said once Linode has confirmed it: a change logged before its PUT showed in `history` and the report
            # though a rate-limit wait and an interrupt meant it was never made)
            ctx.log("apply", f"{_label(self._dns(ctx), record)}: {_compact({k: found[k] for k in want})} ->"
                    f" {_compact({k: after.get(k) for k in want})}")
            changed.append(found)
            fields[str(record["id"])] = list(want)
            done[str(record["id"])] = {k: after.get(k) for k in want}
            ctx.checkpoint("mid")
        replaced = {r["id"]: r for r in changed}  # (the undo puts back what golive replaced, not the snapshot)
        return {**before, "records": [replaced.get(r["id"], r) for r in before["records"]], "fields": fields,
                "set": done}

    def _update(self, ctx: StepContext, domain_id: int, record: dict[str, Any],
                want: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Update one record if it still holds what the snapshot saw (read again right before the PUT: a hand
        change made while the step runs, or while it waits out a rate limit, is not overwritten blind). With
        --force a changed record is overwritten all the same, and its undo puts back what it held. Returns the
        record as it was found and as it is after."""
        from golive.dns.gateway import RecordChanged

        gateway = self._gateway(ctx)
        try:
            return record, gateway.update(domain_id, record["id"], want, expect={k: record[k] for k in want})
        except RecordChanged as exc:
            now = exc.record
            if now is None or not self.params.get("force"):
                raise
        found = {**record, **now}
        after = gateway.update(domain_id, record["id"], want, expect={k: now.get(k) for k in want})
        ctx.notice(f"{_label(self._dns(ctx), record)}: changed by someone else during the step, to"
                   f" {_compact({k: now.get(k) for k in want})}; overwritten with {_compact(want)} (--force); its undo"
                   " puts that back")
        return found, after

    def _stop(self, ctx: StepContext, domain_id: int, record: dict[str, Any], want: dict[str, Any], exc: GoliveError,
              changed: list[dict[str, Any]], fields: dict[str, list[str]], done: dict[str, dict[str, Any]]) -> NoReturn:
        """An update failed (or found the record changed by someone else): put back the records changed before it,
        then fail naming it — and, when putting back fails too, both failures."""
        from golive.dns.gateway import RecordChanged

        label = _label(self._dns(ctx), record)
        if isinstance(exc, RecordChanged):
            now = exc.record
            what = (f"{label} was deleted by someone else during the step" if now is None else
                    f"{label} was changed by someone else during the step: it holds"
                    f" {_compact({k: now.get(k) for k in want})} now, not {_compact({k: record[k] for k in want})}"
                    " as planned; it was left so")
        else:
            what = f"{label}: {exc.message}"
        try:
            for kept in self._put_back(ctx, domain_id, changed, fields, {"set": done}, force=False):
                ctx.notice(f"{kept.label} {kept.holds}, {kept.by} someone else during the step; left so")
        except GoliveError as back:
            raise GoliveError(f"{what}; putting back the {len(changed)} record(s) changed before it failed too:"
                              f" {back.message}", hint=back.hint) from None
        if isinstance(exc, RecordChanged):
            raise UnsafePlan(f"{what}, and the {len(changed)} record(s) changed before it were put back",
                             hint="check it in Linode, then run the command again"
                                  + (" (--force overwrites it)" if "force" in self.params else "")) from None
        raise GoliveError(f"{what}; the {len(changed)} record(s) changed before it were put back", hint=exc.hint) \
            from None

    def _put_back(self, ctx: StepContext, domain_id: int, records: list[dict[str, Any]],
                  fields: dict[str, list[str]] | None, undo: Record, *, force: bool) -> list[Any]:
        from golive.dns.undo import put_back

        return list(put_back(self, ctx, domain_id, records, fields, undo, force=force))

    def undo(self, ctx: StepContext, record: Record) -> None:
        from golive.dns.undo import undo

        undo(self, ctx, record)

    def undo_plan(self, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
        from golive.dns.undo import undo_plan

        return undo_plan(self, ctx, changes, record)

    def check(self, ctx: StepContext) -> list[str]:
        dns = self._dns(ctx)
        domain_id, records = self._current(ctx)
        zone_ttl = self._gateway(ctx).zone_ttl(domain_id)
        problems = []
        for record in records:
            want = self.desired(ctx, record, zone_ttl)
            if any(record[k] != v for k, v in want.items()):
                problems.append(f"{_label(dns, record)} reads back {_compact({k: record[k] for k in want})},"
                                f" expected {_compact(want)}")
        return problems

    def manual_undo(self, record: Record) -> list[str]:
        shown = {"target": "target {}", "ttl_sec": "TTL {}"}
        return [f"in the Linode DNS manager, set record #{r['id']} ({r['name'] or '(apex)'} {r['type']}) back to "
                + ", ".join(shown.get(k, k + " {}").format(r[k]) for k in owned)
                for r in record.get("records", []) if (owned := _owned(record.get("fields"), r, self.may_set))]


def _owned(fields: dict[str, list[str]] | None, record: dict[str, Any], may_set: tuple[str, ...]) -> list[str]:
    """The fields a step set on ``record`` (its undo's business). Not known — a step killed half way, or a run
    journaled before steps kept them —: every field that kind of step may set (a TTL lowering never the target)."""
    if fields is None:
        return list(may_set)
    return fields.get(str(record["id"]), [])


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

    def refuse(self, dns: Dns, records: list[dict[str, Any]], zone_ttl: int) -> None:
        from datetime import UTC, datetime

        from golive.dns.ttl import Lowered, TtlWait, effective, wait_reason

        if not self.params.get("ttl_wait"):
            return
        lowered = self.params.get("lowered")
        last = Lowered(datetime.fromisoformat(lowered["at"]), int(lowered["old_ttl"])) if lowered else None
        now = datetime.now(UTC)
        reason = wait_reason(records, zone_ttl, dns.cutover_ttl, last, now)
        if reason is not None:  # (when the wait ends is known once the TTLs are short: the last lowering's end)
            short = all(effective(r.get("ttl_sec"), zone_ttl) <= dns.cutover_ttl for r in records)
            raise TtlWait(reason[0], hint=reason[1], earliest_switch=last.safe_at if last and short else None)

    @property
    def title(self) -> str:
        return f"dns switch to {self.params['to']}"

    def desired(self, ctx: StepContext, record: dict[str, Any], zone_ttl: int | None) -> dict[str, Any]:
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

    def desired(self, ctx: StepContext, record: dict[str, Any], zone_ttl: int | None) -> dict[str, Any]:
        from golive.dns.ttl import effective

        # lower, never raise: a record already as short keeps its TTL (a 0 too: the domain's, short already)
        longer = effective(record["ttl_sec"], zone_ttl) > self.params["ttl"]
        return {"ttl_sec": self.params["ttl"] if longer else record["ttl_sec"]}
