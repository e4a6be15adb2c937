"""mapping.toml: which source tables feed which target tables, column by column.

Errors name the table (by its target) and the column, with the line in the file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from golive.errors import ConfigError
from golive.sync.passwords import DJANGO_SCRYPT_MAXMEM
from golive.sync.transforms import BUILTIN, Transform, resolve_transform

if TYPE_CHECKING:
    from golive.sync.pgtypes import ColumnType

__all__ = ["Column", "Mapping", "TableMap", "check_defaults", "load_mapping"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnSpec(_Model):
    from_: str | list[str] = Field(alias="from")
    transform: str | None = None


class Options(_Model):
    source_timezone: str = "UTC"
    unknown_hashes: Literal["reject", "unusable"] = "reject"
    overlap_seconds: float = Field(300, ge=0, description="re-read rows changed this long before the last watermark")
    # bytes: the maxmem of the Django project's scrypt hasher (examples/dirfinal's: 128 MiB); an scrypt hash needing
    # more to check is rejected (or made unusable), since every login of its user would fail
    scrypt_maxmem: int = Field(DJANGO_SCRYPT_MAXMEM, ge=1024 * 1024)

    @field_validator("source_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        """A typo is named here, at its key, not later as the to_utc column that first reads it."""
        import difflib
        from zoneinfo import ZoneInfo, available_timezones

        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # (not found: ZoneInfoNotFoundError, a KeyError; "../x": ValueError)
            pass
        else:
            return value
        zones = available_timezones()
        if not zones:
            raise ValueError(f"{value!r}: this machine has no time zone database — install tzdata")
        close = [z for z in zones if z.lower() == value.lower()] or difflib.get_close_matches(value, zones, n=1)
        fix = f"did you mean {close[0]!r}?" if close else 'write an IANA name such as "Europe/London" or "UTC"'
        raise ValueError(f"{value!r} is not a time zone — {fix}")


class TableSpec(_Model):
    source: str | None = None
    query: str | None = None
    target: str
    key: str | list[str]
    changed: str | None = None
    columns: dict[str, str | ColumnSpec]
    defaults: dict[str, Any] = Field(default_factory=dict)
    unique_ci: list[str] = Field(default_factory=list, description="target columns whose values must differ"
                                 " case-insensitively (checked before commit)")
    files: list[str] = Field(default_factory=list, description="target columns holding paths of media files, which"
                             " must exist in a [[sync.media]] folder")

    @model_validator(mode="after")
    def _one_source(self) -> TableSpec:
        if (self.source is None) == (self.query is None):
            raise ValueError("give exactly one of source = \"table\" or query = \"SELECT …\"")
        return self


class MappingSpec(_Model):
    options: Options = Field(default_factory=Options)
    table: list[TableSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Column:
    target: str
    sources: tuple[str, ...]
    transform: Transform | None
    transform_name: str | None

    def value(self, row: dict[str, Any]) -> Any:
        raw = row[self.sources[0]] if len(self.sources) == 1 else [row[s] for s in self.sources]
        return self.transform(raw) if self.transform else raw


@dataclass(frozen=True)
class TableMap:
    source: str | None
    query: str | None
    target: str
    key: tuple[str, ...]  # source key columns
    target_key: tuple[str, ...]  # the target columns they feed as-is (the namesake, else the first listed)
    changed: str | None
    columns: tuple[Column, ...]
    defaults: dict[str, Any]
    unique_ci: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    defaults_at: dict[str, str] = field(default_factory=dict, compare=False)  # default -> "mapping.toml:LINE"

    @property
    def source_columns(self) -> list[str]:
        wanted = [s for c in self.columns for s in c.sources] + list(self.key)
        if self.changed:
            wanted.append(self.changed)
        return list(dict.fromkeys(wanted))

    @property
    def target_columns(self) -> list[str]:
        return [c.target for c in self.columns] + [k for k in self.defaults if k not in {c.target for c in self.columns}]

    def label(self) -> str:
        return f"{self.source or 'query'} -> {self.target}"


@dataclass(frozen=True)
class Mapping:
    tables: tuple[TableMap, ...]
    options: Options

    def select(self, names: list[str] | None) -> tuple[TableMap, ...]:
        if not names:
            return self.tables
        known = {t.target: t for t in self.tables} | {t.source: t for t in self.tables if t.source}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"--tables names {', '.join(missing)}, not in the mapping",
                              hint=f"known: {', '.join(t.target for t in self.tables)}")
        return tuple(t for t in self.tables if t.target in names or t.source in names)


At = Callable[..., str]  # (a key path under this [[table]]) -> "mapping.toml:LINE", the nearest line known


def _table(spec: TableSpec, options: Options, at: At) -> TableMap:
    for name, where in [(spec.target, at("target"))] + [(c, at("columns", c)) for c in spec.columns] + \
            [(d, at("defaults", d)) for d in spec.defaults]:
        if "%" in name:  # (golive's statements on the target take parameters: psycopg would read it as one)
            what = "table" if name == spec.target and where == at("target") else f"table {spec.target}: column"
            raise ConfigError(f"{where}: {what} {name}: golive cannot write to a name holding `%`",
                              hint="rename it in the new database (in Django, the field's db_column or db_table)")
    columns = []
    for target, value in spec.columns.items():
        col = ColumnSpec(**{"from": value}) if isinstance(value, str) else value
        sources = (col.from_,) if isinstance(col.from_, str) else tuple(col.from_)
        where = f"{at('columns', target)}: table {spec.target}, column {target}"
        if not sources:
            raise ConfigError(f"{where}: from = [] names no source column", hint=f'name one, e.g. from = "{target}"')
        if col.transform is not None and not col.transform.strip():
            raise ConfigError(f'{where}: transform = "{col.transform}" names no transform',
                              hint="remove it to carry the value as it is, or name one")
        if len(sources) > 1 and col.transform is None:
            raise ConfigError(f"{where}: several source columns need a transform")
        if len(sources) > 1 and col.transform in BUILTIN:  # (each takes one value: a list went through unchanged)
            raise ConfigError(f"{where}: the built-in transform {col.transform} takes one value, and from names"
                              f" {len(sources)} source columns",
                              hint="use a custom transform ('package.module:function'), which gets their values as"
                                   " a list")
        transform = None
        if col.transform:
            try:
                transform = resolve_transform(col.transform, source_timezone=options.source_timezone,
                                              unknown_hashes=options.unknown_hashes,
                                              scrypt_maxmem=options.scrypt_maxmem)
            except KeyError as exc:
                raise ConfigError(f"{at('columns', target)}: table {spec.target}, column {target}: {exc.args[0]}") \
                    from None
        columns.append(Column(target, sources, transform, col.transform))
    both = [c.target for c in columns if c.target in spec.defaults]
    if both:
        raise ConfigError(f"{at('defaults', both[0])}: table {spec.target}: column {both[0]} is both in [table.columns]"
                          " and in [table.defaults], and the default would never be used",
                          hint=f"remove {both[0]} from one of them")
    key = (spec.key,) if isinstance(spec.key, str) else tuple(spec.key)
    twice = [k for i, k in enumerate(key) if k in key[:i]]
    if twice:
        raise ConfigError(f"{at('key')}: table {spec.target}: key names {twice[0]} twice",
                          hint="list each key column once")
    feeds = _key_feeds(columns)
    missing = [k for k in key if k not in feeds]
    if missing:
        raise ConfigError(f"{at('key')}: table {spec.target}: key column(s) {', '.join(missing)} must be mapped as-is"
                          " to a target column", hint=f'add e.g. {missing[0]} = "{missing[0]}" under [table.columns]')
    for option in ("unique_ci", "files"):
        unknown = [c for c in getattr(spec, option) if c not in {col.target for col in columns}]
        if unknown:
            raise ConfigError(f"{at(option)}: table {spec.target}: {option} names {', '.join(unknown)}, which no column"
                              " feeds")
    query = _one_statement(spec.query, f"{at('query')}: table {spec.target}") if spec.query is not None else None
    return TableMap(spec.source, query, spec.target, key, tuple(feeds[k] for k in key), spec.changed,
                    tuple(columns), dict(spec.defaults), tuple(spec.unique_ci), tuple(spec.files),
                    {name: at("defaults", name) for name in spec.defaults})


_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}
_DOLLAR = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def _one_statement(query: str, where: str) -> str:
    """The query without what would break golive's ``(query) AS q`` around it: a trailing ``;`` (and
    whitespace and comments after it) and a trailing ``-- comment`` (which would comment out ``) AS q``).
    As written when it ends in neither. A ``;`` before its end (a second statement) is an error."""
    end, semicolons, i = 0, [], 0  # end: just after the last character that is neither space, comment nor ';'
    while i < len(query):
        char = query[i]
        dollar = _DOLLAR.match(query, i) if char == "$" else None  # (PostgreSQL's $tag$ … $tag$)
        if char in _QUOTES or dollar:
            close = dollar[0] if dollar else _QUOTES[char]
            i = query.find(close, i + (len(close) if dollar else 1))
            while i != -1 and not dollar and close != "]" and query.startswith(close, i + 1):  # a doubled quote
                i = query.find(close, i + 2)
            i = len(query) if i == -1 else i + len(close)  # (unterminated: the source will say so)
            end = i
        elif query.startswith("--", i):
            newline = query.find("\n", i)
            i = len(query) if newline == -1 else newline + 1
        elif query.startswith("/*", i):
            close_at = query.find("*/", i + 2)
            i = len(query) if close_at == -1 else close_at + 2
        else:
            if char == ";":
                semicolons.append(i)
            elif not char.isspace():
                end = i + 1
            i += 1
    if any(at < end for at in semicolons):
        raise ConfigError(f"{where}: query holds more than one statement (a ';' before its end)", hint="give one SELECT")
    return query if not query[end:].strip() else query[:end]


def check_defaults(table: TableMap, types: dict[str, ColumnType]) -> None:
    """Each ``[table.defaults]`` value fits its target column, as the sync would make it fit (a binary-COPY
    type; other types are read by PostgreSQL itself): a config error naming the line, table and column, found
    where the mapping meets the target's column types — before the plan, the backup and any row."""
    from zoneinfo import ZoneInfo

    from golive.sync.pgtypes import fit_column

    for name, value in table.defaults.items():
        kind = types.get(name)
        if kind is None or not kind.binary or value is None:
            continue  # (a column the target lacks is said by the caller)

        def bad(_: int, reason: str, name: str = name) -> None:
            where = table.defaults_at.get(name, "mapping")
            raise ConfigError(f"{where}: table {table.target}, default {name}: {reason}",
                              hint="give a value the column takes, or remove it")

        fit_column([value], kind, ZoneInfo("UTC"), bad)


def _key_feeds(columns: list[Column]) -> dict[str, str]:
    """Source column -> the target column that carries it as the key: one it feeds as-is (no transform). When
    it feeds several (``id = "id"`` and ``legacy_id = "id"``), the one of its own name, else the first listed —
    never whichever the file happens to list last."""
    feeds: dict[str, str] = {}
    for c in columns:
        if len(c.sources) == 1 and c.transform is None:
            source = c.sources[0]
            if source not in feeds or c.target == source:
                feeds[source] = c.target
    return feeds


def _one_entry_per_target(specs: list[TableSpec], at: Callable[[int], At]) -> None:
    """Two [[table]] entries writing one target table would each delete the other's rows as gone from its
    source, and each sync would find the other's rows changed since golive wrote them."""
    seen: dict[str, list[int]] = {}
    for index, spec in enumerate(specs):
        seen.setdefault(spec.target, []).append(index)
    for target, indexes in seen.items():
        if len(indexes) > 1:
            count = {2: "two", 3: "three"}.get(len(indexes), str(len(indexes)))
            feeds = ", ".join(specs[i].source or "a query" for i in indexes)
            raise ConfigError(f"{at(indexes[1])('target')}: table {target} is fed by {count} [[table]] entries ({feeds})",
                              hint='use one query = "SELECT … UNION ALL …"')


def load_mapping(path: Path) -> Mapping:
    from golive.config.loader import _line_of, locate_lines, read_toml

    if not path.exists():
        raise ConfigError(f"no mapping file at {path}", hint="set [sync].mapping, or run `golive init` for an example")
    text, data = read_toml(path)  # (a syntax error: "mapping.toml:LINE: not valid TOML: …", as golive.toml's)
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise _invalid(path, text, data, exc) from None
    lines = locate_lines(text)

    def at(index: int) -> At:
        def where(*loc: str) -> str:
            line = _line_of(("table", index, *loc), lines)
            return f"{path}:{line}" if line else str(path)
        return where

    _one_entry_per_target(list(spec.table), at)
    # a custom transform's module beside mapping.toml is found however golive was started (`python -m golive` has
    # the working directory on the path, the installed `golive` command does not)
    beside = str(path.resolve().parent)
    if beside not in sys.path:
        sys.path.append(beside)
    return Mapping(tuple(_table(t, spec.options, at(i)) for i, t in enumerate(spec.table)), spec.options)


def _invalid(path: Path, text: str, data: dict[str, Any], exc: ValidationError) -> ConfigError:
    """The first error as golive.toml's loader words it, with the line and the table's target: a mistyped key
    first (it explains the rest, and gets a "did you mean"), else a value of the wrong kind with what the key
    accepts (`key = 5`: "expected a string or an array", not the members' names)."""
    from golive.config.loader import _dotted, _line_of, _message, _rendered, locate_lines

    tables = data.get("table", [])

    def table(key: tuple[str | int, ...]) -> str:
        at = key[1] if len(key) > 1 and key[0] == "table" else None
        found = tables[at] if isinstance(at, int) and at < len(tables) and isinstance(tables[at], dict) else None
        return f" (table {found.get('target', '?')})" if found is not None else ""

    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    if err["type"] != "extra_forbidden":
        return ConfigError(_rendered(exc, text, data, MappingSpec, path, table))
    loc = tuple(p for p in err["loc"]  # (without the tags pydantic puts in: which member of str | ColumnSpec)
                if not (isinstance(p, str) and (p.startswith(("function-", "union[")) or p == "ColumnSpec")))
    line = _line_of(loc, locate_lines(text))
    return ConfigError(f"{path}:{line or '?'}: {_dotted(loc)}{table(loc)}: {_message({**err, 'loc': loc}, MappingSpec)}")


def unchecked_files(mapping: Mapping, media_folders: int) -> list[str]:
    """Warnings for a mapping whose tables name ``files`` columns when no ``[[sync.media]]`` folder is configured:
    their paths are checked against none, and no file reaches the new site."""
    if media_folders:
        return []
    return [f"table {t.target}: files = {list(t.files)} names media paths, but no [[sync.media]] folder is configured:"
            " they are not checked and no file is copied" for t in mapping.tables if t.files]
