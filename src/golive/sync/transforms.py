"""Column transforms of the mapping: built-ins by name, or a custom one as "package.module:function".

A transform takes the source value and returns the target value, or raises :class:`Reject` (the
row goes to the reject file with the reason).
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from golive.sync.passwords import DJANGO_SCRYPT_MAXMEM, PasswordReject, hash_format, werkzeug_to_django

__all__ = ["BUILTIN", "SPACE", "JsonText", "Reject", "bool_value", "int_value", "json_text", "jsonb_text",
           "parse_datetime", "resolve_transform"]

Transform = Callable[[Any], Any]


SPACE = " \t\n\r\v\f"  # what PostgreSQL's input skips around a number, a boolean, a date-time


class Reject(ValueError):
    """This value cannot be carried over; the reason says why."""


_BOOLS: dict[Any, bool] = {1: True, 0: False, "1": True, "0": False, "t": True, "f": False, "true": True,
                           "false": False}


def bool_value(value: Any) -> bool | None:
    if value is None:
        return None
    if value.__class__ is int or value.__class__ is str:  # the usual 0/1 of SQLite: one dict look-up
        hit = _BOOLS.get(value)
        if hit is not None:
            return hit
    if isinstance(value, bool):
        return value
    text = str(value).strip(SPACE).lower()  # (the words PostgreSQL's boolean input takes)
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise Reject(f"{value!r} is not a boolean (0/1, true/false, t/f)")


def int_value(value: Any) -> int:
    """An integer as PostgreSQL's integer input reads it: an int, an integral float or Decimal (3.0, not 3.7),
    or a text of ASCII digits with an optional sign (and spaces around: not "1_000", "1e3" or "٣"). The range is
    the column's to check."""
    if value.__class__ is int:
        return int(value)
    if isinstance(value, str):
        text = value.strip(SPACE)
        digits = text[1:] if text[:1] in ("+", "-") else text
        if digits.isascii() and digits.isdigit():
            try:
                return int(text)
            except ValueError:  # (more digits than Python converts: no integer column holds them)
                raise Reject(f"{len(digits)} digits, out of range for an integer") from None
    integral = ((isinstance(value, int) and not isinstance(value, bool))
                or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
                or (isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()))
    if integral:
        return int(value)
    raise Reject(f"{value!r} is not an integer")


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int_value(value)


class JsonText(str):
    """JSON text, checked as PostgreSQL's input checks it. Into a json or jsonb column it is stored as written
    (json keeps the text, jsonb normalises it); into any other column it is that text. Equal to its text, and
    to the Python dict or list it reads as (``JsonText('{"a": 1}') == {"a": 1}``)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dict | list):
            return bool(json.loads(self) == other)
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def _no_constant(name: str) -> Any:
    raise Reject(f"{name} is not valid JSON (PostgreSQL refuses it)")


def json_text(value: Any) -> JsonText:
    """``value`` as JSON text: a text as written (if it is valid JSON that PostgreSQL takes: not ``NaN`` or
    ``Infinity``, which Python reads), any other value written as JSON; or a :class:`Reject` saying why not."""
    if value.__class__ is JsonText:
        return value
    if isinstance(value, str):
        try:  # (integers kept as text: checked, not converted, however many digits they have)
            json.loads(value, parse_constant=_no_constant, parse_int=str)
        except Reject:
            raise
        except json.JSONDecodeError as exc:
            raise Reject(f"not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise Reject("JSON nested too deeply") from None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Reject("invalid UTF-8 in text (PostgreSQL cannot store it)") from None
        return JsonText(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise Reject("binary data is not JSON text")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise Reject(f"{value} is not valid JSON (PostgreSQL refuses it)")
        return JsonText(str(value))
    try:
        return JsonText(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise Reject(f"a {type(value).__name__} ({value!r:.60}) is not JSON: {exc}") from None


def jsonb_text(text: JsonText) -> JsonText:
    """JSON text that jsonb can store too: jsonb refuses a ``\\u0000`` escape and an unpaired surrogate."""
    if "\\u" not in text:
        return text
    strings: list[str] = []
    nodes = [json.loads(text, parse_int=str, parse_float=str)]
    while nodes:
        node = nodes.pop()
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, list):
            nodes += node
        elif isinstance(node, dict):
            strings += node
            nodes += node.values()
    for string in strings:
        if "\x00" in string:
            raise Reject("a \\u0000 escape in JSON (jsonb cannot store it)")
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            raise Reject("an unpaired surrogate escape in JSON (jsonb cannot store it)") from None
    return text


def _json(value: Any) -> JsonText | None:
    """The ``json`` transform: a source text is JSON text, checked and kept as written (``'"123"'`` is the JSON
    string "123", not the number); any other value is written as JSON. Into a json or jsonb column it is that
    JSON value, into a text column its text (:class:`JsonText`, by binary and text COPY alike)."""
    return None if value is None else json_text(value)


def parse_datetime(value: Any) -> datetime:
    """A datetime from an ISO 8601 text (``Z`` allowed) or a datetime; anything else is a reject."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:  # (spaces around it taken, as PostgreSQL's input takes them: under any source_timezone alike)
            return datetime.fromisoformat(value.strip(SPACE).replace("Z", "+00:00"))
        except ValueError:
            pass
    raise Reject(f"{value!r} is not a date-time")


def to_utc(source_timezone: str) -> Transform:
    zone = ZoneInfo(source_timezone)
    utc = source_timezone.upper() in ("UTC", "ETC/UTC", "Z")
    parse = datetime.fromisoformat

    def convert(value: Any) -> datetime | None:
        if value is None or value == "":
            return None
        if utc and value.__class__ is str:
            try:  # the common case, naive text read as UTC: one C call (replace(tzinfo=) costs 5x more)
                return parse(value + "+00:00")
            except ValueError:
                pass  # it carries an offset (or is not a date-time): the general path decides
        moment = parse_datetime(value)
        if moment.tzinfo is None:  # naive: read in the source's time zone
            moment = moment.replace(tzinfo=zone)
        try:
            converted: datetime = moment.astimezone(UTC)
        except OverflowError:  # (0001-01-01 00:00 east of UTC, a "no date" placeholder: before year 1 in UTC)
            raise Reject(f"{value!r} in {moment.tzinfo} is out of range in UTC (years 1 to 9999)") from None
        return converted

    return convert


def _password(unknown: str, maxmem: int | None) -> Transform:
    limit = DJANGO_SCRYPT_MAXMEM if maxmem is None else maxmem

    def convert(value: Any) -> str:
        try:
            return werkzeug_to_django(value, unknown=unknown, maxmem=limit)
        except PasswordReject as exc:
            raise Reject(str(exc)) from None

    setattr(convert, "format_of", functools.partial(hash_format, maxmem=limit))  # noqa: B010 (the report's counts)
    return convert


def _with_many(one: Transform, many: Callable[[list[Any]], list[Any] | None]) -> Transform:
    """Give a transform a whole-column form: the same results for a batch of values with C-speed loops,
    or None when the batch has a value only the one-by-one form knows how to take (or reject)."""
    setattr(one, "many", many)  # noqa: B010 (an attribute on a function)
    return one


def _str_method(method: Callable[[str], str]) -> Transform:
    def many(values: list[Any]) -> list[Any] | None:
        return list(map(method, values)) if set(map(type, values)) <= {str} else None

    return _with_many(lambda v: method(v) if isinstance(v, str) else v, many)


def _bools(values: list[Any]) -> list[Any] | None:
    if not set(map(type, values)) <= {int, str}:
        return None
    try:
        return list(map(_BOOLS.__getitem__, values))
    except KeyError:
        return None


def _utc_texts(source_timezone: str) -> Transform:
    one = to_utc(source_timezone)
    parse = datetime.fromisoformat

    def many(values: list[Any]) -> list[Any] | None:
        if source_timezone.upper() not in ("UTC", "ETC/UTC") or not set(map(type, values)) <= {str}:
            return None
        try:
            return [parse(v + "+00:00") for v in values]  # naive texts, read as UTC
        except ValueError:
            return None  # one has an offset, or is not a date-time

    return _with_many(one, many)


BUILTIN: dict[str, Callable[..., Transform]] = {
    "lower": lambda **_: _str_method(str.lower),
    "strip": lambda **_: _str_method(str.strip),
    # Unicode's compatibility form, as Django keeps usernames (`normalize_username`) and reads what a user types at
    # login: a username stored otherwise ("ﬁona", a decomposed "é", full-width letters) never matches it
    "nfkc": lambda **_: _str_method(functools.partial(unicodedata.normalize, "NFKC")),
    "bool": lambda **_: _with_many(bool_value, _bools),
    "int": lambda **_: _int,
    "json": lambda **_: _json,
    "null_if_empty": lambda **_: _with_many(lambda v: None if v == "" else v,
                                            lambda values: [None if v == "" else v for v in values]),
    "to_utc": lambda source_timezone="UTC", **_: _utc_texts(source_timezone),
    "werkzeug_to_django": lambda unknown_hashes="reject", scrypt_maxmem=None, **_: _password(unknown_hashes,
                                                                                            scrypt_maxmem),
}


def resolve_transform(name: str, **options: Any) -> Transform:
    """A built-in by name, or "package.module:function" (the function is the transform)."""
    if name in BUILTIN:
        return BUILTIN[name](**options)
    module, sep, attr = name.partition(":")
    if not sep:
        raise KeyError(f"unknown transform {name!r}: built-ins are {', '.join(BUILTIN)}, or use 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"transform {name!r} cannot be imported: {exc}") from None
    except Exception as exc:  # the module fails as it loads (a SyntaxError, a setting it needs): its error, one line
        from golive.errors import first_line

        raise KeyError(f"transform {name!r} cannot be imported: module {module} failed as it loaded:"
                       f" {type(exc).__name__}: {first_line(exc)}") from None
    if not callable(fn):  # (found now, not at the first row, mid-sync after the backup)
        raise KeyError(f"transform {name!r} is {type(fn).__name__} {fn!r:.40}, not a function: name a function that"
                       " takes the source value")
    transform: Transform = fn
    return transform
