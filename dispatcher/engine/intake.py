"""Intake: route validated events, persist them with their deliveries, start the attempts.

The consumer, the dead-letter retry, the send-test and the operational events all enter
here, so there is one fan-out path. The plan is pure (`core.plan`); `ingest` does one store
transaction and then hands the freshly created pending deliveries straight to the scheduler
(they were inserted already leased to this process, so no poller delay and no double claim).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from dispatcher import tracing
from dispatcher.clock import new_id, utcnow
from dispatcher.core.models import (
    DeadLetter,
    Event,
)
from dispatcher.core.plan import Plan, plan
from dispatcher.core.routing import Target
from dispatcher.engine.directory import Directory
from dispatcher.engine.scheduler import Scheduler
from dispatcher.metrics import Metrics
from dispatcher.store import IngestResult, Store


class Intake:
    def __init__(
        self,
        *,
        store: Store,
        directory: Directory,
        scheduler: Scheduler,
        metrics: Metrics,
        lease_owner: str,
        lease: float,
    ) -> None:
        self._store = store
        self._directory = directory
        self._scheduler = scheduler
        self._metrics = metrics
        self._lease_owner = lease_owner
        self._lease = lease

    async def ingest(
        self,
        events: Sequence[Event],
        dead_letters: Sequence[DeadLetter] = (),
        *,
        router: Callable[[Event], list[Target]] | None = None,
    ) -> IngestResult:
        """Persist in one transaction (raises StoreUnavailableError: the caller retries),
        then start the new pending deliveries. `router` overrides routing (send-test)."""
        planned = plan(
            router or self._directory.table,
            events,
            dead_letters,
            now=utcnow(),
            lease_owner=self._lease_owner,
            lease=self._lease,
            delivery_id=lambda: new_id("dlv"),
        )
        started = time.time_ns()
        result = await self._store.ingest(planned.batch)
        if (spans := tracing.active) is not None:
            spans.ingested(
                planned, created=result.created, new_events=result.new_events, started=started
            )
        fresh = [claim for did, claim in planned.claims.items() if did in result.created]
        if fresh:
            self._scheduler.submit(fresh)
        self._count(planned, result)
        return result

    def _count(self, planned: Plan, result: IngestResult) -> None:
        metrics = self._metrics
        metrics.events_duplicate.inc(result.duplicate_events)
        metrics.deliveries_duplicate.inc(result.duplicate_deliveries)
        # Only what this ingest stored: a re-consumed batch (a rebalance) counts nothing again.
        metrics.events_no_subscribers.inc(len(planned.unrouted & result.new_events))
        for delivery in planned.batch.deliveries:
            if delivery.id in result.created:
                metrics.deliveries_created.labels(delivery.status.value).inc()
        for dead in planned.batch.dead_letters:
            if dead.id in result.new_dead_letters:
                metrics.dead_letters.labels(dead.reason).inc()
