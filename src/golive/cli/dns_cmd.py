"""golive dns show|plan|lower-ttl|switch|verify|revert."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from golive.cli.groups import help_of
from golive.cli.options import DryRun, Json, Yes, app_of, command_again, given_options, one_of

app = typer.Typer(help=help_of("dns"), add_completion=False,
                  no_args_is_help=True)



def _records(a: Any) -> tuple[Any, int, list[dict[str, Any]], int]:
    """[dns], the domain's id, the configured records, and the domain's own TTL (what a record's TTL 0 means)."""
    from golive.dns.steps import configured_records

    dns = a.config.require("dns")
    gateway = a.runner().ctx.gateways.get("linode")
    gateway.on_wait = a.warn  # (a rate-limit wait of a minute is said, not silent)
    domain_id, records = configured_records(dns, gateway)
    return dns, domain_id, records, gateway.zone_ttl(domain_id)


@app.command("show")
def show(ctx: typer.Context, json: Json = False) -> None:
    """Show the configured records as Linode has them, and whether each points at the old or new target."""
    from golive.dns.ttl import effective

    a = app_of(ctx, json)
    dns, domain_id, records, zone_ttl = _records(a)
    rows, out = [], []
    for r in records:
        side = next((s for s in ("new", "old") if r["target"] == dns.target(r["type"], s)), "elsewhere")
        ttl = effective(r["ttl_sec"], zone_ttl)
        shown = str(ttl) if r["ttl_sec"] else f"{ttl} (the domain's)"  # (0 is the domain's TTL, not 0 seconds)
        rows.append([dns.fqdn(r["name"]), r["type"], r["target"], shown, side, str(r["id"])])
        out.append({**r, "fqdn": dns.fqdn(r["name"]), "points_at": side, "effective_ttl": ttl})
    a.table(["NAME", "TYPE", "TARGET", "TTL", "POINTS AT", "ID"], rows, title=f"{dns.domain} (domain #{domain_id})")
    a.done({"domain": dns.domain, "domain_id": domain_id, "records": out})


To = Annotated[str, typer.Option("--to", help="new or old.", callback=one_of("new", "old"))]
Force = Annotated[bool, typer.Option("--force", help="Also switch records that point at neither target.")]
NoTtlWait = Annotated[bool, typer.Option("--no-ttl-wait", help="Switch even though resolvers may still hold the old"
                                         " answer for a long TTL (a rehearsal; an emergency).")]


def _switch(a: Any, to: str, force: bool, no_ttl_wait: bool) -> Any:
    """The switch step as `dns switch` makes it (and `dns plan` shows it): with the TTL wait unless told not to."""
    from golive.dns.steps import Switch

    lowered = None
    if not no_ttl_wait:
        from golive.dns.ttl import last_lowered

        last = last_lowered(a.journal)
        lowered = {"at": last.at.isoformat(), "old_ttl": last.old_ttl} if last else None
    return Switch(to=to, force=force, ttl_wait=not no_ttl_wait, lowered=lowered)


@app.command("plan")
def plan(ctx: typer.Context, to: To = "new", force: Force = False, no_ttl_wait: NoTtlWait = False,
         json: Json = False) -> None:
    """Show the changes a switch would make; touch nothing. Refused as `dns switch --dry-run` is (the TTL wait)."""
    from golive.cli.render import show_plan
    from golive.dns.ttl import effective, last_lowered

    a = app_of(ctx, json)
    planned = a.runner().plan([_switch(a, to, force, no_ttl_wait)])
    show_plan(a, f"dns switch to {to}", planned)
    # when resolvers may have the new answer: known once the TTLs are short, from the lowering whose wait ends last (a
    # plan refused for it says when in its error, under --json as `earliest_switch` too; one the wait let through has
    # every TTL short: the records are read again only when the wait was skipped)
    lowered = last_lowered(a.journal)
    if lowered is not None and no_ttl_wait:
        dns, _, records, zone_ttl = _records(a)
        if any(effective(r["ttl_sec"], zone_ttl) > dns.cutover_ttl for r in records):
            lowered = None
    if lowered is not None:
        a.say(f"earliest safe switch: {lowered.safe_at:%Y-%m-%d %H:%M:%S} UTC (the lowering at {lowered.at:%H:%M:%S}"
              f" UTC from {lowered.old_ttl}s)")
    a.done({"dry_run": True, "steps": [p.as_dict() for p in planned],
            "earliest_switch": lowered.safe_at.isoformat(timespec="seconds") if lowered else None})


@app.command("lower-ttl")
def lower_ttl(
    ctx: typer.Context,
    ttl: Annotated[int | None, typer.Option("--ttl", help="Seconds (default: \\[dns].cutover_ttl).")] = None,
    dry_run: DryRun = False, yes: Yes = False, json: Json = False,
) -> None:
    """Lower the records' TTL ahead of the switch, and print the earliest safe switch time (now + the old TTL)."""
    from golive.core.journal import now_iso
    from golive.dns.steps import LowerTtl
    from golive.dns.ttl import effective, ttl_problem

    a = app_of(ctx, json)
    dns, _, records, zone_ttl = _records(a)
    value = dns.cutover_ttl if ttl is None else ttl
    if ttl_problem(value):
        from golive.errors import UsageError

        raise UsageError(f"--ttl {value}: {ttl_problem(value)}", hint="pick one of them")
    old_ttl = max(effective(r["ttl_sec"], zone_ttl) for r in records)
    since = now_iso()  # (a run journaled since, by this process, is this command's lowering)

    def result() -> dict[str, Any]:  # (--json: the time the human line gives, ISO UTC; null when none)
        found = _earliest_after_lowering(a, old_ttl, since)
        return {"earliest_switch": found[0].isoformat(timespec="seconds") if found else None}

    outcome = a.execute("dns lower-ttl", f"dns lower TTL to {value}", [LowerTtl(ttl=value)], yes=yes, dry_run=dry_run,
                        result=result)
    found = _earliest_after_lowering(a, old_ttl, since) if outcome is not None and not a.json else None
    if found is not None:
        a.say(f"earliest safe switch: {found[0]:%Y-%m-%d %H:%M:%S} UTC ({found[1]})")


def _earliest_after_lowering(a: Any, old_ttl: int, since: str) -> tuple[datetime, str] | None:
    """The earliest safe switch after `dns lower-ttl` and why: now + the old TTL when this command lowered a TTL (an
    earlier lowering from a longer TTL may end later); when it found every TTL short already, the wait an earlier
    lowering started, if it is still running. None: nothing to wait for."""
    from golive.dns.ttl import last_lowered

    newest = next(iter(a.journal.runs(1)), None)
    made = newest is not None and newest.command == "dns lower-ttl" and newest.started_at >= since \
        and newest.pid == os.getpid() and newest.status == "succeeded"
    now, earlier = datetime.now(UTC), last_lowered(a.journal)
    if made:
        safe = now + timedelta(seconds=old_ttl)
        if earlier is None or earlier.safe_at <= safe:
            return safe, f"now + the old TTL of {old_ttl}s"
    elif earlier is None or earlier.safe_at <= now:
        return None
    assert earlier is not None
    return earlier.safe_at, (f"the lowering at {earlier.at:%H:%M:%S} UTC from {earlier.old_ttl}s: resolvers may hold"
                             " those answers until then")


@app.command("switch")
def switch(ctx: typer.Context, to: To = "new", force: Force = False, no_ttl_wait: NoTtlWait = False,
           dry_run: DryRun = False, yes: Yes = False, json: Json = False) -> None:
    """Point the records at the new (or old) target: snapshot, update, read back. Undo restores the snapshot exactly.

    Refused while the records' TTL is longer than \\[dns].cutover_ttl, or less than the old TTL has passed
    since `golive dns lower-ttl`: until then resolvers keep the old answer, and would keep the new one
    after an undo."""
    a = app_of(ctx, json)
    step = _switch(a, to, force, no_ttl_wait)
    outcome = a.execute("dns switch", f"dns switch to {to}", [step], yes=yes,
                        dry_run=dry_run, args={"to": to, "force": force})
    if outcome is not None and outcome.run_id is not None:
        a.say(f"switched to {to}; check propagation with `golive dns verify --expect {to}`")


@app.command("verify")
def verify(
    ctx: typer.Context,
    expect: Annotated[str, typer.Option("--expect", help="new or old.", callback=one_of("new", "old"))] = "new",
    timeout: Annotated[float | None, typer.Option("--timeout", min=0, help="Seconds to wait (default:"
                                                 " \\[dns].propagation_timeout).")] = None,
    json: Json = False,
) -> None:
    """Ask every nameserver directly (no recursion, AA required) until all answer the expected target."""
    from golive.cli.render import live_table
    from golive.dns.verify import verify as run_verify

    a = app_of(ctx, json)
    dns = a.config.require("dns")
    if a.config.linode is not None:
        _records_point_at(a, dns, expect)
    with live_table(a, ["SERVER", "NAME", "TYPE", "ANSWER", "TTL", "STATE"]) as update:
        answers = run_verify(dns, expect, dns.propagation_timeout if timeout is None else timeout,
                             on_round=lambda rows: update([[r.server, r.name, r.rtype, ", ".join(r.values) or "-",
                                                            str(r.ttl or "-"), r.state] for r in rows]))
    a.say(f"all {len(dns.nameservers)} nameserver(s) answer {expect} for {len(dns.records)} record(s)")
    a.done({"expect": expect, "answers": [{**r.__dict__, "ok": r.ok} for r in answers]})


def _records_point_at(a: Any, dns: Any, side: str) -> None:
    """Before waiting on the nameservers: the records at Linode must point where they are expected to. A switch
    that was refused (the TTL wait) or never run leaves nothing to wait for, and verify polled its whole
    timeout (ten minutes, run line by line from the runbook)."""
    from golive.dns.gateway import from_config
    from golive.dns.steps import configured_records
    from golive.errors import CheckFailed, GoliveError

    try:
        _, records = configured_records(dns, from_config(a.config))
    except GoliveError as exc:  # (the API down is when propagation matters most: ask the nameservers all the same)
        a.warn(f"could not read the records at Linode ({exc.message}); asking the nameservers all the same")
        return
    elsewhere = [r for r in records if r["target"] != dns.target(r["type"], side)]
    if elsewhere:
        first = elsewhere[0]
        raise CheckFailed(f"{len(elsewhere)} record(s) at Linode do not point at the {side} target (first:"
                          f" {dns.fqdn(first['name'])} {first['type']} -> {first['target']}): the nameservers"
                          f" cannot answer {side} yet", hint=f"`golive dns switch --to {side}` first (`golive dns"
                          " show` shows the records)")


@app.command("revert")
def revert(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Also put back records someone changed by hand since the"
                                        " switch (refused without it, naming them; what they held is journaled).")] = False,
    dry_run: DryRun = False, yes: Yes = False, json: Json = False,
) -> None:
    """Undo the latest applied DNS switch from the journal: every record back exactly as it was.

    A record someone changed by hand since the switch is not overwritten without --force."""
    from golive.cli.render import show_plan

    a = app_of(ctx, json)
    found = next(((run, step.seq) for run in a.journal.runs(500) for step in a.journal.steps(run.id)
                  if step.kind == "dns.switch" and step.status in ("applied", "applying", "undoing", "undo_failed")),
                 None)
    if found is None:  # (as `golive rollback` with nothing to do: a drill's clean-up may run it twice)
        a.say("nothing to revert: no applied DNS switch in the journal (`golive dns show` shows where the records"
              " point)")
        if a.json:
            a.emit_json(NOTHING_TO_REVERT)
        return
    run, seq = found
    again = command_again(ctx, "dns revert" + given_options(yes, json))
    runner = a.runner({"force": force, "dry_run": dry_run, "again": again})
    what = f"revert of dns switch (run {run.id}, step {seq})"
    if dry_run:
        show_plan(a, what, runner.rollback_plan(run, {seq}))
        a.done({"dry_run": True, "run": run.id, "step": seq})
        return
    a.lock()
    outcome = runner.rollback(run, confirm=lambda p: a.confirm(what, p, yes), only={seq},
                              again=again + (" --force" if force else ""))
    a.say(f"reverted the dns switch of run {run.id}")
    if a.json:
        a.emit_json({"event": "result", "ok": True, "target": run.id, **outcome.as_dict(), "notices": a.notices})


# the result when there is no switch to revert: the keys a revert's result has (no run was made: `run` is null, as
# `golive rollback`'s with nothing to roll back)
NOTHING_TO_REVERT = {"event": "result", "ok": True, "target": None, "run": None, "status": "nothing to do", "steps": [],
                     "notices": []}
