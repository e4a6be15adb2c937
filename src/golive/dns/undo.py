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
from golive.core.runner import NothingChanged
from golive.core.step import Record, StepContext
from golive.dns.steps import AGAIN, DRY_RUN, FORCE, REFUSED, _compact, _label, _owned, _RecordsStep
from golive.errors import ConfigError, GoliveError, UndoFailed, UnsafePlan

__all__ = ["put_back", "undo", "undo_plan"]


def put_back(step: _RecordsStep, ctx: StepContext, domain_id: int, records: list[dict[str, Any]],
             fields: dict[str, list[str]] | None, undo: Record, *, force: bool) -> list[_Left]:
    """Each record's owned fields back as they were, newest first; the records someone else changed (or deleted)
    since are left so (unless ``force``) and returned."""
    left = []
    claimed: set[int] = set()  # (records made by hand in place of deleted ones, each standing in for one)
    for record in reversed(records):
        owned = _owned(fields, record, step.may_set)
        kept = _restore_one(step, ctx, domain_id, record, owned, _left(step, ctx, undo, record), force,
                            (records, claimed))
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
        return step.desired(ctx, record, undo.get("zone_ttl"))
    except GoliveError:  # (a record it refuses: it never changed it)
        return None


def _stand_in(record: dict[str, Any], snapshot: list[dict[str, Any]], now: list[dict[str, Any]],
              claimed: set[int]) -> dict[str, Any] | None:
    """The record someone made by hand in place of ``record`` (deleted since): one of the same name and type that
    is not in the step's snapshot (a round-robin sibling is not one) and stands in for no other; lowest id first.
    Making ``record`` again beside it would give the name two answers (the site answering from both servers)."""
    ours = {r["id"] for r in snapshot}
    found = next((r for r in sorted(now, key=lambda r: r["id"]) if r["id"] not in ours and r["id"] not in claimed
                  and (r["name"], r["type"]) == (record["name"], record["type"])), None)
    if found is not None:
        claimed.add(found["id"])
    return found


def _crowded(dns: Any, snapshot: list[dict[str, Any]], now: dict[int, dict[str, Any]], claimed: set[int]) -> list[str]:
    """For each name and type whose record was deleted since and stood in for by a record made by hand, the other
    records made by hand beside that one (none in the step's snapshot, none standing in for another): each would be
    a second answer for the name once the stand-in holds the old value again."""
    ours = {r["id"] for r in snapshot}
    out, seen = [], set[tuple[str, str]]()
    for before in snapshot:
        if before["id"] in now or (before["name"], before["type"]) in seen:
            continue
        seen.add((before["name"], before["type"]))
        stand_ins = [r for r in now.values() if r["id"] in claimed and (r["name"], r["type"]) == (before["name"], before["type"])]
        extra = sorted(r["id"] for r in now.values() if r["id"] not in ours and r["id"] not in claimed
                       and (r["name"], r["type"]) == (before["name"], before["type"]))
        if stand_ins and extra:
            out.append(f"{_label(dns, before)} (#{', #'.join(str(i) for i in sorted([*(r['id'] for r in stand_ins), *extra]))})")
    return out


def _restore_one(step: _RecordsStep, ctx: StepContext, domain_id: int, record: dict[str, Any],
                 owned: list[str], left: dict[str, Any] | None, force: bool,
                 others: tuple[list[dict[str, Any]], set[int]]) -> _Left | None:
    """Put ``record``'s owned fields back. Deleted since: a record made by hand in its place (same name and type)
    is put back instead of making a second one beside it (with ``force`` when it holds a value of its own); with
    none, the record is made again only with ``force``: a deletion is a hand change too."""
    if not owned:
        return None
    from golive.dns.gateway import RecordChanged

    dns, gateway = step._dns(ctx), step._gateway(ctx)
    label = _label(dns, record)
    now = gateway.record(domain_id, record["id"])
    state = ""
    if now is None:
        if "target" not in owned:  # (deleted since: a TTL's undo has nothing to put back)
            ctx.log("undo", f"{label}: was deleted since; left so")
            return None
        now = _stand_in(record, others[0], gateway.records(domain_id), others[1])
        back = _compact({k: record[k] for k in owned})
        if now is None:
            if not force:
                return _Left(label, record, "", back, deleted=True)
            ctx.notice(f"{label}: deleted by someone else since the run; made again with {back} (--force)")
            now = gateway.create(domain_id, record)  # made again (or an equal record found: never a second one)
            ctx.log("undo", f"{label}: was deleted; back as #{now['id']}")
        else:
            state = f"was deleted, and #{now['id']} made in its place holds "
    diff = {k: record[k] for k in owned if now.get(k) != record[k]}
    if not diff:
        return None
    shown = _compact({k: now.get(k) for k in diff})
    theirs = _theirs(record, now, owned, left)
    if theirs and not force:
        return _Left(label, record, shown, _compact(diff), replaced=state)
    try:
        gateway.update(domain_id, now["id"], diff, expect=None if force else {k: now.get(k) for k in diff})
    except RecordChanged as exc:  # (changed while the undo waited to put it back: a rate limit)
        if exc.record is None:
            return _Left(label, record, "", _compact(diff), deleted=True)
        return _Left(label, record, _compact({k: exc.record.get(k) for k in diff}), _compact(diff), replaced=state)
    if theirs:  # (said, as the change itself, once Linode has confirmed it)
        ctx.notice(f"{label}: {state}{shown}, set by someone else since the run, overwritten with {_compact(diff)}"
                   " (--force)")
    ctx.log("undo", f"{label}: {state}{shown} -> {_compact(diff)}")
    return None


def undo(step: _RecordsStep, ctx: StepContext, record: Record) -> None:
    """Put back what the step changed. A record someone else changed since is overwritten only with
    ``ctx.options["force"]`` (`rollback --force`); else it is left so, and — when the step had finished, so
    golive surely changed it — the undo fails naming it (the rollback's plan refuses first, this is the race)."""
    force, writes = bool(ctx.options.get(FORCE)), step._gateway(ctx).writes
    try:
        left = put_back(step, ctx, record["domain_id"], record["records"], record.get("fields"), record, force=force)
    except UndoFailed:
        raise
    except GoliveError as exc:
        if step._gateway(ctx).writes == writes:  # (met before any write — a bad token, the API down —: not a failed
            # undo; the step stays as it was for the next rollback, and nothing is to be done by hand)
            raise (NothingChanged if isinstance(exc, ConfigError) else NotReached)(exc.message, hint=exc.hint) \
                from None
        manual = _by_hand(step, ctx, record)  # (what is really not back, not every field the step may set)
        if manual is None:  # (the failure was after the last record was back, or its answer lost: the undo is done)
            ctx.notice(f"{exc.message}; every record of `{step.title}` reads back as before it all the same: undone")
            return
        raise UndoFailed(exc.message, manual=manual, hint=exc.hint) from None
    if not left:
        return
    if "fields" not in record:  # (killed or failed half way: golive may never have set them)
        for kept in left:
            ctx.notice(f"{kept.label} {kept.holds}, {kept.by} someone else after the step's snapshot; left so")
        return
    again = ctx.options.get(AGAIN, "golive rollback")
    raise UndoFailed(f"{len(left)} record(s) changed by hand since the run were left as they are: "
                     + "; ".join(f"{k.label} {k.holds}" for k in left),
                     manual=[f"check {k.label} in Linode: it {k.holds}, {k.by} hand since the run; {k.fix} if it"
                             f" should be, or run `{again} --force`" for k in left])


class NotReached(NothingChanged):
    """The undo could not read or write a record (the Linode API unreachable, or failing) before it changed
    anything: the step stays as it was, not undo_failed, and no by-hand lines; exit 1, as the same error anywhere
    else (a bad token is :class:`NothingChanged`'s exit 2)."""

    exit_code = 1


def _by_hand(step: _RecordsStep, ctx: StepContext, record: Record) -> list[str] | None:
    """What to put back by hand after a failed undo: each record that does not hold its value before the step, read
    now (all that the step may have set when it cannot be read), and only the fields the step set (or would set).
    None: every record was read, and holds its value before the step."""
    gateway, lines = step._gateway(ctx), []
    for before in record.get("records", []):
        owned = _owned(record.get("fields"), before, step.may_set)
        if "fields" not in record:  # (not journaled: what the step would set, not all it may set — a TTL only if so)
            owned = [k for k in owned if k in (_left(step, ctx, record, before) or {})]
        try:
            now = gateway.record(record["domain_id"], before["id"])
        except GoliveError:
            now = {}
        wrong = [k for k in owned if now is None or now.get(k) != before[k]]
        if wrong:
            shown = ", ".join(("TTL {}" if k == "ttl_sec" else k + " {}").format(before[k]) for k in wrong)
            lines.append(f"in the Linode DNS manager, {'make' if now is None else 'set'} record #{before['id']}"
                         f" ({before['name'] or '(apex)'} {before['type']}) {'again with' if now is None else 'back to'}"
                         f" {shown}")
    return lines or None


def undo_plan(step: _RecordsStep, ctx: StepContext, changes: list[Change], record: Record) -> list[Change]:
    """From what the records are *now* back to the snapshot: a record someone changed (or deleted) since
    the run is shown as it is, and marked, instead of as the run left it. One changed since a finished run
    makes the rollback refuse, naming it, unless forced (`rollback --force`): a human's change is not
    overwritten silently."""

    try:
        listed = step._gateway(ctx).records(record["domain_id"])
    except ConfigError:  # (a bad token: the rollback cannot work with it; nothing is changed or marked failed)
        raise
    except GoliveError as exc:  # (the API unreachable or failing: stop before anything is changed or marked)
        return _unread(step, ctx, changes, exc)
    now = _as_left(ctx, record["domain_id"], {r["id"]: r for r in listed})
    dns, force = step._dns(ctx), bool(ctx.options.get(FORCE))
    out, theirs, claimed = [], [], set[int]()
    for before in record.get("records", []):
        label, current, owned = _label(dns, before), now.get(before["id"]), _owned(record.get("fields"), before, step.may_set)
        if not owned:
            continue
        if current is None and "target" not in owned:
            out.append(Change(f"{label} (deleted since the run)", None, None))
            continue
        mark = ""
        if current is None:
            current = _stand_in(before, record.get("records", []), list(now.values()), claimed)
            if current is None:
                back = _compact({"target": before["target"]})
                if force:
                    out.append(Change(f"{label} (deleted since the run)", None, back))
                elif "fields" not in record:
                    out.append(Change(f"{label} (deleted since the run: left so, --force makes it again)", None, None))
                else:
                    out.append(Change(f"{label} (deleted since the run: only with --force)", None, back))
                    theirs.append(f"{label} was deleted (before the run: {back})")
                continue
            mark = f"deleted since the run, #{current['id']} made in its place"
        keys = [k for k in owned if current.get(k) != before[k]] or [k for k in owned if k in ("target", "ttl_sec")][:1]
        shown_now, back = _compact({k: current.get(k) for k in keys}), _compact({k: before[k] for k in keys})
        if not _theirs(before, current, owned, _left(step, ctx, record, before)):
            out.append(Change(f"{label} ({mark})" if mark else label, shown_now, back))
        elif force:
            out.append(Change(f"{label} ({mark or 'changed since the run'})", shown_now, back))
        elif "fields" not in record:  # (the undo leaves it: golive may never have set it)
            out.append(Change(f"{label} ({mark or 'changed since the run'}: left so, --force overwrites it)",
                              shown_now, shown_now))
        else:
            out.append(Change(f"{label} ({mark or 'changed since the run'}: only with --force)", shown_now, back))
            theirs.append(f"{label} was deleted, and #{current['id']} made in its place holds {shown_now} (before the"
                          f" run: {back})" if mark else f"{label} holds {shown_now} (before the run: {back})")
    again = ctx.options.get(AGAIN, "golive rollback")
    crowded = _crowded(dns, record.get("records", []), now, claimed)
    if crowded:  # (--force or not: golive would leave two answers for the name)
        _refuse(ctx, UnsafePlan(
            f"records deleted by hand since `{step.title}` have more than one record made in their place:"
            f" {'; '.join(crowded)}; golive puts the old value on one and deletes none, so the name would keep two"
            " answers", hint=f"nothing was changed; delete all but one of them in Linode (or set them yourself), then"
                             f" run `{again} --force`"))
    gateway = step._gateway(ctx)
    writes = sum(1 for c in out if c.before != c.after and "left so" not in c.what)
    if writes and gateway.may_write() is False:
        # (found before anything is undone: a 403 at the first PUT would fail the undo and mark the run partially
        # rolled back, with by-hand lines for every record, though nothing was changed)
        _refuse(ctx, GoliveError(
            f"the Linode token may not change DNS records (its scopes: {' '.join(sorted(gateway.scopes or ()))}); the"
            f" undo of `{step.title}` would change {writes} record(s)",
            hint=f"nothing was changed; put a token with the domains:read_write scope in {gateway.token_fix()}, then"
                 f" run `{again}` again"))
    if theirs:
        _refuse(ctx, UnsafePlan(f"{len(theirs)} DNS record(s) were changed by hand since `{step.title}`: "
                                + "; ".join(theirs) + "; the undo would overwrite them",
                                hint=f"nothing was changed; check them in Linode, then run `{again} --force` to put"
                                     " them back as before the run anyway (what they hold now is written to the"
                                     " journal)"))
    return out


def _unread(step: _RecordsStep, ctx: StepContext, changes: list[Change], exc: GoliveError) -> list[Change]:
    """The records could not be read for the plan: the undo could not check them for changes by hand, nor, most
    likely, put them back (an undo failing half way, exit 4, by-hand lines for every record, the run marked partially
    rolled back). The rollback stops before it changes anything; a dry run shows what the journal says, marked."""
    fix = (exc.hint or "").split("; nothing was changed")[0] or "check [linode].api_url and the network"
    again = ctx.options.get(AGAIN, "golive rollback")
    _refuse(ctx, GoliveError(f"the DNS records of `{step.title}` could not be read: {exc.message}",
                             hint=f"nothing was changed; {fix}, and run `{again}` again when the Linode API answers"))
    return [Change(f"{c.what} (could not be read: as the run left it, not checked for changes by hand)", c.after,
                   c.before) for c in changes]


def _refuse(ctx: StepContext, error: GoliveError) -> None:
    """Stop the rollback at its plan; a dry run shows the plan whole and is refused after it, as the rollback
    would be (its exit code too: a script's rehearsal must not read 0 where the rollback would refuse)."""
    if not ctx.options.get(DRY_RUN):
        raise error
    refused = ctx.options.get(REFUSED)
    if isinstance(refused, list):
        refused.append(error)


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
    """A record an undo left as someone else set it: its label, snapshot, what it holds, what it would be put back
    to; ``deleted``: it is gone (none made in its place); ``replaced``: how to say the one made in its place holds."""

    label: str
    record: dict[str, Any]
    now: str
    back: str
    deleted: bool = False
    replaced: str = ""

    @property
    def holds(self) -> str:
        return "was deleted" if self.deleted else f"{self.replaced or 'holds '}{self.now}"

    @property
    def by(self) -> str:
        return "by" if self.deleted else "set by"

    @property
    def fix(self) -> str:
        return f"make it again with {self.back}" if self.deleted else f"set it back to {self.back}"
