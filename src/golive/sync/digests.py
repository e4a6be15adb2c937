"""What a sync recorded when it verified a table, so that ``sync --verify-only`` can check the table
again without transforming every row.

A sync that verified a table (keyed by one integer column) records, with the table's state:

- a digest of each synced source row *as read* (xxh3-64 of its values, marshalled; for a PostgreSQL
  source, the source server's 64-bit hash of the row's text, so only hashes travel), in the order of
  the sorted key set; 0 marks a row not verified (rejected, so the target kept its old version);
- per key range (the verification's ranges) the target's row count and sum of row hashes, as verified;
- a fingerprint of everything that shapes a mapped row: the table's mapping, the options, the target's
  column types, golive's transform code, the Python version (marshal's output).

Verification then reads the source and computes the digests (no transforms, no COPY), and the target's
range sums (one scan, in parallel workers). A range whose source rows and target sums both match the
record holds, row for row, what the last sync verified equal; a range where either side differs is
re-read, transformed and compared row by row, which names the keys. An incremental sync keeps the record
current: the digests of the rows it read go to a patch over the base (folded in once it holds a quarter
of the table), and the range sums move by the sums of the rows it wrote, before and after. Changes made
behind golive's back (in the source without moving ``changed``, or in the target by hand or by the new
application) show as differing ranges.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

__all__ = ["UNVERIFIED", "Ranges", "Record", "aligned", "fingerprint", "int_keys", "pack", "pack_patch", "row_digests",
           "server_digests", "unpack", "unpack_patch", "updated_digests"]

UNVERIFIED = 0  # the digest of a row the last sync did not verify (no real digest is 0: see row_digests)
_MARSHAL = 2  # marshal format 2: no back-references, so equal values always marshal alike


def _xxh3() -> Any:
    import xxhash

    return xxhash.xxh3_64_intdigest


def row_digests(raw: list[tuple[Any, ...]]) -> list[int]:
    """A 64-bit digest of each source row as read (its values and their types), never 0."""
    digest = _xxh3()
    try:
        out = list(map(digest, map(marshal.dumps, raw, repeat(_MARSHAL, len(raw)))))
    except ValueError:  # a value marshal cannot write (a PostgreSQL source's dates, decimals…): its repr
        out = [_one(row, digest) for row in raw]
    return [d or 1 for d in out] if UNVERIFIED in out else out


def _one(row: tuple[Any, ...], digest: Any) -> int:
    try:
        return digest(marshal.dumps(row, _MARSHAL))  # type: ignore[no-any-return]
    except ValueError:
        return digest(repr(row).encode("utf-8", "surrogatepass"), seed=1)  # type: ignore[no-any-return]


def server_digests(hashes: list[int]) -> list[int]:
    """A PostgreSQL source's row hashes (signed int8, see ``Source.digest_batches``) as digests, never 0."""
    out = [h & 0xFFFF_FFFF_FFFF_FFFF for h in hashes]
    return [d or 1 for d in out] if UNVERIFIED in out else out


_INT64 = range(-(2**63), 2**63)


def int_keys(raw: list[tuple[Any, ...]], at: int) -> list[int] | None:
    """The rows' keys (column ``at``) when every one is a Python int that fits int64, else None."""
    keys = list(map(itemgetter(at), raw))
    if set(map(type, keys)) <= {int} and (not keys or (min(keys) in _INT64 and max(keys) in _INT64)):
        return keys
    return None


@dataclass
class Ranges:
    """The target's rows by key range, as verified: ``counts[b]`` and ``sums[b]`` for bucket ``b`` as
    PostgreSQL's ``width_bucket(key, bounds)`` numbers them (0: below the first bound)."""

    bounds: list[int]
    counts: list[int]
    sums: list[int]

    @classmethod
    def of(cls, bounds: list[int], found: dict[int, tuple[int, int]]) -> Ranges:
        buckets = range(len(bounds) + 1)
        return cls(list(bounds), [found.get(b, (0, 0))[0] for b in buckets], [found.get(b, (0, 0))[1] for b in buckets])

    def bucket(self, key: int) -> int:
        return bisect_right(self.bounds, key)

    def differing(self, found: dict[int, tuple[int, int]]) -> set[int]:
        """Buckets whose count or sum now (``found``) is not the recorded one."""
        return {b for b in range(len(self.bounds) + 1) if found.get(b, (0, 0)) != (self.counts[b], self.sums[b])}

    def move(self, before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> None:
        """Account for rows golive rewrote: their ranges' counts and hash sums before and after."""
        for sign, found in ((-1, before), (1, after)):
            for b, (n, total) in found.items():
                self.counts[b] += sign * n
                self.sums[b] += sign * total

    def dumps(self) -> str:
        return json.dumps({"bounds": self.bounds, "counts": self.counts, "sums": self.sums}, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> Ranges:
        data = json.loads(text)
        return cls(data["bounds"], data["counts"], data["sums"])


@dataclass
class Record:
    """What the last verifying syncs recorded: a base of digests written by the last sync that read every
    row (loaded only when needed: a million rows make 16 MB), and a patch of the digests of rows read
    since, which is all an incremental sync reads and writes."""

    fingerprint: str
    ranges: Ranges
    patch: dict[int, int]  # key -> digest of the rows read since the base was written
    base_keys: array[int] | None = None  # "q", sorted
    base_digests: array[int] | None = None  # "Q", aligned with base_keys
    base_changed: bool = False  # the base is new (a full read, or the patch folded in): to be written

    def current(self, keys: array[int]) -> array[int] | None:
        """The digests of the sorted synced ``keys`` now: the base's, the patch's where it has them (the
        base must be loaded). None if the record does not cover the keys."""
        assert self.base_keys is not None and self.base_digests is not None
        gone: set[int] | tuple[()] = ()
        added: set[int] | tuple[()] = ()
        if self.base_keys != keys:
            old, new = set(self.base_keys), set(keys)
            gone, added = old - new, new - old
        got_keys, got = updated_digests(self.base_keys, self.base_digests, gone, added, self.patch)
        return got if got_keys == keys else None


def pack(values: array[int]) -> bytes:
    """An int64 ("q") or uint64 ("Q") array as little-endian bytes."""
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def unpack(blob: bytes, typecode: str) -> array[int]:
    values = array(typecode, blob)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def pack_patch(patch: dict[int, int]) -> bytes:
    keys = sorted(patch)
    return pack(array("q", keys)) + pack(array("Q", map(patch.__getitem__, keys)))


def unpack_patch(blob: bytes | None) -> dict[int, int]:
    if not blob:
        return {}
    half = len(blob) // 2
    return dict(zip(unpack(blob[:half], "q"), unpack(blob[half:], "Q"), strict=True))


def aligned(keys: array[int], read_keys: array[int], read_digests: array[int]) -> array[int]:
    """Digests in the order of ``keys`` (sorted) from rows read in any order; UNVERIFIED where none was read."""
    if read_keys == keys:
        return read_digests
    found = dict(zip(read_keys, read_digests, strict=True))
    return array("Q", (found.get(k, UNVERIFIED) for k in keys))


def updated_digests(keys: array[int], digests: array[int], gone: Iterable[int], added: Iterable[int],
                    read: dict[int, int]) -> tuple[array[int], array[int]]:
    """The recorded digests carried over an incremental sync: keys no longer synced (``gone``) drop out,
    new ones (``added``) come in, and the digests of the rows ``read`` (key -> digest) replace theirs.
    Positions are found by bisection: the cost is the rows changed, not the table (plus C-speed copies).
    Returns the new sorted keys and their digests."""
    keys, digests = _spliced(keys, digests, set(gone), set(added))
    out = array("Q", digests)
    for key, digest in read.items():
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            out[i] = digest
    return keys, out


def _spliced(keys: array[int], digests: array[int], gone: set[int],
             added: set[int]) -> tuple[array[int], array[int]]:
    """``keys`` (sorted) less ``gone`` (keys it has) plus ``added`` (keys it has not; their digests come
    with the rows read), with their digests: one pass of C-speed copies between the changed places."""
    if not gone and not added:
        return keys, digests
    out_k, out_d, start = array("q"), array("Q"), 0
    for key in sorted(gone | added):
        i = bisect_left(keys, key, start)
        out_k.extend(keys[start:i])
        out_d.extend(digests[start:i])
        start = i
        if key in added:
            out_k.append(key)
            out_d.append(UNVERIFIED)
        elif i < len(keys) and keys[i] == key:
            start = i + 1  # gone: skipped
    out_k.extend(keys[start:])
    out_d.extend(digests[start:])
    return out_k, out_d


def fingerprint(table: Any, options: Any, typnames: dict[str, str], lengths: dict[str, int | None]) -> str:
    """Everything that shapes the mapped rows of ``table``: a record made under another is not used."""
    import golive

    code = dict(_own_code())
    for column in table.columns:  # custom transforms: their module's source
        name = column.transform_name or ""
        if ":" in name:
            code[name] = _module_digest(name.partition(":")[0])
    parts = {
        "golive": golive.__version__, "python": list(sys.version_info[:2]), "code": code,
        "table": [table.source, table.query, table.target, list(table.key), table.changed,
                  [[c.target, list(c.sources), c.transform_name] for c in table.columns], repr(sorted(table.defaults.items()))],
        "options": options.model_dump(), "types": typnames, "lengths": lengths,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


@cache
def _own_code() -> tuple[tuple[str, str], ...]:
    """The sha256 of golive's modules that shape a mapped row (read once a process, not per table)."""
    here = Path(__file__).parent
    return tuple((name, hashlib.sha256((here / name).read_bytes()).hexdigest())
                 for name in ("transforms.py", "pgtypes.py", "passwords.py", "rows.py", "digests.py", "verify.py"))


def _module_digest(module: str) -> str:
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    if origin is None or not Path(origin).is_file():
        return "unknown"
    return hashlib.sha256(Path(origin).read_bytes()).hexdigest()
