"""Load ``golive.toml``: permissions, TOML syntax, then the pydantic models, with every error
turned into one line that names the key path, the line in the file, and the fix.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

from golive.errors import ConfigError
from golive.secrets import check_private

__all__ = ["load_config", "locate_lines", "secret_literals"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.\-"' ]+?)\s*=""")


def _split_key(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.split(r"\.(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", text)]


def locate_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map key paths (as pydantic reports them, list indexes included) to 1-based line numbers.

    Covers table headers, arrays of tables, dotted keys and plain keys; good enough to point a
    human at the right line, which is all it is for.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: tuple[str | int, ...] = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            in_multiline = line.count('"""') % 2 == 0 and line.count("'''") % 2 == 0
            continue
        header = _HEADER.match(line)
        if header:
            names = tuple(_split_key(header[2]))
            if header[1] == "[[":
                index = counts.get(names, 0)
                counts[names] = index + 1
                table = (*names, index)
            else:
                # a sub-table of the latest array element, e.g. [table.columns] after [[table]]
                parent = names[:-1]
                table = (*parent, counts[parent] - 1, names[-1]) if parent in counts else names
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key and not line.lstrip().startswith("#"):
            path = (*table, *_split_key(key[1]))
            lines.setdefault(path, number)
            if line.count('"""') == 1 or line.count("'''") == 1:
                in_multiline = True
    return lines


def _line_of(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _fields_at(model: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model found at ``loc`` (for "did you mean")."""
    import typing

    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            break
        annotation = fields[part].annotation
        for arg in (annotation, *typing.get_args(annotation)):
            for inner in (arg, *typing.get_args(arg)):
                if hasattr(inner, "model_fields"):
                    model = inner
                    break
    return [f.alias or name for name, f in getattr(model, "model_fields", {}).items()
            if name not in ("base_dir", "path")]


def _message(err: dict[str, Any], root: Any) -> str:
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        known = _fields_at(root, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        where = _dotted(loc[:-1]) or "top level"
        suggestion = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return f"unknown key {loc[-1]!r} in {where} — {suggestion}"
    if err["type"] == "missing":
        return "is required but missing — add it"  # the caller puts the key path in front
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config(path: Path) -> Any:
    from pydantic import ValidationError

    from golive.config.models import GoliveConfig

    if not path.exists():
        raise ConfigError(f"no config file at {path}", hint="run `golive init` to write one, or pass -c PATH")
    if not path.is_file():
        raise ConfigError(f"{path} is not a file", hint="pass -c the path of golive.toml itself")
    check_private(path, "config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        row = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{row}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x})",
                          hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", hint="check its permissions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        at = f"{path}:{where[1]}" if where else str(path)
        raise ConfigError(f"{at}: not valid TOML: {reason}", hint="fix the syntax at that line") from None
    try:
        config = GoliveConfig.model_validate(data)
    except ValidationError as exc:
        lines = locate_lines(text)
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo explains the rest
        err = errors[0]
        loc = tuple(err["loc"])
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith(("function-", "union["))))
        line = _line_of(loc, lines)
        at = f"{path}:{line}" if line else str(path)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{at}: {_dotted(loc)}: {_message(dict(err), GoliveConfig)}{more}") from None
    base = path.resolve().parent
    config = _rebased(config, base).model_copy(update={"base_dir": base, "path": path})
    _register_env_literals(config)
    return config


def _rebased(value: Any, base: Path, key: str = "") -> Any:
    """``value`` with every path as the user meant it: ``~`` expanded; a relative ``file:`` secret reference or
    ``sqlite:///`` source made absolute from the config's folder (as every other path in the config is), not from
    wherever golive was started. Each secret reference learns its key path, which its errors name."""
    from golive.secrets import SecretRef, sqlite_beside

    if isinstance(value, SecretRef):
        target = value.target
        if value.kind == "file":
            target = str(base / Path(target).expanduser())  # (an absolute path stays itself)
        return SecretRef(f"{value.kind}:{target}", key, str(base))
    if isinstance(value, Path):
        return value.expanduser() if str(value).startswith("~") else value
    if isinstance(value, str) and key == "source.url":
        return sqlite_beside(value, base)
    if hasattr(type(value), "model_fields") and not isinstance(value, type):
        fields = type(value).model_fields
        update = {name: _rebased(getattr(value, name), base, f"{key}.{f.alias or name}".lstrip("."))
                  for name, f in fields.items()}
        return value.model_copy(update={k: v for k, v in update.items() if v is not getattr(value, k)})
    if isinstance(value, list):
        items = [_rebased(v, base, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        rebased = {k: _rebased(v, base, f"{key}.{k}") for k, v in value.items()}
        return rebased if any(rebased[k] is not value[k] for k in value) else value
    return value


def secret_literals(config: Any) -> list[str]:
    """The ``[containers].env`` names whose literal value looks like a secret (by the rule the env_file's
    masking uses): they belong in env_file or behind "env:NAME"."""
    env = config.containers.env if config.containers is not None else {}
    if not env:
        return []
    from golive.secrets import kept_secret

    return [name for name, value in env.items() if isinstance(value, str) and kept_secret(name, value)]


def _register_env_literals(config: Any) -> None:
    """Mask the literal values of secret-named container variables in every output, as env_file's are."""
    from golive.secrets import REDACTOR

    for name in secret_literals(config):
        REDACTOR.add(config.containers.env[name])
