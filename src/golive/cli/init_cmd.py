"""golive init."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from golive.cli.options import Json, app_of

RELOAD_LINES = ('switch = "reload"', 'upstream_file = "/etc/apache2/golive-upstream.conf"')
MAP_LINES = ('switch = "map"', 'upstream_file = "/etc/apache2/golive-upstream.map"')


def _template(name: str, switch: str) -> str:
    text = resources.files("golive.templates").joinpath(name).read_text()
    if name == "golive.toml" and switch == "map":
        for old, new in zip(RELOAD_LINES, MAP_LINES, strict=True):
            text = text.replace(old, new, 1)
    return text


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _snippet(config_text: str) -> str:
    """The vhost for the mode, file and ports the written golive.toml configures."""
    import tomllib

    from golive.sandbox.apache import vhost_snippet

    data: dict[str, Any] = tomllib.loads(config_text)
    proxy, containers = data["proxy"], data["containers"]
    ports = (int(containers["blue"]["host_port"]), int(containers["green"]["host_port"]))
    return vhost_snippet(proxy["upstream_file"], proxy["upstream_variable"], proxy["switch"], ports)


def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
    switch: Annotated[str, typer.Option("--switch", help="\\[proxy].switch: reload (include + graceful) or map"
                                        " (RewriteMap, no restart).")] = "reload",
    json: Json = False,
) -> None:
    """Write a commented golive.toml (every section) and mapping.toml to start from."""
    from golive.errors import UsageError

    if switch not in ("reload", "map"):
        raise UsageError(f"--switch must be reload or map, not {switch!r}")
    a = app_of(ctx, json)
    config = a.config_path
    targets = {config: "golive.toml", config.parent / "mapping.toml": "mapping.toml"}
    existing = [p for p in targets if p.exists()]
    if len(existing) == len(targets) and not force:
        raise UsageError(f"{', '.join(map(str, existing))} already exist", hint="pass --force to overwrite them")
    texts = {path: _template(name, switch) for path, name in targets.items()}
    written = [path for path in targets if force or path not in existing]  # (one of the two missing: only that one)
    for path in targets:
        if path in written:
            _write_private(path, texts[path])
            a.say(f"wrote {path}")
        else:
            a.say(f"kept {path} (it exists; --force overwrites it)")
    a.say("next: edit them, then run `golive config check`")
    a.say("Apache: the site golive swaps needs (see README, Blue-green swap):")
    for line in _snippet(texts[config]).splitlines():
        a.say(f"    {line}")
    a.done({"written": [str(p) for p in written], "kept": [str(p) for p in targets if p not in written], "switch": switch})
