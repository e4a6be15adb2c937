"""The undos of the DNS steps (:mod:`golive.dns.steps` holds their plan and apply).

An undo puts back the fields its step set (``fields`` in the undo record) to the values before it, field for
field and only where they differ: idempotent, safe after a crash. A record holding neither the value before the
step nor the one the step set (``set``; for a step killed half way, what it would set) was changed by someone
else since: it is overwritten only with ``ctx.options[FORCE]`` (`rollback --force`), and then what it held is
said and journaled. Without it the rollback's plan refuses, naming it; the undo itself (the race after the
plan) leaves it and fails naming it, or — a step that failed or was killed half way, which may never have set
it — leaves it and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from golive.core.change import Change
from golive.core.step import Record, Step, StepContext
from golive.dns.steps import AGAIN, DRY_RUN, FORCE, _compact, _label, _owned, _RecordsStep
from golive.errors import GoliveError, UndoFailed, UnsafePlan

__all__ = ["put_back", "undo", "undo_plan"]


def put_back(step: _RecordsStep, ctx: StepContext, domain_id: int, records: list[dict[str, Any]],
             fields: dict[str, list[str]] | None, undo: Record, *, force: bool) -> list[_Left]:
    """Each record's owned fields back as they were, newest first; the records someone else changed since
    are left so (unless ``force``) and returned."""
    left = []
    for record in reversed(records):
        owned = _owned(fields, record, step.may_set)
        kept = _restore_one(step, ctx, domain_id, record, owned, _left(step, ctx, undo, record), force)
        if kept is not None:
            left.append(kept)
    return left


def _left(step: _RecordsStep, ctx: StepContext, undo: Record, record: dict[str, Any]) -> dict[str, Any] | None:
    """What this step set ``record`` to: journaled by its apply; else (killed or failed half way, or journaled
    by an older golive) what it would set. None: it never set that record."""
    if "set" in undo:
        found: dict[str, Any] | None = undo["set"].get(str(record["id"]))
        return found
    try:
        return step.desired(ctx, record)
    except GoliveError:  # (a record it refuses: it never changed it)
        return None


def _restore_one(step: _RecordsStep, ctx: StepContext, domain_id: int, record: dict[str, Any],
                 owned: list[str], left: dict[str, Any] | None, force: bool) -> _Left | None:
    if not owned:
        return None
    from golive.dns.gateway import RecordChanged

    dns, gateway = step._dns(ctx), step._gateway(ctx)
    label = _label(dns, record)
    now = gateway.record(domain_id, record["id"])
    if now is None:
        if "target" not in owned:  # (deleted since: a TTL's undo has nothing to put back)
            ctx.log("undo", f"{label}: was deleted since; left so")
            return None
        now = gateway.create(domain_id, record)  # made again (or an equal record found: never a second one)
        ctx.log("undo", f"{label}: was deleted; back as #{now['id']}")
    diff = {k: record[k] for k in owned if now.get(k) != record[k]}
    if not diff:
        return None
    shown = _compact({k: now.get(k) for k in diff})
    if _theirs(record, now, owned, left):
        if not force:
            return _Left(label, record, shown, _compact(diff))
        ctx.notice(f"{label}: {shown}, set by someone else since the run, overwritten with {_compact(diff)}"
                   " (--force)")
    ctx.log("undo", f"{label}: {shown} -> {_compact(diff)}")
    try:
        gateway.update(domain_id, now["id"], diff, expect=None if force else {k: now.get(k) for k in diff})
    except RecordChanged as exc:  # (changed while the undo waited to put it back: a rate limit)
        return _Left(label, record, "(deleted)" if exc.record is None else
                     _compact({k: exc.record.get(k) for k in diff}), _compact(diff))
    return None


def undo(step: _RecordsStep, ctx: StepContext, record: Record) -> None:
    """Put back what the step changed. A record someone else changed since is overwritten only with
    ``ctx.options["force"]`` (`rollback --force`); else it is left so, and — when the step had finished, so
    golive surely changed it — the undo fails naming it (the rollback's plan refuses first, this is the race)."""
    force = bool(ctx.options.get(FORCE))
    left = put_back(step, ctx, record["domain_id"], record["records"], record.get("fields"), record, force=force)
    if not left:
        return
    if "fields" not in record:  # (killed or failed half way: golive may never have set them)
        for kept in left:
            ctx.notice(f"{kept.label} holds {kept.now}, set by someone else after the step's snapshot; left so")
        return
    again = ctx.options.get(AGAIN, "golive rollback")
    raise UndoFailed(f"{len(left)} record(s) changed by hand since the run were left as they are: "
                     + "; ".join(f"{k.label} holds {k.now}" for k in left),
                     manual=[f"check {k.label} in Linode: it holds {k.now}, set by hand since the run; set it back"
                             f" to {k.back} if it should be, or run `{again} --force`" for k in left])


def undo_plan(step: _RecordsStep, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
    """From what the records are *now* back to the snapshot: a record someone changed (or deleted) since
    the run is shown as it is, and marked, instead of as the run left it. One changed since a finished run
    makes the rollback refuse, naming it, unless forced (`rollback --force`): a human's change is not
    overwritten silently."""

    try:
        now = _as_left(ctx, record["domain_id"], {r["id"]: r for r in step._gateway(ctx).records(record["domain_id"])})
    except GoliveError:  # (the API unreachable: what the journal says; the undo itself will say more)
        return Step.undo_plan(step, ctx, changes, record)
    dns, force = step._dns(ctx), bool(ctx.options.get(FORCE))
    out, theirs = [], []
    for before in record.get("records", []):
        label, current, owned = _label(dns, before), now.get(before["id"]), _owned(record.get("fields"), before, step.may_set)
        if not owned:
            continue
        if current is None:
            out.append(Change(f"{label} (deleted since the run)", None,
                              _compact({"target": before["target"]}) if "target" in owned else None))
            continue
        keys = [k for k in owned if current.get(k) != before[k]] or [k for k in owned if k in ("target", "ttl_sec")][:1]
        shown_now, back = _compact({k: current.get(k) for k in keys}), _compact({k: before[k] for k in keys})
        if not _theirs(before, current, owned, _left(step, ctx, record, before)):
            out.append(Change(label, shown_now, back))
        elif force:
            out.append(Change(f"{label} (changed since the run)", shown_now, back))
        elif "fields" not in record:  # (the undo leaves it: golive may never have set it)
            out.append(Change(f"{label} (changed since the run: left so, --force overwrites it)", shown_now,
                              shown_now))
        else:
            out.append(Change(f"{label} (changed since the run: only with --force)", shown_now, back))
            theirs.append(f"{label} holds {shown_now} (before the run: {back})")
    if theirs and not ctx.options.get(DRY_RUN):
        again = ctx.options.get(AGAIN, "golive rollback")
        raise UnsafePlan(f"{len(theirs)} DNS record(s) were changed by hand since `{step.title}`: "
                         + "; ".join(theirs) + "; the undo would overwrite them",
                         hint=f"nothing was changed; check them in Linode, then run `{again} --force` to put them"
                              " back as before the run anyway (what they hold now is written to the journal)")
    return out


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


def _theirs(before: dict[str, Any], now: dict[str, Any], owned: list[str], left: dict[str, Any] | None) -> list[str]:
    """The owned fields that hold neither the value before the step nor the one it set: someone else's."""
    return [k for k in owned if now.get(k) != before[k] and now.get(k) != (left or {}).get(k, before[k])]


@dataclass(frozen=True)
class _Left:
    """A record an undo left as someone else set it: its label, snapshot, what it holds, what it would be put back to."""

    label: str
    record: dict[str, Any]
    now: str
    back: str
