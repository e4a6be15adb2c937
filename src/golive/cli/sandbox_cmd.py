"""golive sandbox linode|dns — local stand-ins for what a rehearsal cannot reach."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from golive.cli.groups import help_of
from golive.cli.options import app_of

app = typer.Typer(help=help_of("sandbox"), add_completion=False,
                  no_args_is_help=True)

State = Annotated[Path, typer.Option("--state", help="The emulator's JSON state file (created if missing).")]


@app.command("linode")
def linode(
    ctx: typer.Context,
    state: State = Path("linode-state.json"),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Loopback port to serve on.")] = 8780,
    token_env: Annotated[str, typer.Option("--token-env", help="Environment variable holding the read/write token"
                                           " the emulator accepts (never printed).")] = "LINODE_TOKEN",
    seed: Annotated[str | None, typer.Option("--seed", help="Create this domain (apex and www A records) on a new"
                                             " state file.")] = None,
    target: Annotated[str, typer.Option("--target", help="Where --seed's records point.")] = "203.0.113.10",
    ttl: Annotated[int, typer.Option("--ttl", help="--seed's TTL in seconds (at most \\[dns].cutover_ttl lets a"
                                      " rehearsal switch at once).")] = 3600,
) -> None:
    """Serve the Linode API v4 Domains emulator on 127.0.0.1:PORT until Ctrl-C."""
    from golive.errors import UsageError
    from golive.sandbox.linode import LinodeEmulator
    from golive.sandbox.linode_api import seed as seed_domain

    a = app_of(ctx)
    token = os.environ.get(token_env)
    if not token:
        raise UsageError(f"environment variable {token_env} is not set", hint=f"export {token_env}=<any test token>")
    fresh = not state.exists()
    try:
        emulator = LinodeEmulator(state, port=port)
    except OSError as exc:
        raise UsageError(f"cannot serve the Linode emulator on 127.0.0.1:{port}: {exc.strerror or exc}",
                         hint="pick another --port (one nothing listens on)") from None
    emulator.edit(lambda s: s["tokens"].update({token: ["domains:read_write"]}))
    if seed and fresh:
        emulator.edit(lambda s: seed_domain(s, seed, target, ttl=ttl))
    a.say(f"Linode emulator on {emulator.url} (state {state}); set [linode].api_url to it. Ctrl-C stops it.")
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        a.say("stopped")


@app.command("dns")
def dns(
    ctx: typer.Context,
    state: State = Path("linode-state.json"),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Loopback UDP and TCP port.")] = 5353,
    delay: Annotated[float, typer.Option("--delay", min=0, help="Seconds before an API change is visible.")] = 0.0,
) -> None:
    """Serve the emulator's zones as an authoritative DNS server on 127.0.0.1:PORT until Ctrl-C."""
    from golive.sandbox.dns import DnsServer

    a = app_of(ctx)
    try:
        server = DnsServer(state, port=port, delay=delay).start()
    except OSError as exc:
        from golive.errors import UsageError

        raise UsageError(f"cannot serve DNS on 127.0.0.1:{port}: {exc.strerror or exc}",
                         hint="pick another --port (one nothing listens on)") from None
    a.say(f"authoritative DNS on 127.0.0.1:{server.port} (UDP+TCP), delay {delay:g}s;"
          f' use nameservers = ["127.0.0.1:{server.port}"]. Ctrl-C stops it.')
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
        a.say("stopped")
