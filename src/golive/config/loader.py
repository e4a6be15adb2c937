"""Load ``golive.toml``: permissions, TOML syntax, then the pydantic models, with every error
turned into one line that names the key path, the line in the file, and the fix.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from golive.errors import ConfigError
from golive.secrets import check_private

__all__ = ["kind_of", "load_config", "locate_lines", "read_toml", "secret_literals"]

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


def kind_of(value: Any) -> str:
    """What a TOML value is, in TOML's words (never the value: it may be a secret)."""
    import datetime

    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "true/false"), (int, "an integer"), (float, "a number"), (str, "a string"),
        (dict, "a table"), (list, "an array"), ((datetime.date, datetime.time), "a date/time")]
    return next((kind for types, kind in kinds if isinstance(value, types)), "another kind of value")


# pydantic's type errors that name internal types ("instance of SecretRef", "<class 'pathlib.Path'>") -> what the
# key accepts, in the file's words
_ACCEPTS = {"string_type": "a string", "int_type": "an integer", "float_type": "a number", "bool_type": "true/false",
            "list_type": "an array", "dict_type": "a table", "model_type": "a table", "dataclass_type": "a table",
            "path_type": 'a path (a string, e.g. "/srv/app")'}


def _member(tag: str) -> str:
    """A union member as pydantic names it in an error's location ("str", "SecretRef", "list[str]")."""
    builtin = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false"}
    return builtin.get(tag) or ("an array" if tag.startswith("list[") else "a table")


def _in_file(loc: tuple[str | int, ...], data: Any, missing: bool) -> tuple[tuple[str | int, ...], str | None]:
    """``loc`` as the file spells it, and the union member pydantic tried there (a location part that is no key
    of the file: everything from it on is inside that member), or None."""
    path: list[str | int] = []
    node: Any = data
    for i, part in enumerate(loc):
        inside = (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int))
        if inside:
            node = node[part]
        elif not (missing and i == len(loc) - 1):  # (a required key not written is the one part not in the file)
            return tuple(path), str(part)
        path.append(part)
    return tuple(path), None


def _value_at(data: Any, loc: tuple[str | int, ...]) -> Any:
    for part in loc:
        data = data[part]
    return data


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
    if err["type"] in _ACCEPTS:
        return f"expected {_ACCEPTS[err['type']]}, not {kind_of(err['input'])}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg


def _rendered(exc: Any, text: str, data: Any, root: Any, path: Path,
              label: Callable[[tuple[str | int, ...]], str] | None = None) -> str:
    """A ValidationError as one line: file and line, key path (``label``: what to say after it), what is wrong and
    what the key accepts."""
    lines = locate_lines(text)
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo explains the rest
    found: dict[tuple[str | int, ...], tuple[dict[str, Any], list[str]]] = {}  # key path -> first error, members
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "union["))))
        key, member = _in_file(loc, data, err["type"] == "missing")
        _, members = found.setdefault(key, ({**err, "loc": key}, []))
        if member is not None and _member(member) not in members:
            members.append(_member(member))
    key, (err, members) = next(iter(found.items()))
    union = f"expected {' or '.join(members)}, not {kind_of(_value_at(data, key))}" if members else None
    message = union or _message(err, root)  # (union: no member took the value)
    line = _line_of(key, lines)
    at = f"{path}:{line}" if line else str(path)
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{at}: {_dotted(key)}{label(key) if label else ''}: {message}{more}"


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text of a TOML file and what it holds; a file that cannot be read, is not UTF-8 or is not valid TOML
    is one line naming the file and the line (``path:LINE: …``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        row = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{row}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x})",
                          hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", hint="check its permissions") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        at = f"{path}:{where[1]}" if where else str(path)
        raise ConfigError(f"{at}: not valid TOML: {reason}", hint="fix the syntax at that line") from None


def load_config(path: Path) -> Any:
    from pydantic import ValidationError

    from golive.config.models import GoliveConfig

    if not path.exists():
        raise ConfigError(f"no config file at {path}", hint="run `golive init` to write one, or pass -c PATH")
    if not path.is_file():
        raise ConfigError(f"{path} is not a file", hint="pass -c the path of golive.toml itself")
    check_private(path, "config file")
    text, data = read_toml(path)
    try:
        config = GoliveConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_rendered(exc, text, data, GoliveConfig, path)) from None
    base = path.resolve().parent
    config = _rebased(config, base).model_copy(update={"base_dir": base, "path": path})
    _register_env_literals(config)
    _register_secrets(config)
    return config


def _register_secrets(value: Any) -> None:
    """Mask every secret the config references that resolves here, from the start: a command golive runs (a
    freeze command that failed to log in, say) may print the old database's password though no gateway of this
    command resolved its URL; the password was then in its output, the journal and the reports."""
    from pydantic import BaseModel

    from golive.secrets import SecretRef

    if isinstance(value, SecretRef):
        value.mask()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _register_secrets(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            _register_secrets(item)
    elif isinstance(value, dict):
        for item in value.values():
            _register_secrets(item)


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
