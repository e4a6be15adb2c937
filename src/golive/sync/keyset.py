"""The keys golive synced into a table keyed by one integer column, as the state keeps them: a sorted int64
array. An incremental sync asks a million-key set about a few thousand keys (which of the rows read are
new, which of the rows found are golive's); building a Python set of a million ints for that costs more
than the rest of loading the state (0.06 s), so the array answers by bisection, and a set is made only
when an operation needs every key (a difference with many keys, a change other than new keys appended).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, MutableSet
from typing import Any

__all__ = ["Keys", "SortedKeys"]


class SortedKeys(MutableSet[int]):
    """A mutable set of ints over a sorted array (shared, never changed in place: a change copies it)."""

    __slots__ = ("_ordered", "_set")

    def __init__(self, ordered: array[int]) -> None:
        self._ordered: array[int] | None = ordered  # None once changed other than by appending larger keys
        self._set: set[int] | None = None

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> set[Any]:  # what the Set mixins (|, &, ^, other - self) return
        return set(it)

    def ordered(self) -> array[int] | None:
        """The keys in order, when that is known without sorting them."""
        return self._ordered

    def as_set(self) -> set[int]:
        if self._set is None:
            assert self._ordered is not None
            self._set = set(self._ordered)
        return self._set

    def __contains__(self, key: object) -> bool:
        if self._set is not None:
            return key in self._set
        ordered = self._ordered
        assert ordered is not None
        try:
            at = bisect_left(ordered, key)  # type: ignore[call-overload]
        except TypeError:  # not a number: not one of these keys
            return False
        return at < len(ordered) and bool(ordered[at] == key)

    def __len__(self) -> int:
        return len(self._set) if self._set is not None else len(self._ordered or ())

    def __iter__(self) -> Iterator[int]:
        return iter(self._set if self._set is not None else self._ordered or ())

    def __repr__(self) -> str:
        return f"SortedKeys({len(self)} keys)"

    def add(self, key: int) -> None:
        self._changed().add(key)

    def discard(self, key: int) -> None:
        self._changed().discard(key)

    def _changed(self) -> set[int]:
        keys = self.as_set()
        self._ordered = None
        return keys

    def __sub__(self, other: Iterable[Any]) -> set[int]:
        return self.as_set().difference(other)

    def __isub__(self, other: Iterable[Any]) -> SortedKeys:
        drop = set(other)
        if drop:
            self._changed().difference_update(drop)
        return self

    def __ior__(self, other: Iterable[Any]) -> SortedKeys:  # type: ignore[misc]
        new = set(other) - self  # (membership by bisection)
        if not new:
            return self
        if self._set is None and self._ordered is not None:
            try:  # rows added since with larger keys (the usual case for a serial id): the keys stay in order
                tail = array("q", sorted(new))
                if not self._ordered or tail[0] > self._ordered[-1]:
                    self._ordered = self._ordered + tail
                    return self
            except (OverflowError, TypeError):
                pass
        self._changed().update(new)
        return self


Keys = set[Any] | SortedKeys  # a table's synced keys: ints in a SortedKeys (one integer key column), else canonical text
