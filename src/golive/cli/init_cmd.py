"""golive init."""

from __future__ import annotations

import os
from importlib import resources
from typing import Annotated

import typer

from golive.cli.options import Json, app_of


def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
    json: Json = False,
) -> None:
    """Write a commented golive.toml (every section) and mapping.toml to start from."""
    from golive.errors import UsageError
    from golive.sandbox.apache import vhost_snippet

    a = app_of(ctx, json)
    config = a.config_path
    targets = {config: "golive.toml", config.parent / "mapping.toml": "mapping.toml"}
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exist(s)", hint="pass --force to overwrite")
    for path, template in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = resources.files("golive.templates").joinpath(template).read_text()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(path, 0o600)
        a.say(f"wrote {path}")
    a.say("next: edit them, then run `golive config check`")
    a.say("Apache: the site golive swaps needs (see README, Blue-green swap):")
    for line in vhost_snippet("/etc/apache2/golive-upstream.conf").splitlines():
        a.say(f"    {line}")
    a.done({"written": [str(p) for p in targets]})
