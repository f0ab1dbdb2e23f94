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
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from dispatcher.core.breaker import Breaker, BreakerState
from dispatcher.core.health import BreakerTransition
from dispatcher.core.models import AttemptResult, DeliveryStatus, Lease, WaitingReason
from dispatcher.errors import StoreUnavailableError
from dispatcher.metrics import Metrics
from dispatcher.store import Store

log = logging.getLogger(__name__)
K = TypeVar("K")

FLUSH_INTERVAL = 0.02  # seconds between batched writes
FLUSH_BATCH = 1000  # buffered writes that trigger a flush at once
RETRY_PAUSE = 0.5  # seconds to wait after a failed flush


@dataclass(slots=True)
class _Buffer:
    results: list[AttemptResult] = field(default_factory=list)
    # delivery id → ((due, why it waits), the lease it is released under)
    released: dict[str, tuple[tuple[datetime, WaitingReason], Lease]] = field(default_factory=dict)
    # delivery id → (why it is suppressed, the lease it is suppressed under)
    suppressed: dict[str, tuple[str, Lease]] = field(default_factory=dict)
    # endpoint id → its breaker's latest transition here
    breakers: dict[str, BreakerTransition] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.results) + len(self.released) + len(self.suppressed) + len(self.breakers)

    def absorb(self, older: _Buffer) -> None:
        """Put back what a failed flush took, ahead of what arrived since."""
        self.results[:0] = older.results
        self.released = older.released | self.released
        self.suppressed = older.suppressed | self.suppressed
        self.breakers = older.breakers | self.breakers


class Recorder:
    def __init__(
        self, store: Store, metrics: Metrics, *, on_tick: Callable[[], None] = lambda: None
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._on_tick = on_tick  # the scheduler's gauges, refreshed once per flush interval
        self._buffer = _Buffer()
        self._flush_now = asyncio.Event()
        # One flush at a time: the shutdown's final flush must wait for a flush in progress
        # (not find an empty buffer and return while that write is being cancelled).
        self._flushing = asyncio.Lock()

    def result(self, result: AttemptResult) -> None:
        self._buffer.results.append(result)
        self._metrics.attempt_seconds.observe(result.outcome.duration_ms / 1000.0)
        self._maybe_flush()

    def release(
        self, leased: Iterable[tuple[str, Lease]], due: datetime, reason: WaitingReason
    ) -> None:
        for delivery_id, lease in leased:
            self._buffer.released[delivery_id] = ((due, reason), lease)
        self._flush_now.set()

    def suppress(self, delivery_id: str, lease: Lease, reason: str) -> None:
        self._buffer.suppressed[delivery_id] = (reason, lease)
        self._maybe_flush()

    def breaker(
        self, endpoint_id: str, before: BreakerState, breaker: Breaker, at: datetime
    ) -> None:
        """Report the endpoint's breaker on its row if it moved from `before` (the API and
        every replica read it there; dispatcher.core.health)."""
        if breaker.state is not before:
            self._buffer.breakers[endpoint_id] = transition(endpoint_id, breaker, at)
            self._flush_now.set()

    def _maybe_flush(self) -> None:
        if len(self._buffer) >= FLUSH_BATCH:
            self._flush_now.set()

    async def run(self) -> None:
        """Flush every FLUSH_INTERVAL, or at once when asked. Runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), FLUSH_INTERVAL)
            self._flush_now.clear()
            self._on_tick()
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
                stale = await self._store.complete(buffer.results)
                self._stale("complete", len(stale), sorted(stale))
                self._count(buffer.results)
                buffer.results = []
            if buffer.breakers:
                await self._store.record_breakers(list(buffer.breakers.values()))
                buffer.breakers = {}
            for (due, reason), leased in _group(buffer.released).items():
                applied = await self._store.release(leased, next_attempt_at=due, reason=reason)
                self._stale("release", len(leased) - applied, [])
                for delivery_id, _ in leased:
                    del buffer.released[delivery_id]
            for why, leased in _group(buffer.suppressed).items():
                applied = await self._store.suppress(leased, why)
                self._stale("suppress", len(leased) - applied, [])
                for delivery_id, _ in leased:
                    del buffer.suppressed[delivery_id]
        except StoreUnavailableError:
            self._metrics.store_errors.labels("record").inc()
            log.warning("store unavailable while recording attempts; will retry", exc_info=True)
            self._buffer.absorb(buffer)
            await asyncio.sleep(RETRY_PAUSE)
            return False
        except BaseException:
            # A bug or a cancellation mid-flush: keep what was not written for the next
            # flush (the shutdown's final one included) instead of dropping it.
            self._buffer.absorb(buffer)
            raise
        return True

    def _count(self, results: list[AttemptResult]) -> None:
        """The attempts' counters, one call per label and flush rather than per attempt."""
        metrics = self._metrics
        outcomes = Counter(r.outcome.failure or "success" for r in results)
        for outcome, count in outcomes.items():
            metrics.attempts.labels(outcome).inc(count)
        statuses = Counter(r.status for r in results)
        for status, count in statuses.items():
            if status is DeliveryStatus.PENDING:
                metrics.retries_scheduled.inc(count)
            else:
                metrics.deliveries_finished.labels(status.value).inc(count)

    def _stale(self, operation: str, count: int, ids: list[str]) -> None:
        """Writes refused because the lease is no longer ours: another replica (or this one,
        after an outage longer than the lease) claimed the delivery since. Counted; logged
        once per flush that finds any, never applied. (A hand-back or suppression of a
        delivery deleted meanwhile counts here too; `ids` names stale results only.)"""
        if count <= 0:
            return
        self._metrics.stale_results.labels(operation).inc(count)
        log.warning(
            "stale writes dropped: the lease was taken over",
            extra={"operation": operation, "count": count, "delivery_id": ids[0] if ids else None},
        )


def transition(endpoint_id: str, breaker: Breaker, at: datetime) -> BreakerTransition:
    """The breaker's state now, its probe time (monotonic) turned into wall time."""
    probe_at = breaker.probe_at
    due = None
    if probe_at is not None and breaker.state is BreakerState.OPEN:
        due = at + timedelta(seconds=max(probe_at - time.monotonic(), 0.0))
    return BreakerTransition(endpoint_id=endpoint_id, state=breaker.state, at=at, probe_at=due)


def _group(mapping: Mapping[str, tuple[K, Lease]]) -> dict[K, list[tuple[str, Lease]]]:
    """Leased writes grouped by what they share (due and reason, or reason): one store call
    per group, each delivery with its own lease."""
    groups: dict[K, list[tuple[str, Lease]]] = {}
    for delivery_id, (shared, lease) in mapping.items():
        groups.setdefault(shared, []).append((delivery_id, lease))
    return groups
