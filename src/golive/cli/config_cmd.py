"""golive config check|show."""

from __future__ import annotations

import json as jsonlib
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from golive.cli.groups import help_of
from golive.cli.options import Json, app_of
from golive.errors import CheckFailed

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


Strict = Annotated[bool, typer.Option("--strict", help="Exit 1 if anything was warned about (a secret reference that"
                                      " does not resolve here, a file others can read, a missing env_file or source):"
                                      " for a script that gates the night on it.")]


@app.command("check")
def check(ctx: typer.Context, json: Json = False, strict: Strict = False) -> None:
    """Validate golive.toml: syntax, keys, types, file modes, and whether each secret reference resolves; and the
    \\[sync].mapping file, as a sync loads it. What would stop a command later is a warning (exit 0, or 1 with
    --strict)."""
    a = app_of(ctx, json)
    config = a.config
    app_warnings: list[str] = []
    mapping = _mapping(config, app_warnings)
    sections = [name for name in type(config).model_fields
                if name not in ("base_dir", "path") and getattr(config, name) is not None]
    problems = {key: _problem(ref, key) for key, ref in _secret_refs(config)}
    refs = [{"key": key, "ref": str(ref), "available": problems[key] is None} for key, ref in _secret_refs(config)]
    a.say(f"{config.path}: valid — sections: {', '.join(sections)}")
    for key, ref in _secret_refs(config):
        if problems[key] is not None:
            a.warn(f"{key} = {str(ref)!r} does not resolve here ({problems[key]}); commands that need it will stop")
    for key, ref in _secret_refs(config):
        if ref.kind == "file" and ref.available():
            _private(a, Path(ref.target), key)
    _env_file(a, config)
    _literals(a, config)
    _sqlite_source(a, config)
    for line in app_warnings:
        a.warn(line)
    if strict and a.warned:
        raise _Warned(a.warned)
    a.done({"valid": True, "path": str(config.path), "sections": sections, "secrets": refs, "mapping": mapping,
            "warnings": a.warned})


class _Warned(CheckFailed):
    """`config check --strict` with warnings: its --json error lists them all, as the check's result would."""

    def __init__(self, warned: list[str]) -> None:
        super().__init__(f"config check --strict: {len(warned)} warning(s); the first: {warned[0]}",
                         hint="fix what the warnings name (or check without --strict)")
        self.warned = warned

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "type": "CheckFailed", "warnings": self.warned}


def _mapping(config: Any, app_warnings: list[str]) -> str | None:
    """[sync].mapping loads as `golive sync` loads it (keys, transforms, one entry per target; no database): its
    first error is the check's, exit 2."""
    from golive.sync.mapping import load_mapping, unchecked_files

    if config.sync is None:
        return None
    path = config.resolve(config.sync.mapping)
    for line in unchecked_files(load_mapping(path), len(config.sync.media)):
        app_warnings.append(f"mapping: {line}")
    return str(path)


def _problem(ref: Any, key: str) -> str | None:
    """Why a reference does not resolve here, in a few words (None: it does); a URL's is read too."""
    from golive.errors import ConfigError
    from golive.secrets import PERCENT_ENCODE, userinfo_problem

    problem: str | None = ref.problem()
    if problem is None and key.endswith(".url"):  # (read, not resolved: a file's mode is the check below's to say)
        try:
            why = userinfo_problem(ref.peek())
        except ConfigError:
            why = None
        if why:
            return f"{why}: {PERCENT_ENCODE}"
    if problem is None:
        return None
    for words in ("not set", "empty", "does not exist"):
        if f" {words}" in problem:
            return words
    return problem


def _literals(a: Any, config: Any) -> None:
    """[containers].env values that look like secrets, written in golive.toml as they are."""
    from golive.config.loader import secret_literals

    for name in secret_literals(config):
        a.warn(f'containers.env.{name} is written here as it is; a secret belongs in env_file or behind "env:NAME"'
               " (it is masked in golive's output either way)")


def _sqlite_source(a: Any, config: Any) -> None:
    url = config.source.url if config.source is not None else None
    if isinstance(url, str) and url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        a.warn(f"source.url: {url.removeprefix('sqlite:///')} does not exist; `golive sync` will stop")


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
