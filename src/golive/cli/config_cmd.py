"""golive config check|show."""

from __future__ import annotations

import json as jsonlib
import re
from pathlib import Path
from typing import Any

import typer

from golive.cli.groups import help_of
from golive.cli.options import Json, app_of

app = typer.Typer(help=help_of("config"), add_completion=False, no_args_is_help=True)


def _secret_refs(value: Any, path: str = "") -> list[tuple[str, Any]]:
    from golive.secrets import SecretRef

    if isinstance(value, SecretRef):
        return [(path, value)]
    if hasattr(type(value), "model_fields") and not isinstance(value, type):
        return [r for name in type(value).model_fields for r in _secret_refs(getattr(value, name),
                                                                            f"{path}.{name}".lstrip("."))]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in _secret_refs(v, f"{path}[{i}]")]
    if isinstance(value, dict):  # ([containers].env)
        return [r for k, v in value.items() for r in _secret_refs(v, f"{path}.{k}")]
    return []


@app.command("check")
def check(ctx: typer.Context, json: Json = False) -> None:
    """Validate golive.toml: syntax, keys, types, file modes, and whether each secret reference resolves."""
    a = app_of(ctx, json)
    config = a.config
    sections = [name for name in type(config).model_fields
                if name not in ("base_dir", "path") and getattr(config, name) is not None]
    refs = [{"key": key, "ref": str(ref), "available": ref.available()} for key, ref in _secret_refs(config)]
    a.say(f"{config.path}: valid — sections: {', '.join(sections)}")
    for ref in refs:
        if not ref["available"]:
            a.warn(f"{ref['key']} = {ref['ref']!r} does not resolve here (not set); commands that need it will stop")
    for key, ref in _secret_refs(config):
        if ref.kind == "file" and ref.available():
            _private(a, Path(ref.target), key)
    _env_file(a, config)
    a.done({"valid": True, "path": str(config.path), "sections": sections, "secrets": refs})


def _env_file(a: Any, config: Any) -> None:
    """[containers].env_file holds the application's secrets: a swap stops if it is missing or others may
    read it; say so here first."""
    if config.containers is None or config.containers.env_file is None:
        return
    path = config.resolve(config.containers.env_file)
    if not path.is_file():
        a.warn(f"containers.env_file {path} does not exist; `golive swap` will stop")
        return
    _private(a, path, "containers.env_file", "`golive swap` will stop")


def _private(a: Any, path: Path, what: str, then: str = "commands that need it will stop") -> None:
    from golive.errors import ConfigError
    from golive.secrets import check_private

    try:
        check_private(path, what)
    except ConfigError as exc:
        a.warn(f"{exc.message}; {then} ({exc.hint})")


def _plain(value: Any) -> Any:
    from golive.secrets import SecretRef

    if isinstance(value, SecretRef):
        return str(value)
    if hasattr(type(value), "model_fields") and not isinstance(value, type):
        return {(f.alias or name): _plain(getattr(value, name)) for name, f in type(value).model_fields.items()
                if name not in ("base_dir", "path") and getattr(value, name) is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value if isinstance(value, int | float | bool | str) else str(value)


@app.command("show")
def show(ctx: typer.Context, json: Json = False) -> None:
    """Show the resolved configuration (defaults filled in); secrets appear only as their references."""
    from golive.secrets import redact

    a = app_of(ctx, json)
    data = jsonlib.loads(jsonlib.dumps(redact(_plain(a.config)), default=str))  # (paths as text)
    assert isinstance(data, dict)
    for section, body in data.items():
        a.say(f"[{section}]")
        for key, value in body.items():
            a.say(f"# {_toml_key(key)}: not set" if value is None else f"{_toml_key(key)} = {_toml_value(value)}")
        a.say("")
    a.done({"config": data})


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else jsonlib.dumps(key)


def _toml_value(value: object) -> str:
    """A value as TOML (what `config show` prints can be pasted back into golive.toml): strings as basic
    strings (JSON's escapes are TOML's), tables inline, unset keys left out."""
    if isinstance(value, dict):
        items = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return jsonlib.dumps(value)
