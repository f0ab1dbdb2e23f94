"""The recorder: what the scheduler learned, written to the store in batches.

Attempt results, hand-backs (leased deliveries returned unattempted) and suppressions are
buffered and flushed every few milliseconds, or at once when a batch fills, in one store
call per kind. A delivery stays leased until its result is written, so a crash before a
flush repeats the attempt instead of losing it. A store outage keeps the buffer and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from dispatcher.core.models import AttemptResult, WaitingReason
from dispatcher.errors import StoreUnavailableError
from dispatcher.metrics import Metrics
from dispatcher.store import Store

log = logging.getLogger(__name__)
V = TypeVar("V")

FLUSH_INTERVAL = 0.02  # seconds between batched writes
FLUSH_BATCH = 1000  # buffered writes that trigger a flush at once
RETRY_PAUSE = 0.5  # seconds to wait after a failed flush


@dataclass(slots=True)
class _Buffer:
    results: list[AttemptResult] = field(default_factory=list)
    # delivery id → (due, why it waits)
    released: dict[str, tuple[datetime, WaitingReason]] = field(default_factory=dict)
    suppressed: dict[str, str] = field(default_factory=dict)  # delivery id → reason

    def __len__(self) -> int:
        return len(self.results) + len(self.released) + len(self.suppressed)

    def absorb(self, older: _Buffer) -> None:
        """Put back what a failed flush took, ahead of what arrived since."""
        self.results[:0] = older.results
        self.released = older.released | self.released
        self.suppressed = older.suppressed | self.suppressed


class Recorder:
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._buffer = _Buffer()
        self._flush_now = asyncio.Event()
        # One flush at a time: the shutdown's final flush must wait for a flush in progress
        # (not find an empty buffer and return while that write is being cancelled).
        self._flushing = asyncio.Lock()

    def result(self, result: AttemptResult) -> None:
        self._buffer.results.append(result)
        self._maybe_flush()

    def release(self, delivery_ids: Collection[str], due: datetime, reason: WaitingReason) -> None:
        for delivery_id in delivery_ids:
            self._buffer.released[delivery_id] = (due, reason)
        self._flush_now.set()

    def suppress(self, delivery_id: str, reason: str) -> None:
        self._buffer.suppressed[delivery_id] = reason
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._buffer) >= FLUSH_BATCH:
            self._flush_now.set()

    async def run(self) -> None:
        """Flush every FLUSH_INTERVAL, or at once when asked. Runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), FLUSH_INTERVAL)
            self._flush_now.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write everything buffered; on a store outage keep it (and return False)."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        buffer, self._buffer = self._buffer, _Buffer()
        if not buffer:
            return True
        try:
            if buffer.results:
                await self._store.complete(buffer.results)
                buffer.results = []
            for (due, reason), ids in _group_by_value(buffer.released).items():
                await self._store.release(ids, next_attempt_at=due, reason=reason)
                for delivery_id in ids:
                    del buffer.released[delivery_id]
            for why, ids in _group_by_value(buffer.suppressed).items():
                await self._store.suppress(ids, why)
                for delivery_id in ids:
                    del buffer.suppressed[delivery_id]
        except StoreUnavailableError:
            self._metrics.store_errors.labels("record").inc()
            log.warning("store unavailable while recording attempts; will retry", exc_info=True)
            self._buffer.absorb(buffer)
            await asyncio.sleep(RETRY_PAUSE)
            return False
        return True


def _group_by_value(mapping: dict[str, V]) -> dict[V, list[str]]:
    groups: dict[V, list[str]] = {}
    for key, value in mapping.items():
        groups.setdefault(value, []).append(key)
    return groups
