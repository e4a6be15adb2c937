"""From a batch of source rows to target rows, column by column.

A batch (a few thousand source rows, tuples in ``TableMap.source_columns`` order) is turned around
into columns, and each column goes through its transform with ``map`` — a C loop — falling back to
value by value only when something in the column is rejected. Then each column is made to fit its
target type (:mod:`golive.sync.pgtypes`, for binary COPY), text is checked for what PostgreSQL
cannot store (NUL, invalid UTF-8), and media paths are looked up. A row with any problem is rejected
once, for its first column at fault, with the reason; the others come out as tuples in
``TableMap.target_columns`` order, ready for ``copy.write_row``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext, redirect_stdout
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from golive.sync.mapping import Column, TableMap
from golive.sync.passwords import hash_format
from golive.sync.pgtypes import ColumnType, fit_column, not_none
from golive.sync.stamps import time_key
from golive.sync.transforms import Reject
from golive.sync.verify import as_int_key, canonical

__all__ = ["Batch", "RowPipe", "encodes"]


@dataclass
class Batch:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)  # keys of ``rows``: ints (int_key) or canonical text
    rejected_keys: list[Any] = field(default_factory=list)  # keys of the rejected rows, as read
    rejects: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    earliest_rejected: Any = None  # the smallest `changed` stamp among rejected rows
    newest: Any = None  # the largest `changed` stamp among the rows read (rejected or not)
    newest_known: bool = True  # False when the stamps could not be compared (mixed types: ask the source)


class RowPipe:
    def __init__(self, table: TableMap, types: dict[str, ColumnType], zone: tzinfo,
                 media_roots: tuple[tuple[Path, Path], ...] = (), int_key: bool = False, binary: bool = True) -> None:
        """``types``: the target's column types. ``binary``: the table goes by binary COPY (values are fitted to
        their types), else by text COPY (PostgreSQL parses them; NULLs into NOT NULL columns and JSON PostgreSQL
        would refuse are rejects here all the same: either fails the whole COPY, naming no row).
        ``int_key``: the table is keyed by one integer column (binary COPY): keys come out as ints."""
        self.table, self.types, self.zone, self.media_roots = table, types, zone, media_roots
        self.int_key, self.binary = int_key, binary
        self.index = {name: i for i, name in enumerate(table.source_columns)}
        self.key_index = [self.index[k] for k in table.key]
        self.formats: Counter[str] = Counter()
        mapped = {c.target for c in table.columns}
        self.defaults = [(k, v) for k, v in table.defaults.items() if k not in mapped]

    def process(self, raw: list[tuple[Any, ...]]) -> Batch:
        batch, bad = Batch(), dict[int, tuple[str, str]]()  # bad: row index -> (column, reason), the first column at fault
        columns = list(zip(*raw, strict=True)) if raw else [() for _ in self.index]
        if self.table.changed:
            self._newest(batch, columns[self.index[self.table.changed]])
        out: list[Any] = []
        for column in self.table.columns:
            def reject(i: int, reason: str, name: str = column.target) -> None:
                bad.setdefault(i, (name, reason))
            values = self._transformed(column, columns, reject)
            kind = self.types[column.target]
            if self.binary or kind.typname in _FITTED_AS_TEXT:
                values = fit_column(values, kind, self.zone, reject)
            if kind.not_null and None in values:  # (the COPY would fail as a whole, naming no row)
                for i in [i for i, value in enumerate(values) if value is None]:
                    reject(i, "NULL in a NOT NULL column")
            _check_text(values, reject)
            if column.target in self.table.files and self.media_roots:
                batch.problems += self._missing_files(column, values, raw)
            out.append(values)
        for name, value in self.defaults:
            out.append([self._default(name, value)] * len(raw))
        target_key = [out[self.table.target_columns.index(k)] for k in self.table.target_key]
        if not bad:
            batch.rows = list(zip(*out, strict=True))
            batch.keys = self._keys(target_key)
            return batch
        keep = [i for i in range(len(raw)) if i not in bad]
        batch.rows = [tuple(col[i] for col in out) for i in keep]
        batch.keys = self._keys([[col[i] for i in keep] for col in target_key])
        # a rejected row's key, as the source has it, still counts as present (it must not be deleted)
        raw_keys = [[columns[i][r] for r in sorted(bad)] for i in self.key_index]
        batch.rejected_keys = list(map(as_int_key, raw_keys[0])) if self.int_key else self._keys(raw_keys)
        self._rejects(batch, raw, bad)
        return batch

    @staticmethod
    def _newest(batch: Batch, stamps: tuple[Any, ...]) -> None:
        present = list(filter(not_none, stamps))
        try:
            batch.newest = max(present) if present else None
        except TypeError:  # e.g. text and numbers in one SQLite column: the source orders those its own way
            batch.newest_known = False

    def _transformed(self, column: Column, columns: list[Any], reject: Callable[[int, str], None]) -> list[Any]:
        if len(column.sources) == 1:
            values: list[Any] = list(columns[self.index[column.sources[0]]])
        else:
            values = [list(parts) for parts in zip(*(columns[self.index[s]] for s in column.sources), strict=True)]
        if column.transform_name == "werkzeug_to_django":
            self.formats.update(map(getattr(column.transform, "format_of", hash_format), values))
        if column.transform is None:
            return values
        custom = ":" in (column.transform_name or "")  # "package.module:function", not a built-in
        # what a custom transform prints goes to stderr: stdout is golive's (--json: one JSON document, or NDJSON)
        with redirect_stdout(sys.stderr) if custom else nullcontext():
            many = getattr(column.transform, "many", None)
            fast = many(values) if many is not None else None
            if fast is not None:
                return fast  # type: ignore[no-any-return]
            try:
                return list(map(column.transform, values))
            except (Exception, SystemExit):  # someone in this batch is rejected, or the transform failed: find who
                pass  # (SystemExit too: a transform's sys.exit() is its failure; KeyboardInterrupt still interrupts)
            out = []
            for i, value in enumerate(values):
                try:
                    out.append(column.transform(value))
                except Reject as exc:
                    reject(i, str(exc))
                    out.append(None)
                except (Exception, SystemExit) as exc:
                    raise self._failed(column, columns, i, exc) from exc
            return out

    def _failed(self, column: Column, columns: list[Any], i: int, exc: BaseException) -> Exception:
        """A transform that raised something other than :class:`Reject` (a bug in it, or a value it did not
        expect): one line naming the table, key, column and transform."""
        from golive.errors import GoliveError, first_line

        key = ", ".join(f"{k}={columns[at][i]!r}" for k, at in zip(self.table.key, self.key_index, strict=True))
        return GoliveError(f"table {self.table.target}, key {key}, column {column.target}: transform"
                           f" {column.transform_name} failed: {type(exc).__name__}: {first_line(exc)}",
                           hint="fix the transform (a value it cannot carry over should raise"
                                " golive.sync.transforms.Reject, which rejects the row) or the source value")

    def _default(self, name: str, value: Any) -> Any:
        if not self.binary or value is None:
            return value
        fitted = fit_column([value], self.types[name], self.zone, lambda i, reason: _bad_default(name, reason))
        return fitted[0]

    def _keys(self, key_columns: list[Any]) -> list[Any]:
        if self.int_key:
            return list(key_columns[0])  # fitted to the integer column: ints already
        if len(key_columns) == 1:
            values = key_columns[0]
            return list(map(str, values)) if set(map(type, values)) <= {int, str} else list(map(canonical, values))
        joined = ["\x1f".join(map(canonical, parts)) for parts in zip(*key_columns, strict=True)]
        separators = len(key_columns) - 1
        if "".join(joined).count("\x1f") == separators * len(joined):
            return joined
        from golive.errors import GoliveError

        for parts, key in zip(zip(*key_columns, strict=True), joined, strict=True):
            if key.count("\x1f") != separators:  # ("x\x1fy", "z") and ("x", "y\x1fz") would be one key
                raise GoliveError(f"table {self.table.target}, key {parts!r}: a key value holds the character U+001F,"
                                  " which golive puts between the values of a composite key (two rows could pass for"
                                  " one); nothing was written", hint="remove the character from the source's key values")
        return joined

    def _missing_files(self, column: Column, values: list[Any], raw: list[tuple[Any, ...]]) -> list[str]:
        """Files the rows name that the new application would not find: each must be in a ``[[sync.media]]``
        ``from`` folder and in its ``to`` (copied there before the rows are read), which the new app serves."""
        problems = []
        for i, value in enumerate(values):
            if not value:
                continue
            found = [(old, new) for old, new in self.media_roots if (old / str(value)).is_file()]
            where = f"table {self.table.target}, key {self._label(raw[i])}, column {column.target}: file {value}"
            if not found:
                problems.append(f"{where} is in none of the media folders")
            elif not any((new / str(value)).is_file() for _, new in found):
                problems.append(f"{where} is in {found[0][0]} but not in {found[0][1]}, which the new application"
                                " serves")
        return problems

    def _label(self, row: tuple[Any, ...]) -> str:
        return ", ".join(f"{k}={row[i]!r}" for k, i in zip(self.table.key, self.key_index, strict=True))

    def _rejects(self, batch: Batch, raw: list[tuple[Any, ...]], bad: dict[int, tuple[str, str]]) -> None:
        changed = self.index.get(self.table.changed) if self.table.changed else None
        for i in sorted(bad):
            column, reason = bad[i]
            batch.rejects.append({"table": self.table.target, "key": self._label(raw[i]), "column": column,
                                  "reason": reason})
            stamp = raw[i][changed] if changed is not None else None
            if stamp is not None and (batch.earliest_rejected is None or time_key(stamp, self.zone) <
                                      time_key(batch.earliest_rejected, self.zone)):  # (by time: not ' ' < 'T')
                batch.earliest_rejected = stamp


def _check_text(values: list[Any], reject: Callable[[int, str], None]) -> None:
    """NUL bytes and lone surrogates (what invalid UTF-8 from SQLite decodes to) cannot be stored."""
    kinds = set(map(type, values))
    if str not in kinds:
        return
    texts = list(filter(None, values)) if kinds <= {str, type(None)} else [v for v in values if v.__class__ is str]
    joined = "".join(texts)
    try:
        joined.encode("utf-8")
        if "\x00" not in joined:
            return  # the usual case: one C-speed look at the whole column
    except UnicodeEncodeError:
        pass
    for i, value in enumerate(values):
        if isinstance(value, str):
            if "\x00" in value:
                reject(i, "NUL byte in text (PostgreSQL cannot store it)")
            elif not encodes(value):
                reject(i, "invalid UTF-8 in text (PostgreSQL cannot store it)")


def encodes(text: str) -> bool:
    """Whether the text can be stored as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# in a table that goes by text COPY, the column types whose values are fitted as binary COPY's are (the same
# rejects, named by key: an integer out of range, a number numeric(p,s) cannot hold, text longer than varchar(n),
# JSON jsonb refuses), and sent as the same text: where PostgreSQL would otherwise fail the whole COPY, naming no key
_FITTED_AS_TEXT = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8", "varchar", "bpchar", "json", "jsonb"})


def _bad_default(name: str, reason: str) -> None:
    from golive.errors import ConfigError

    raise ConfigError(f"mapping default for {name}: {reason}", hint="fix the value under [table.defaults]")
