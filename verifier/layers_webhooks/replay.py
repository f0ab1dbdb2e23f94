"""Receiver-side replay protection: remember accepted `webhook-id`s for a while.

The timestamp check already rejects a captured request once it is older than the tolerance;
inside that window, only remembering ids stops it being replayed. `Webhook` records an id
only after the whole verification succeeded (an unsigned request can never fill the cache),
for as long as the message could still pass the timestamp check: until
``webhook-timestamp + tolerance``.

`SeenIdStore` is the seam: `InMemorySeenIds` serves one process; several replicas share a
store such as Redis (``SET key 1 NX EX ttl``, see the README), with no dependency here.
"""

from __future__ import annotations

import heapq
import threading
from typing import Protocol

__all__ = ["InMemorySeenIds", "SeenIdStore"]


class SeenIdStore(Protocol):
    """Where accepted message ids are remembered."""

    def add(self, msg_id: str, *, ttl: float, now: float) -> bool:
        """Remember `msg_id` for `ttl` seconds from `now` (unix seconds).

        Returns True if it was new, False if it was already remembered and not expired.
        Must be atomic: of two concurrent adds of one id, exactly one returns True.
        """
        ...


class InMemorySeenIds:
    """A thread-safe, bounded, in-process `SeenIdStore`.

    Expired ids are dropped on every `add`, so memory follows the traffic of one tolerance
    window. `max_entries` is a hard cap on top: when reached, the id closest to expiry is
    forgotten first (its replay protection ends early, which is the least harm).
    """

    __slots__ = ("_expiries", "_heap", "_lock", "_max_entries")

    def __init__(self, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._expiries: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (expires_at, msg_id); may hold stale pairs
        self._lock = threading.Lock()

    def add(self, msg_id: str, *, ttl: float, now: float) -> bool:
        """Remember `msg_id` until ``now + ttl``; False if it is already remembered."""
        with self._lock:
            self._expire(now)
            if msg_id in self._expiries:
                return False
            while len(self._expiries) >= self._max_entries:
                self._forget_soonest()
            expires_at = now + ttl
            self._expiries[msg_id] = expires_at
            heapq.heappush(self._heap, (expires_at, msg_id))
            return True

    def discard(self, msg_id: str) -> None:
        """Forget `msg_id`, e.g. when processing failed and the sender's retry is welcome."""
        with self._lock:
            self._expiries.pop(msg_id, None)
            if len(self._heap) > 2 * self._max_entries:  # too many stale pairs: compact
                self._heap = [(at, key) for key, at in self._expiries.items()]
                heapq.heapify(self._heap)

    def __contains__(self, msg_id: object) -> bool:
        with self._lock:
            return msg_id in self._expiries

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiries)

    def __repr__(self) -> str:
        return f"InMemorySeenIds(entries={len(self)}, max_entries={self._max_entries})"

    def _expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at, msg_id = heapq.heappop(heap)
            if self._expiries.get(msg_id) == expires_at:
                del self._expiries[msg_id]

    def _forget_soonest(self) -> None:
        while self._heap:
            expires_at, msg_id = heapq.heappop(self._heap)
            if self._expiries.get(msg_id) == expires_at:
                del self._expiries[msg_id]
                return
