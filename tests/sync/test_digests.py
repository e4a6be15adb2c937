"""The digest record's parts, without a database: row digests, carrying digests over an incremental
sync, and the range sums' bookkeeping."""

from __future__ import annotations

import random
from array import array
from datetime import UTC, datetime
from decimal import Decimal

from golive.sync import digests
from golive.sync.digests import UNVERIFIED, Ranges, aligned, row_digests, updated_digests


def test_a_row_digest_follows_values_and_types_not_object_identity() -> None:
    rows = [(1, "Ann", None, 2.5), (1, "Ann", None, 2.5)]
    rebuilt = [(int("1"), "".join(["A", "nn"]), None, float("2.5"))]  # equal values, other objects
    first, second = row_digests(rows)
    assert first == second == row_digests(rebuilt)[0]
    variants = [(1, "Ann", None, 2.5), (1, "Ann", "", 2.5), (1, "ann", None, 2.5), (1, "Ann", None, 2.50001),
                ("1", "Ann", None, 2.5), (1.0, "Ann", None, 2.5), (True, "Ann", None, 2.5), (1, "Ann", None)]
    assert len(set(row_digests(variants))) == len(variants)


def test_values_marshal_cannot_write_are_digested_by_their_repr() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    [a, b, c] = row_digests([(1, when, Decimal("1.50")), (1, when, Decimal("1.5")), (1, when, Decimal("1.50"))])
    assert a == c and a != b  # (1.50 and 1.5 print differently: a difference, never a false match)
    assert row_digests([(1, "x")]) != row_digests([(1, b"x")])


def test_no_row_digest_is_the_unverified_mark(monkeypatch) -> None:
    monkeypatch.setattr(digests, "_xxh3", lambda: (lambda data, seed=0: 0))
    assert row_digests([(1,), (2,)]) == [1, 1]


def test_carried_digests_equal_those_computed_afresh() -> None:
    rng = random.Random(7)
    keys = sorted(rng.sample(range(1, 100_000), 20_000))
    recorded = {k: rng.getrandbits(64) for k in keys}
    gone = set(rng.sample(keys, 300)) | {keys[0], keys[-1]}
    added = {k for k in rng.sample(range(-50, 110_000), 400) if k not in recorded} | {-100, 200_000}
    read = {k: rng.getrandbits(64) for k in rng.sample(sorted(set(keys) - gone), 500)} | \
        {k: rng.getrandbits(64) for k in list(added)[:200]}
    new_keys, new_digests = updated_digests(array("q", keys), array("Q", [recorded[k] for k in keys]), gone, added, read)
    expected = sorted((set(keys) - gone) | added)
    assert list(new_keys) == expected
    assert list(new_digests) == [read.get(k, recorded.get(k, UNVERIFIED)) for k in expected]


def test_aligned_puts_digests_in_key_order_and_marks_keys_not_read() -> None:
    keys = array("q", [1, 2, 3, 4])
    assert aligned(keys, array("q", [1, 2, 3, 4]), array("Q", [10, 20, 30, 40])) == array("Q", [10, 20, 30, 40])
    assert aligned(keys, array("q", [3, 1, 9, 2]), array("Q", [30, 10, 90, 20])) == array("Q", [10, 20, 30, UNVERIFIED])


def test_ranges_move_with_the_rows_written_and_survive_a_round_trip() -> None:
    ranges = Ranges.of([10, 20], {0: (2, 5), 1: (3, 7), 2: (1, 1)})
    assert (ranges.counts, ranges.sums) == ([2, 3, 1], [5, 7, 1])
    assert [ranges.bucket(k) for k in (9, 10, 19, 20, 10**12)] == [0, 1, 1, 2, 2]  # as width_bucket numbers them
    # before: key 12 (hash 4) and key 25 (hash 1); after: key 12 (hash 6), key 3 (2**70: sums are exact)
    ranges.move({1: (1, 4), 2: (1, 1)}, {1: (1, 6), 0: (1, 2**70)})
    assert (ranges.counts, ranges.sums) == ([3, 3, 0], [5 + 2**70, 9, 0])
    assert ranges.differing({0: (3, 5 + 2**70), 1: (3, 9)}) == set()
    assert ranges.differing({0: (3, 5 + 2**70), 1: (3, 8), 2: (1, 0)}) == {1, 2}
    assert Ranges.loads(ranges.dumps()) == ranges
