"""The fan-out plan of a batch: which delivery rows to store and which claims to start.

Pure: routing (`core.routing`) decides who receives each event; this turns that into rows —
pending ones already leased to this process (so no poller delay and no double claim), their
claims, suppressed ones with their reason — and counts the events nobody subscribes to.
`engine.intake` stores the plan in one transaction and starts the claims.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.core.models import (
    FRESH_EPOCH,
    Claim,
    DeadLetter,
    DeliveryStatus,
    Event,
    IngestBatch,
    Lease,
    NewDelivery,
)
from dispatcher.core.routing import RoutingTable, Target, route


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    batch: IngestBatch
    claims: dict[str, Claim]  # pending delivery id → the claim to start once stored
    unrouted: frozenset[str]  # ids of the events no endpoint subscribes to

    @property
    def no_subscribers(self) -> int:
        return len(self.unrouted)


def plan(
    table: RoutingTable | Callable[[Event], list[Target]],
    events: Sequence[Event],
    dead_letters: Sequence[DeadLetter],
    *,
    now: datetime,
    lease_owner: str,
    lease: float,
    delivery_id: Callable[[], str],
) -> Plan:
    """Route each event (once per id) into delivery rows and the claims to start; each new
    delivery's id comes from `delivery_id` (the engine's clock-and-entropy ids)."""
    router = table if callable(table) else (lambda event: route(table, event))
    lease_expires_at = now + timedelta(seconds=lease)
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    deliveries: list[NewDelivery] = []
    claims: dict[str, Claim] = {}
    unrouted: set[str] = set()
    for event in unique.values():
        targets = router(event)
        if not targets:
            unrouted.add(event.id)
        for target in targets:
            new = delivery_id()
            pending = target.status is DeliveryStatus.PENDING
            deliveries.append(
                NewDelivery(
                    id=new,
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
                claims[new] = Claim(
                    delivery_id=new,
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
    return Plan(batch=batch, claims=claims, unrouted=frozenset(unrouted))
