"""golive's own state in the target database, schema ``golive``: per target table, the watermark of
the last sync, its mode, and the set of keys golive put there (so that rows made by the new
application are never touched). It lives in the target so that it commits, rolls back and is
restored (`rollback --restore-data`) together with the data it describes.

The key set is one compressed value per table rather than a row per key: a million keys cost a few
megabytes written once, instead of a million index insertions in every full sync. A table keyed by
one integer column keeps its keys as Python ints, packed as sorted 64-bit integers (``I`` + zlib of
the array); any other key as canonical text joined by NUL (zlib alone).

For a quick ``--verify-only`` a table keyed by one integer column also keeps the digest record of
:mod:`golive.sync.digests`: its fingerprint and range sums, a base (sorted keys and their digests, as
raw little-endian arrays, written only by a sync that read every row or folded the patch in) and a
patch (the digests of rows read since), which is all an incremental sync loads and writes.
"""

from __future__ import annotations

import zlib
from array import array
from dataclasses import dataclass
from typing import Any, cast

from golive.sync.digests import Ranges, Record, pack, pack_patch, unpack, unpack_patch
from golive.sync.keyset import Keys, SortedKeys
from golive.sync.verify import as_int_key

__all__ = ["TableState", "ensure", "exists", "load", "load_base", "save", "sorted_ints", "unpack_keys"]

_SCHEMA = [
    "CREATE SCHEMA IF NOT EXISTS golive",
    "CREATE TABLE IF NOT EXISTS golive.sync_state (target text PRIMARY KEY, watermark text, mode text NOT NULL,"
    " synced_at timestamptz NOT NULL DEFAULT now())",
    "ALTER TABLE golive.sync_state ADD COLUMN IF NOT EXISTS synced_keys bytea",
    "ALTER TABLE golive.sync_state ADD COLUMN IF NOT EXISTS synced_count bigint",
    # what the last verifying sync recorded, for a quick --verify-only (golive.sync.digests)
    "ALTER TABLE golive.sync_state ADD COLUMN IF NOT EXISTS fingerprint text",
    "ALTER TABLE golive.sync_state ADD COLUMN IF NOT EXISTS row_digests bytea",
    "ALTER TABLE golive.sync_state ADD COLUMN IF NOT EXISTS verified_ranges text",
    "ALTER TABLE golive.sync_state ADD COLUMN IF NOT EXISTS digest_keys bytea",
    "ALTER TABLE golive.sync_state ADD COLUMN IF NOT EXISTS digest_patch bytea",
    # random bytes and sorted integers written once: not worth a compression attempt
    "ALTER TABLE golive.sync_state ALTER COLUMN row_digests SET STORAGE EXTERNAL",
    "ALTER TABLE golive.sync_state ALTER COLUMN digest_keys SET STORAGE EXTERNAL",
]
_COLUMNS = ("synced_keys", "synced_count", "fingerprint", "row_digests", "verified_ranges", "digest_keys", "digest_patch")


Key = int | str  # an int for a table keyed by one integer column, else the key's canonical text


@dataclass
class TableState:
    watermark: str | None
    keys: Keys
    sorted_keys: array[int] | None = None  # the int keys in order (kept that way), for the digest record
    record: Record | None = None  # what the last verifying syncs recorded (its base loaded on demand: load_base)


def ensure(conn: Any) -> None:
    """Create the schema, and carry keys kept by golive before 0.x (a row per key) into the new form."""
    current = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('golive.sync_state')"
                           " AND attname = ANY(%s) AND NOT attisdropped", (list(_COLUMNS),)).fetchone()  # (not the
    # information_schema view: 7 ms of an incremental sync's 0.6 s)
    if current[0] < len(_COLUMNS):  # (ALTER TABLE would lock the state table for the whole sync even with nothing to add)
        for statement in _SCHEMA:
            conn.execute(statement)
    old = conn.execute("SELECT to_regclass('golive.synced_keys')").fetchone()
    if old is None or old[0] is None:
        return
    targets: dict[str, set[Key]] = {}
    for target, key in conn.execute("SELECT target, key FROM golive.synced_keys"):
        targets.setdefault(target, set()).add(key)
    for target, keys in targets.items():
        conn.execute("UPDATE golive.sync_state SET synced_keys = %s, synced_count = %s WHERE target = %s",
                     (_pack(keys), len(keys), target))
    conn.execute("DROP TABLE golive.synced_keys")


def exists(conn: Any) -> bool:
    found = conn.execute("SELECT to_regclass('golive.sync_state')").fetchone()
    return found is not None and found[0] is not None


def load(conn: Any, target: str, int_key: bool = False) -> TableState | None:
    """The table's state; ``int_key``: the keys as ints (the table is keyed by one integer column), whatever
    form they were kept in. A digest record comes without its base (see ``load_base``)."""
    row = conn.execute("SELECT watermark, synced_keys, fingerprint, verified_ranges, digest_patch,"
                       " row_digests IS NOT NULL AND digest_keys IS NOT NULL FROM golive.sync_state WHERE target = %s",
                       (target,)).fetchone()
    if row is None:
        return None
    watermark, blob, fingerprint, ranges, patch, has_base = row
    if int_key and _packed_ints(blob):
        ints = _ints(blob)
        state = TableState(watermark, SortedKeys(ints), ints)
        if fingerprint is not None and ranges is not None and has_base:
            state.record = Record(fingerprint, Ranges.loads(ranges), unpack_patch(patch))
        return state
    keys = _unpack(blob)
    if int_key != _packed_ints(blob) and keys:
        # kept as text by an older golive, or the key column is no longer an integer one
        keys = set(map(as_int_key, keys)) if int_key else set(map(str, keys))
    return TableState(watermark, keys)


def load_base(conn: Any, target: str, record: Record) -> bool:
    """Fill in the record's base (False if it has none, or a broken one)."""
    row = conn.execute("SELECT digest_keys, row_digests FROM golive.sync_state WHERE target = %s", (target,)).fetchone()
    if row is None or row[0] is None or row[1] is None or len(row[0]) != len(row[1]):
        return False
    record.base_keys, record.base_digests = unpack(row[0], "q"), unpack(row[1], "Q")
    return True


def save(conn: Any, target: str, watermark: str | None, mode: str, keys: Keys | None,
         record: Record | None = None) -> None:
    """Record a table's sync; ``keys`` None keeps the key set as it was (nothing added or deleted).
    ``record``: what this sync verified, for a quick ``--verify-only`` (None: nothing usable, cleared);
    its base is written only when it changed (its keys, sorted, are then ``keys``)."""
    values: dict[str, Any] = {"watermark": watermark, "mode": mode}
    if keys is not None:
        ordered = record.base_keys if record is not None and record.base_changed else None
        values |= {"synced_keys": _pack(keys, ordered), "synced_count": len(keys)}
    if record is None:
        values |= dict.fromkeys(("fingerprint", "verified_ranges", "digest_patch", "row_digests", "digest_keys"))
    else:
        values |= {"fingerprint": record.fingerprint, "verified_ranges": record.ranges.dumps(),
                   "digest_patch": pack_patch(record.patch)}
        if record.base_changed and record.base_keys is not None and record.base_digests is not None:
            values |= {"row_digests": pack(record.base_digests), "digest_keys": pack(record.base_keys)}
    names = list(values)
    conn.execute(f"INSERT INTO golive.sync_state (target, {', '.join(names)}) VALUES (%s{', %s' * len(names)})"
                 f" ON CONFLICT (target) DO UPDATE SET {', '.join(f'{n} = excluded.{n}' for n in names)},"
                 " synced_at = now()", (target, *values.values()))


def sorted_ints(keys: Keys) -> array[int] | None:
    """The keys as a sorted int64 array, when they are all ints (a table keyed by one integer column)."""
    if isinstance(keys, SortedKeys) and keys.ordered() is not None:
        return keys.ordered()
    if keys and set(map(type, keys)) != {int}:
        return None
    return array("q", sorted(cast(set[int], keys)))


# Text keys are joined by NUL, which no key can hold: they are values PostgreSQL stored, and its text cannot
# hold NUL. (A split is some 3x faster than JSON on a million keys.) Integer keys go as a sorted int64 array,
# little-endian, behind a b"I" (a zlib stream never starts with it): some 4x faster both ways.
_INTS = b"I"


def _pack(keys: Keys, ordered: array[int] | None = None) -> bytes:
    ints = ordered if ordered is not None and len(ordered) == len(keys) else sorted_ints(keys)
    if ints is not None and len(ints):
        return _INTS + zlib.compress(pack(ints), 1)
    return zlib.compress("\x00".join(map(str, keys)).encode(), 1)


def _packed_ints(blob: bytes | None) -> bool:
    return blob is not None and blob[:1] == _INTS


def _ints(blob: bytes) -> array[int]:
    return unpack(zlib.decompress(blob[1:]), "q")


def unpack_keys(blob: bytes | None) -> set[Key]:
    """A kept key set as it was kept: ints (one integer key column) or canonical text."""
    return _unpack(blob)


def _unpack(blob: bytes | None) -> set[Key]:
    if not blob:
        return set()
    if _packed_ints(blob):
        return set(_ints(blob))
    text = zlib.decompress(blob).decode()
    return set(text.split("\x00")) if text else set()
