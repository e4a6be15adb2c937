"""The command groups, loaded only when used: `golive --help` lists them from this table without
importing their modules, so the CLI starts as fast as a two-command Typer app."""

from __future__ import annotations

# name -> (module holding `app`, one-line help). The modules use the same help text.
GROUPS: dict[str, tuple[str, str]] = {
    "config": ("golive.cli.config_cmd", "Validate golive.toml, or show it resolved (secrets redacted)."),
    "lock": ("golive.cli.lock_cmd", "The run lock: one mutating run at a time per state directory."),
    "freeze": ("golive.cli.freeze_cmd", "Write freeze of the old application (maintenance mode): on, off, status."),
    "sync": ("golive.cli.sync_cmd", "Data sync from the old database into the new one: verified, backed up first."),
    "dns": ("golive.cli.dns_cmd", "DNS records through the Linode API: show, lower the TTL, switch, verify, revert."),
    "swap": ("golive.cli.swap_cmd", "Blue-green container swap behind the proxy (Apache), and its finalize."),
    "sandbox": ("golive.cli.sandbox_cmd",
                "Local stand-ins for rehearsals: the Linode API emulator and an authoritative DNS server."),
}


def help_of(name: str) -> str:
    return GROUPS[name][1]
