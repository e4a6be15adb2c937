"""The target table's column types, and how a column of source values is made to fit them.

Binary COPY is used when every mapped column has a type listed here: each value must then be of the
Python type psycopg's binary dumper for that column expects, so a batch of values is checked column
by column (``set(map(type, values))``, C speed) and only the values that do not fit go through a
per-value coercion — the same reading PostgreSQL's text input would have given them (``"12"`` into
a bigint column is 12; a naive time stamp is read in the mapping's ``source_timezone``), or a
:class:`Reject` naming what is wrong. Checks PostgreSQL would otherwise fail the whole COPY on
(integer range, ``varchar(n)`` length) are made here too, so the reject names the row and column.
Tables with any other column type fall back to text COPY, where PostgreSQL parses every value.
"""

from __future__ import annotations

import math
import re
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import cache, partial
from operator import attrgetter, is_not, methodcaller
from typing import Any

from golive.sync.source import ident
from golive.sync.transforms import SPACE as _SPACE
from golive.sync.transforms import Reject, bool_value, int_value, json_text, jsonb_text, parse_datetime

__all__ = ["ColumnType", "column_types", "compared", "fit_column", "not_none", "rows_differ"]

_INT_RANGE = {"int2": (-(2**15), 2**15 - 1), "int4": (-(2**31), 2**31 - 1), "int8": (-(2**63), 2**63 - 1)}
_TEXT = ("text", "varchar", "bpchar")
_SHOWN = {"bpchar": "char"}  # (a type as the schema that declared it says it)


@dataclass(frozen=True)
class ColumnType:
    name: str
    typname: str  # pg_type.typname: int8, varchar, timestamptz, …
    length: int | None = None  # varchar(n) / char(n)
    required: bool = False  # NOT NULL with no default: a row cannot be inserted without a value for it
    not_null: bool = False  # NOT NULL: a NULL written to it is refused, default or not
    digits: tuple[int, int] | None = None  # numeric(precision, scale)
    always: bool = False  # GENERATED ALWAYS AS IDENTITY: an insert gives its value only with OVERRIDING SYSTEM VALUE

    @property
    def binary(self) -> bool:
        return self.typname in _FITS


def column_types(conn: Any, table: str) -> dict[str, ColumnType]:
    found = conn.execute("SELECT to_regclass(%s)", (ident(table),)).fetchone()
    if found is None or found[0] is None:
        from golive.errors import ConfigError

        raise ConfigError(f"the target database has no table {table}",
                          hint="run the new application's migrations first (python manage.py migrate), or fix the mapping")
    rows = conn.execute(
        "SELECT a.attname, t.typname, CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4"
        " THEN a.atttypmod - 4 END, a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '',"
        " a.attnotnull, CASE WHEN t.typname = 'numeric' AND a.atttypmod >= 4 THEN a.atttypmod - 4 END,"
        " a.attidentity = 'a' FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped", (ident(table),)).fetchall()
    return {name: ColumnType(name, typname, length, required, not_null, _digits(typmod), always)
            for name, typname, length, required, not_null, typmod, always in rows}


def _digits(typmod: int | None) -> tuple[int, int] | None:
    """numeric(precision, scale) from its type modifier (less the 4-byte header): the precision in the high 16
    bits, the scale in the low 11 as a signed number (PostgreSQL 15 takes a negative scale, or one above the
    precision)."""
    return None if typmod is None else ((typmod >> 16) & 0xFFFF, ((typmod & 0x7FF) ^ 1024) - 1024)


# types whose equality holds exactly when their text forms are the same: compared as they are (no text made)
_SAME_AS_TEXT = frozenset({"int2", "int4", "int8", "bool", "text", "varchar", "bpchar", "date", "time", "timestamp",
                           "timestamptz", "uuid", "bytea", "jsonb"})


def rows_differ(left: str, right: str, columns: Sequence[str], typnames: dict[str, str]) -> str:
    """SQL: the rows aliased ``left`` and ``right`` differ in ``columns``. The one definition the merge (which
    rows to write), the check for others' changes and verification share. A column of another type goes by its
    text: ``numeric`` 1.5 = 1.50 and ``float8`` -0 = 0 though they show (and sync) differently, and ``json`` has
    no equality at all."""
    return (f"ROW({', '.join(compared(left, c, typnames) for c in columns)}) IS DISTINCT FROM"
            f" ROW({', '.join(compared(right, c, typnames) for c in columns)})")


def compared(alias: str, column: str, typnames: dict[str, str]) -> str:
    """SQL: the column's value as rows are compared and hashed (:func:`rows_differ`, verification's sums)."""
    return f"{alias}.{ident(column)}" + ("" if typnames.get(column) in _SAME_AS_TEXT else "::text")


# -- per-value coercions: what PostgreSQL's text input would have made of the value ----------------------

def _int(value: Any, kind: ColumnType, zone: tzinfo) -> int:
    number = int_value(value)
    low, high = _INT_RANGE[kind.typname]
    if not low <= number <= high:
        raise Reject(f"{value!r} is out of range for {kind.typname}")
    return number


# a number as PostgreSQL's float input takes it (Python's float() also takes "1_000.5" and other digits than ASCII)
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?inf(?:inity)?|nan", re.IGNORECASE)
_FLOAT4_TINY = 2.0 ** -149  # the smallest float4 above 0: below it a value may round to 0
_FLOAT4_MAX = 3.4028234663852886e38  # the largest float4


def _float(value: Any, kind: ColumnType, zone: tzinfo) -> float:
    """A float as PostgreSQL's input reads it: a value too large or too small for the type (``1e400``, which
    Python reads as infinity; ``1e-400``, read as 0) is out of range, not infinity or 0. Infinity itself
    (``Infinity``, ``-inf``, an infinite REAL) stays."""
    if isinstance(value, str):
        text = value.strip(_SPACE)
        if not _FLOAT_TEXT.fullmatch(text):
            raise Reject(f"{value!r} is not a number")
        mantissa = text.lower().partition("e")[0]  # ("inf", "infinity", "nan": no e)
        number, infinite, zero = float(text), mantissa.lstrip("+-")[:1].isalpha(), mantissa.strip("+-.0") == ""
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise Reject(f"{value!r} is not a number") from None
        except OverflowError:  # (an int beyond any float)
            raise Reject(f"{value!r} is out of range for {kind.typname}") from None
        infinite = isinstance(value, float | Decimal) and not math.isfinite(value)
        zero = not value
    stored = number
    if kind.typname == "float4" and math.isfinite(number):
        try:
            stored = struct.unpack("f", struct.pack("f", number))[0]  # (as float4 holds it)
        except OverflowError:
            stored = math.inf
    if (math.isinf(stored) and not infinite) or (stored == 0 and not zero):
        raise Reject(f"{value!r} is out of range for {kind.typname}")
    return number


def _numeric(value: Any, kind: ColumnType, zone: tzinfo) -> Decimal:
    """A number as PostgreSQL's numeric input reads it (Python's Decimal also takes ``"1_000"`` and digits other
    than ASCII), and for ``numeric(p, s)`` one that fits once rounded to ``s`` places — else PostgreSQL fails
    the whole COPY with "numeric field overflow", naming no row."""
    if isinstance(value, bool):
        number = Decimal(int(value))
    elif isinstance(value, Decimal):
        number = value
    else:
        text = str(value).strip(_SPACE) if isinstance(value, str | int | float) else ""
        if not _FLOAT_TEXT.fullmatch(text):
            raise Reject(f"{value!r} is not a number")
        number = Decimal(text)
    if number.is_finite() and not _numeric_in_range([number]):
        raise Reject(f"{value!r} is out of range for PostgreSQL's numeric (at most {_NUMERIC_BEFORE} digits before the"
                     f" point and {_NUMERIC_AFTER} after)")
    if kind.digits is not None and not number.is_nan():
        precision, scale = kind.digits
        if number.is_infinite():
            raise Reject(f"{value!r}: numeric({precision},{scale}) cannot hold an infinite value")
        if not abs(number) < _numeric_bound(kind.digits):
            largest = format(_EXACT.subtract(_EXACT.power(10, precision - scale), _EXACT.power(10, -scale)), "f")
            raise Reject(f"{value!r} is out of range for numeric({precision},{scale}): the largest it holds is {largest}")
    return number


_NUMERIC_BEFORE, _NUMERIC_AFTER = 131072, 16383  # (PostgreSQL's numeric: digits before and after the point)
_as_tuple = methodcaller("as_tuple")


def _numeric_in_range(numbers: list[Decimal]) -> bool:
    """Whether every number is within what PostgreSQL's numeric holds at all (its text input refuses more, and
    psycopg cannot pack it for binary COPY); a NaN or an infinity is left to the caller."""
    try:
        exponents = [t.exponent for t in map(_as_tuple, numbers)]
        return min(exponents, default=0) >= -_NUMERIC_AFTER and \
            max((n.adjusted() for n in numbers if n), default=0) < _NUMERIC_BEFORE
    except TypeError:  # (a NaN's or an infinity's exponent is a letter)
        return False


@cache
def _numeric_bound(digits: tuple[int, int]) -> Decimal:
    """The smallest magnitude ``numeric(p, s)`` cannot hold: 10^(p-s) less half a unit of the s-th place (a value
    rounds half away from zero to ``s`` places, then may have at most p-s digits before the point)."""
    precision, scale = digits
    return _EXACT.subtract(_EXACT.power(10, precision - scale), _EXACT.multiply(5, _EXACT.power(10, -scale - 1)))


_EXACT = Context(prec=2 * 1000 + 10, rounding=ROUND_HALF_UP)  # (numeric's precision and scale are at most 1000 each)


_SCALARS = (str, int, float, Decimal, date, time, uuid.UUID)  # (bool is an int; datetime a date)


def _text(value: Any, kind: ColumnType, zone: tzinfo) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        raise Reject(f"binary data into a {kind.typname} column")
    if not isinstance(value, _SCALARS):  # (its repr would be written, not a value: a transform returned the wrong thing)
        raise Reject(f"a {type(value).__name__} ({value!r:.60}) is not text for a {kind.typname} column")
    text = value if value.__class__ is str else str(value)  # (JsonText, from the json transform: its text)
    if kind.length is not None and len(text) > kind.length:
        raise Reject(f"{len(text)} characters, longer than {_SHOWN.get(kind.typname, kind.typname)}({kind.length})")
    return text


def _bool(value: Any, kind: ColumnType, zone: tzinfo) -> bool:
    result = bool_value(value)
    assert result is not None
    return result


def _timestamptz(value: Any, kind: ColumnType, zone: tzinfo) -> datetime:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    moment = parse_datetime(value)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _timestamp(value: Any, kind: ColumnType, zone: tzinfo) -> datetime:
    moment = _timestamptz(value, kind, zone)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not zone else moment.replace(tzinfo=None)


def _date(value: Any, kind: ColumnType, zone: tzinfo) -> date:
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(value.strip()) if isinstance(value, str) else _fail(value, "a date")
    except ValueError:
        raise Reject(f"{value!r} is not a date") from None


def _uuid(value: Any, kind: ColumnType, zone: tzinfo) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Reject(f"{value!r} is not a UUID") from None


def _bytea(value: Any, kind: ColumnType, zone: tzinfo) -> bytes:
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise Reject(f"{value!r} is not binary data")


def _json(value: Any, kind: ColumnType, zone: tzinfo) -> Any:
    """JSON text (as text COPY would have read a text: :func:`json_text`), sent as it is written: PostgreSQL
    reads it as its text input does (a json column keeps it as it is, jsonb normalises it, numbers keep every
    digit). A dict or list (from a custom transform) is written as JSON here, so a value JSON cannot hold is a
    reject, not a failed COPY."""
    text = json_text(value)
    return _wrapped_json()(jsonb_text(text) if kind.typname == "jsonb" else text, dumps=str)


@cache
def _wrapped_json() -> Any:
    """psycopg's JSON wrapper (imported at the first JSON value: a sync, not every command): with ``dumps=str``
    the dumper of a json or jsonb column sends the text as it is."""
    from psycopg.types.json import Jsonb

    return Jsonb


def _fail(value: Any, what: str) -> Any:
    raise Reject(f"{value!r} is not {what}")


Fit = Callable[[Any, ColumnType, tzinfo], Any]
_NONE = type(None)
# typname -> (the Python types its binary dumper takes as they are, the coercion for any other value)
_FITS: dict[str, tuple[frozenset[type], Fit]] = {
    **{name: (frozenset({int}), _int) for name in _INT_RANGE},
    "float4": (frozenset({float}), _float), "float8": (frozenset({float}), _float),
    "numeric": (frozenset({Decimal}), _numeric),
    **{name: (frozenset({str}), _text) for name in _TEXT},
    "bool": (frozenset({bool}), _bool),
    "timestamptz": (frozenset(), _timestamptz),  # aware datetimes: checked below
    "timestamp": (frozenset(), _timestamp),
    "date": (frozenset({date}), _date),
    "uuid": (frozenset({uuid.UUID}), _uuid),
    "bytea": (frozenset({bytes}), _bytea),
    "json": (frozenset(), _json), "jsonb": (frozenset(), _json),  # every value checked (and sent) as JSON text
}


def _fits_as_is(values: list[Any], kind: ColumnType) -> bool:
    """Whether every value already is what the binary dumper takes (checked with C loops: map, filter)."""
    kinds = set(map(type, values))
    has_none = _NONE in kinds
    kinds.discard(_NONE)
    present = list(filter(not_none, values)) if has_none else values
    if kind.typname in ("timestamptz", "timestamp"):
        if kinds - {datetime}:
            return False
        zones = set(map(_tzinfo, present))
        return (None not in zones) if kind.typname == "timestamptz" else zones <= {None}
    if not kinds <= _FITS[kind.typname][0]:
        return False
    if kind.typname in _INT_RANGE and kinds:
        low, high = _INT_RANGE[kind.typname]
        return bool(low <= min(present) and max(present) <= high)
    if kind.typname == "float4" and kinds:  # (a NaN compares False: the value by value check then decides)
        tiny = min(filter(None, map(abs, present)), default=_FLOAT4_TINY)
        return bool(max(present) <= _FLOAT4_MAX and min(present) >= -_FLOAT4_MAX and tiny >= _FLOAT4_TINY)
    if kind.length is not None and kinds:
        return max(map(len, present)) <= kind.length
    if kind.typname == "numeric" and kinds and not _numeric_in_range(present):
        return False
    if kind.digits is not None and kinds:
        try:
            return bool(max(map(abs, present)) < _numeric_bound(kind.digits))
        except InvalidOperation:  # (a NaN does not order: the value by value check decides)
            return False
    return True


_tzinfo = attrgetter("tzinfo")
not_none = partial(is_not, None)


def fit_column(values: list[Any], kind: ColumnType, zone: tzinfo, bad: Callable[[int, str], None]) -> list[Any]:
    """The column's values as its binary type takes them; ``bad(row, reason)`` for each that cannot be."""
    if _fits_as_is(values, kind):
        return values
    expected, fit = _FITS[kind.typname]
    out = list(values)
    for i, value in enumerate(values):
        if value is None or (type(value) in expected and _fits_as_is([value], kind)):
            continue
        try:
            out[i] = fit(value, kind, zone)
        except Reject as exc:
            bad(i, str(exc))
    return out
