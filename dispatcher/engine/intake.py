"""Intake: route validated events, persist them with their deliveries, start the attempts.

The consumer, the dead-letter retry, the send-test and the operational events all enter
here, so there is one fan-out path. `plan` is pure; `ingest` does one store transaction and
then hands the freshly created pending deliveries straight to the scheduler (they were
inserted already leased to this process, so no poller delay and no double claim).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dispatcher.clock import new_id
from dispatcher.core.models import (
    FRESH_EPOCH,
    Claim,
    DeadLetter,
    DeliveryStatus,
    Event,
    Lease,
    NewDelivery,
)
from dispatcher.core.routing import RoutingTable, Target, route
from dispatcher.engine.directory import Directory
from dispatcher.engine.scheduler import Scheduler
from dispatcher.metrics import Metrics
from dispatcher.store import IngestBatch, IngestResult, Store


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    batch: IngestBatch
    claims: dict[str, Claim]  # pending delivery id → the claim to start once stored
    no_subscribers: int


def plan(
    table: RoutingTable | Callable[[Event], list[Target]],
    events: Sequence[Event],
    dead_letters: Sequence[DeadLetter],
    *,
    now: datetime,
    lease_owner: str,
    lease: float,
) -> Plan:
    """Route each event (once per id) into delivery rows and the claims to start."""
    router = table if callable(table) else (lambda event: route(table, event))
    lease_expires_at = now + timedelta(seconds=lease)
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    deliveries: list[NewDelivery] = []
    claims: dict[str, Claim] = {}
    no_subscribers = 0
    for event in unique.values():
        targets = router(event)
        if not targets:
            no_subscribers += 1
        for target in targets:
            delivery_id = new_id("dlv")
            pending = target.status is DeliveryStatus.PENDING
            deliveries.append(
                NewDelivery(
                    id=delivery_id,
                    event_id=event.id,
                    endpoint_id=target.endpoint.id,
                    status=target.status,
                    reason=None if target.reason is None else target.reason.value,
                    next_attempt_at=now,
                    lease_owner=lease_owner if pending else None,
                    lease_expires_at=lease_expires_at if pending else None,
                )
            )
            if pending:
                claims[delivery_id] = Claim(
                    delivery_id=delivery_id,
                    event_id=event.id,
                    event_type=event.type,
                    organization_id=event.organization_id,
                    endpoint_id=target.endpoint.id,
                    attempts=0,
                    body=event.body,
                    lease=Lease(lease_owner, FRESH_EPOCH),
                )
    batch = IngestBatch(
        events=list(unique.values()), deliveries=deliveries, dead_letters=list(dead_letters)
    )
    return Plan(batch=batch, claims=claims, no_subscribers=no_subscribers)


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
            now=datetime.now(UTC),
            lease_owner=self._lease_owner,
            lease=self._lease,
        )
        result = await self._store.ingest(planned.batch)
        fresh = [claim for did, claim in planned.claims.items() if did in result.created]
        if fresh:
            self._scheduler.submit(fresh)
        self._count(planned, result)
        return result

    def _count(self, planned: Plan, result: IngestResult) -> None:
        metrics = self._metrics
        metrics.events_duplicate.inc(result.duplicate_events)
        metrics.deliveries_duplicate.inc(result.duplicate_deliveries)
        metrics.events_no_subscribers.inc(planned.no_subscribers)
        for delivery in planned.batch.deliveries:
            if delivery.id in result.created:
                metrics.deliveries_created.labels(delivery.status.value).inc()
        for dead in planned.batch.dead_letters:
            metrics.dead_letters.labels(dead.reason).inc()
