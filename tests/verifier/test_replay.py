"""Replay protection: a webhook-id accepted once is a DuplicateMessageError within its window."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from layers_webhooks import (
    DuplicateMessageError,
    InMemorySeenIds,
    NoMatchingSignatureError,
    SeenIdStore,
    Webhook,
)

from .material import BODY, MSG_ID, NEW_SECRET, NOW, OTHER_SECRET, signed


@dataclass
class RecordingStore:
    """A SeenIdStore that records every call and remembers forever."""

    calls: list[tuple[str, float, float]] = field(default_factory=list)

    def add(self, msg_id: str, *, ttl: float, now: float) -> bool:
        new = all(seen != msg_id for seen, _, _ in self.calls)
        self.calls.append((msg_id, ttl, now))
        return new


def test_a_second_delivery_of_an_accepted_id_is_a_duplicate() -> None:
    """The same signed request verifies once, then raises DuplicateMessageError."""
    wh = Webhook(NEW_SECRET, seen_ids=InMemorySeenIds())
    assert wh.verify_at(BODY, signed(), NOW) is not None
    with pytest.raises(DuplicateMessageError) as caught:
        wh.verify_at(BODY, signed(), NOW + 10)
    assert (caught.value.msg_id, caught.value.timestamp) == (MSG_ID, NOW)


def test_a_re_signed_retry_with_the_same_id_is_also_a_duplicate() -> None:
    """The id, not the timestamp, is the key: a retry stamped later is still a duplicate."""
    wh = Webhook(NEW_SECRET, seen_ids=InMemorySeenIds())
    wh.verify_at(BODY, signed(timestamp=NOW), NOW)
    with pytest.raises(DuplicateMessageError):
        wh.verify_at(BODY, signed(timestamp=NOW + 5), NOW + 5)


def test_the_id_is_remembered_until_the_message_would_be_too_old_anyway() -> None:
    """The ttl is timestamp + tolerance - now: the rest of the window the message can pass."""
    store = RecordingStore()
    Webhook(NEW_SECRET, tolerance=300, seen_ids=store).verify_at(BODY, signed(), NOW + 100)
    assert store.calls == [(MSG_ID, 200.0, NOW + 100)]


def test_the_ttl_is_at_least_one_second() -> None:
    """At the very edge of the window the ttl is 1 s, as Redis EX needs a positive integer."""
    store = RecordingStore()
    Webhook(NEW_SECRET, tolerance=300, seen_ids=store).verify_at(BODY, signed(), NOW + 300)
    assert store.calls == [(MSG_ID, 1.0, NOW + 300)]


def test_the_id_is_accepted_again_after_the_window() -> None:
    """Once its ttl has passed (with a generous tolerance), the id is new again."""
    wh = Webhook(NEW_SECRET, tolerance=3600, seen_ids=InMemorySeenIds())
    wh.verify_at(BODY, signed(timestamp=NOW), NOW)
    later = NOW + 3601
    assert wh.verify_at(BODY, signed(timestamp=later - 10), later) is not None


def test_only_fully_verified_messages_are_remembered() -> None:
    """A forged request with a real id does not burn that id for the genuine one."""
    store = RecordingStore()
    wh = Webhook(NEW_SECRET, seen_ids=store)
    with pytest.raises(NoMatchingSignatureError):
        wh.verify_at(BODY, signed(OTHER_SECRET), NOW)
    assert store.calls == []
    assert wh.verify_at(BODY, signed(), NOW) is not None
    assert [call[0] for call in store.calls] == [MSG_ID]


def test_in_memory_store_implements_the_protocol() -> None:
    """InMemorySeenIds (and a hand-written store) satisfy the SeenIdStore protocol."""
    stores: list[SeenIdStore] = [InMemorySeenIds(), RecordingStore()]
    assert [store.add("a", ttl=1, now=0) for store in stores] == [True, True]
    assert [store.add("a", ttl=1, now=0.5) for store in stores] == [False, False]


@pytest.mark.parametrize(
    ("now", "expected"),
    [(NOW + 9.9, False), (NOW + 10, True), (NOW + 11, True)],
)
def test_in_memory_entries_expire_at_now_plus_ttl(now: float, expected: bool) -> None:
    """An id added with ttl 10 is remembered strictly before now + 10 and new from then on."""
    seen = InMemorySeenIds()
    seen.add("msg_1", ttl=10, now=NOW)
    assert seen.add("msg_1", ttl=10, now=now) is expected


def test_in_memory_memory_follows_the_window() -> None:
    """Expired ids are dropped as time moves on: one id a second, a 60 s ttl, <= 61 kept."""
    seen = InMemorySeenIds()
    for second in range(10_000):
        assert seen.add(f"msg_{second}", ttl=60, now=NOW + second)
        assert len(seen) <= 61
    assert "msg_9999" in seen
    assert "msg_9000" not in seen


def test_in_memory_cap_forgets_the_id_closest_to_expiry() -> None:
    """At max_entries, the entry that would expire first is evicted to make room."""
    seen = InMemorySeenIds(max_entries=3)
    seen.add("long", ttl=100, now=NOW)
    seen.add("short", ttl=5, now=NOW)
    seen.add("medium", ttl=50, now=NOW)
    seen.add("new", ttl=10, now=NOW)
    assert len(seen) == 3
    assert "short" not in seen
    assert all(kept in seen for kept in ("long", "medium", "new"))


def test_discard_lets_a_retry_through() -> None:
    """After discard (processing failed), the sender's retry of that id is accepted."""
    seen = InMemorySeenIds()
    wh = Webhook(NEW_SECRET, seen_ids=seen)
    wh.verify_at(BODY, signed(), NOW)
    seen.discard(MSG_ID)
    assert wh.verify_at(BODY, signed(timestamp=NOW + 5), NOW + 5) is not None


def test_discard_churn_keeps_the_heap_bounded() -> None:
    """Adding and discarding many ids within one window does not grow memory without bound."""
    seen = InMemorySeenIds(max_entries=100)
    for n in range(5_000):
        seen.add(f"msg_{n}", ttl=3600, now=NOW)
        seen.discard(f"msg_{n}")
    assert len(seen) == 0
    assert len(seen._heap) <= 201  # compaction threshold: 2 x max_entries (+1 just pushed)


def test_concurrent_adds_of_one_id_admit_exactly_one() -> None:
    """Of many threads adding the same id at once, exactly one sees it as new."""
    seen = InMemorySeenIds()
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def add() -> None:
        barrier.wait()
        results.append(seen.add("msg_race", ttl=60, now=NOW))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_max_entries_must_be_positive() -> None:
    """A cap below one entry is a configuration error."""
    with pytest.raises(ValueError, match="max_entries"):
        InMemorySeenIds(max_entries=0)
