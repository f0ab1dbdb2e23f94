"""Prefixed, time-sortable ids."""

from __future__ import annotations

import re

import pytest

from dispatcher import clock
from dispatcher.core.ids import new_id, new_ids


def test_ids_sort_by_time_whatever_their_randomness() -> None:
    """An id made later sorts after one made earlier, even with larger entropy before."""
    times = [0, 1, 999, 1_700_000_000_000, 2**48 - 1]
    ids = [new_id("dlv", now_ms=t, entropy=bytes([255 - i] * 10)) for i, t in enumerate(times)]
    assert ids == sorted(ids)


def test_ids_have_the_prefix_and_26_crockford_characters() -> None:
    """`dlv_` then 26 characters of Crockford's base32 (no I, L, O, U)."""
    assert re.fullmatch(r"dlv_[0-9A-HJKMNP-TV-Z]{26}", clock.new_id("dlv"))


def test_the_same_inputs_give_the_same_id() -> None:
    """Time and entropy are parameters, so an id is reproducible."""
    assert new_id("evt", now_ms=1, entropy=bytes(10)) == "evt_00000000040000000000000000"


def test_two_ids_in_the_same_millisecond_differ() -> None:
    """80 random bits keep ids made together unique."""
    assert len({clock.new_id("att") for _ in range(1000)}) == 1000


@pytest.mark.parametrize(("prefix", "entropy"), [("nope", bytes(10)), ("dlv", bytes(9))])
def test_unknown_prefixes_and_short_entropy_are_refused(prefix: str, entropy: bytes) -> None:
    """Only the known prefixes, and exactly 10 bytes of entropy."""
    with pytest.raises(ValueError, match=r"prefix|entropy"):
        new_id(prefix, now_ms=0, entropy=entropy)


def test_a_batch_of_ids_shares_the_millisecond_and_splits_the_entropy() -> None:
    """`new_ids` is `new_id` over consecutive 10-byte slices; the clock's batch ids differ."""
    entropy = bytes(range(30))
    assert new_ids("dlv", 3, now_ms=7, entropy=entropy) == [
        new_id("dlv", now_ms=7, entropy=entropy[i : i + 10]) for i in (0, 10, 20)
    ]
    batch = clock.new_ids("dlv", 500)
    assert len(set(batch)) == 500
    with pytest.raises(ValueError, match="30 bytes"):
        new_ids("dlv", 3, now_ms=7, entropy=bytes(29))


def test_an_id_source_hands_out_batch_made_ids_that_never_repeat() -> None:
    """`clock.id_source` draws ids from batches (one entropy read each), across refills."""
    next_id = clock.id_source("dlv", batch=4)
    made = [next_id() for _ in range(10)]
    assert len(set(made)) == 10
    assert all(i.startswith("dlv_") and len(i) == 30 for i in made)
