"""The process's clock and entropy, for every layer above the pure core.

`dispatcher.core` never reads the time or draws randomness itself (its functions take `now`,
`now_ms` and `entropy` as parameters); the engine, the store, the API and the commands get
them here, so a test can see at a glance which code is deterministic.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from dispatcher.core import ids


def utcnow() -> datetime:
    """The wall-clock time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def random_bytes(n: int) -> bytes:
    """`n` bytes from the operating system's CSPRNG."""
    return os.urandom(n)


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """A new time-sortable id such as `dlv_01JD3ZQ8M6V7X9K2N4P5R6S7T8` (see core.ids), for
    now or for the millisecond `now_ms` (an attempt's id sorts by when it started)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return ids.new_id(prefix, now_ms=ms, entropy=os.urandom(10))


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` new ids from one clock read and one entropy read (a batch's ids)."""
    return ids.new_ids(
        prefix, count, now_ms=time.time_ns() // 1_000_000, entropy=os.urandom(10 * count)
    )


def id_source(prefix: str, *, batch: int = 256) -> Callable[[], str]:
    """A function returning a new id per call, drawn from batches made with one clock read
    and one entropy read each (an ingest makes one id per delivery)."""
    pending: list[str] = []

    def next_id() -> str:
        if not pending:
            pending.extend(reversed(new_ids(prefix, batch)))
        return pending.pop()

    return next_id
