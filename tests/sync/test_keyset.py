"""The synced keys of an integer-keyed table as loaded: a sorted array answering by bisection, a set only
when an operation needs every key."""

from __future__ import annotations

from array import array

from golive.sync import state
from golive.sync.keyset import SortedKeys


def keys(*values: int) -> SortedKeys:
    return SortedKeys(array("q", values))


def test_membership_length_and_differences_answer_without_making_a_set() -> None:
    synced = keys(2, 4, 6, 8)
    assert 4 in synced and 5 not in synced and 9 not in synced and 1 not in synced
    assert "4" not in synced and None not in synced  # not a number: not one of these keys (no TypeError)
    assert len(synced) == 4 and list(synced) == [2, 4, 6, 8]
    assert {1, 2, 3, 4} - synced == {1, 3}  # which of the rows read are new
    assert synced._set is None  # none of that needed a set of every key
    assert synced - {2, 6} == {4, 8} and isinstance(synced - {2}, set)
    assert synced | {10} == {2, 4, 6, 8, 10} and synced & {4, 5} == {4}
    assert synced == {2, 4, 6, 8}


def test_new_larger_keys_keep_the_order_and_never_change_the_loaded_array() -> None:
    loaded = array("q", [1, 2, 3])
    synced = SortedKeys(loaded)
    synced |= {5, 4, 2}
    assert synced.ordered() == array("q", [1, 2, 3, 4, 5]) and synced._set is None
    assert loaded == array("q", [1, 2, 3])  # (the state's sorted_keys is the same array)
    assert state.sorted_ints(synced) is synced.ordered()  # saved as it is: no sort of a million keys


def test_a_key_in_the_middle_or_a_deletion_makes_a_set_and_the_saved_order_is_sorted_again() -> None:
    synced = keys(10, 20, 30)
    synced |= {15}
    assert synced.ordered() is None and set(synced) == {10, 15, 20, 30}
    assert state.sorted_ints(synced) == array("q", [10, 15, 20, 30])
    synced = keys(10, 20, 30)
    synced -= {20, 99}
    assert 20 not in synced and len(synced) == 2 and state.sorted_ints(synced) == array("q", [10, 30])
    synced -= set()
    synced.add(-5)
    synced.discard(10)
    assert sorted(synced) == [-5, 30]


def test_a_key_too_large_for_64_bits_is_kept_in_a_set() -> None:
    synced = keys(1)
    synced |= {2**70}
    assert 2**70 in synced and len(synced) == 2
