"""golive swap [--to COLOUR] [--image REF] / golive swap finalize."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from golive.cli.groups import help_of
from golive.cli.options import DryRun, Json, Yes, a_value, app_of, one_of

app = typer.Typer(help=help_of("swap") + "\n\n`golive swap` starts the idle colour from the image, waits for its health,"
                  " points Apache at it (a tested graceful reload, or in map mode a RewriteMap renamed into place)"
                  " and confirms through the public URL; the old colour keeps running, so `golive rollback` is a"
                  " switch back. `golive swap finalize` removes the old colour after the bake time.",
                  add_completion=False)


@app.callback(invoke_without_command=True)
def swap(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", help="green or blue (default: the idle colour).",
                                           callback=one_of("green", "blue"))] = None,
    image: Annotated[str | None, typer.Option("--image", help="Image to start (default: \\[containers].image).",
                                              callback=a_value)] = None,
    prepare: Annotated[bool, typer.Option("--prepare", help="Only start the idle colour and prove it healthy, ahead"
                                          " of time; the next `golive swap` with the same image keeps it and"
                                          " just switches.")] = False,
    dry_run: DryRun = False, yes: Yes = False, json: Json = False,
) -> None:
    """Start the idle colour from the image, wait for its health, point Apache at it (a tested graceful
    reload, or in the proxy's map switch mode a RewriteMap renamed into place, no restart), and confirm
    through the public URL. The old colour keeps running for rollback."""
    if ctx.invoked_subcommand is not None:
        return
    from golive.swap.steps import Swap

    a = app_of(ctx, json)
    if prepare:
        from golive.swap.steps import Prepare

        what = f"prepare {to or 'the idle colour'}"
        if a.execute("swap prepare", what, [Prepare(to=to, image=image)], yes=yes, dry_run=dry_run,
                     args={"to": to, "image": image}) is not None:
            a.say("prepared: the idle colour runs the image and is healthy; nothing was switched. `golive swap`"
                  " with the same image switches to it (undo: `golive rollback`)")
        return
    outcome = a.execute("swap", f"swap to {to or 'the idle colour'}", [Swap(to=to, image=image)], yes=yes,
                        dry_run=dry_run, args={"to": to, "image": image})
    if outcome is not None and outcome.run_id is not None:  # (None: the live colour runs that build already)
        a.say("swapped; the old colour keeps running until `golive swap finalize` (undo: `golive rollback`)")


@app.command("finalize")
def finalize(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Finalize before \\[containers].bake_time has passed.")] = False,
    dry_run: DryRun = False, yes: Yes = False, json: Json = False,
) -> None:
    """After the bake time, stop and remove the old colour (undo recreates it from its recorded image)."""
    from golive.errors import UnsafePlan
    from golive.swap.steps import Finalize

    a = app_of(ctx, json)
    bake = a.config.require("containers").bake_time
    newest = next((s for run in a.journal.runs(500) for s in reversed(a.journal.steps(run.id))
                   if s.kind in ("swap.swap", "swap.prepare") and s.status == "applied"), None)
    if newest is not None and newest.kind == "swap.prepare":  # the idle colour is the next release, not the old one
        raise UnsafePlan(f"the idle colour ({(newest.before or {}).get('idle', '?')}) was prepared by `golive swap"
                         " --prepare`, not left by a swap: finalize would remove the release about to go live",
                         hint="`golive swap` switches to it; `golive rollback` removes it")
    last = newest.finished_at if newest is not None and newest.kind == "swap.swap" else None
    if last is not None and not force:
        age = (datetime.now(UTC) - datetime.fromisoformat(last)).total_seconds()
        if age < bake:
            raise UnsafePlan(f"the last swap was {age:.0f}s ago, inside the bake time of {bake:g}s",
                             hint=f"wait {bake - age:.0f}s more while the new colour serves (`golive status`), or pass --force")
    # (no old colour left: its plan is "absent" and the runner makes no run, so a rollback still undoes the swap)
    a.execute("swap finalize", "swap finalize", [Finalize()], yes=yes, dry_run=dry_run)
