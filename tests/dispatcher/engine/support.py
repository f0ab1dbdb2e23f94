"""What the engine tests share: a real SQLite store, a store outage, seeded rows, counters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from dispatcher.core.models import (
    FRESH_EPOCH,
    AttemptOutcome,
    AttemptResult,
    DeliveryStatus,
    Endpoint,
    Event,
    FailureKind,
    Lease,
    NewDelivery,
    Organization,
)
from dispatcher.errors import StoreUnavailableError
from dispatcher.store import IngestBatch, Store

T0 = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
ORG = "org_acme"
SECRET = "whsec_c2VjcmV0LXBsYWludGV4dC1uZXZlci1zdG9yZWQ="
OWNER = "replica-1"
LEASE = Lease(OWNER, FRESH_EPOCH)  # what a delivery leased as it is ingested carries
WAIT = 2.0  # seconds: an upper bound for "soon", never a speed claim


class Outage:
    """The real store, forwarding every call, except that the first `failures` calls of
    `method` raise StoreUnavailableError (after awaiting `during`, if given, so a test can
    act while the failing call is in progress). Records the name of every call it sees in
    `calls` (with its arguments in `arguments`), and of every call that has returned (or
    raised) in `returned`."""

    def __init__(
        self,
        store: Store,
        method: str = "",
        failures: int = 0,
        *,
        during: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._method = method
        self.failures = failures
        self._during = during
        self.calls: list[str] = []
        self.arguments: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.returned: list[str] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if not callable(real):
            return real

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            self.arguments.append((name, args, kwargs))
            try:
                if name == self._method and self.failures > 0:
                    self.failures -= 1
                    if self._during is not None:
                        await self._during()
                    raise StoreUnavailableError(f"{name}: database is unavailable (test)")
                return await real(*args, **kwargs)
            finally:
                self.returned.append(name)

        return call


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    """A counter's value; 0 for a labelled child never incremented."""
    value = registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def endpoint(endpoint_id: str, org: str = ORG, **changes: Any) -> Endpoint:
    fields: dict[str, Any] = {"url": f"https://hooks.example.com/{endpoint_id}"} | changes
    return Endpoint(id=endpoint_id, organization_id=org, **fields)


def event(event_id: str, *, event_type: str = "content.generated", org: str = ORG) -> Event:
    body = b'{"id":"%s","type":"%s","data":{"organizationId":"%s"}}' % (
        event_id.encode(),
        event_type.encode(),
        org.encode(),
    )
    return Event(id=event_id, type=event_type, created=T0, organization_id=org, body=body)


async def add_endpoints(store: Store, *endpoint_ids: str, org: str = ORG) -> None:
    if await store.get_organization(org) is None:
        await store.put_organization(Organization(id=org))
    for endpoint_id in endpoint_ids:
        await store.create_endpoint(endpoint(endpoint_id, org), SECRET, now=T0)


async def leased_deliveries(store: Store, count: int, *, endpoint_id: str = "ep_1") -> list[str]:
    """`endpoint_id` with `count` pending deliveries (dlv_0…) of their own events, leased."""
    await add_endpoints(store, endpoint_id)
    ids = [f"dlv_{endpoint_id}_{i}" for i in range(count)]
    await store.ingest(
        IngestBatch(
            events=[event(f"evt_{endpoint_id}_{i}") for i in range(count)],
            deliveries=[
                NewDelivery(
                    id=delivery_id,
                    event_id=f"evt_{endpoint_id}_{i}",
                    endpoint_id=endpoint_id,
                    status=DeliveryStatus.PENDING,
                    reason=None,
                    next_attempt_at=T0,
                    lease_owner=OWNER,
                    lease_expires_at=T0 + 30 * SECOND,
                )
                for i, delivery_id in enumerate(ids)
            ],
        )
    )
    return ids


def attempt(
    delivery_id: str,
    *,
    endpoint_id: str = "ep_1",
    number: int = 1,
    failure: FailureKind | None = None,
    status: DeliveryStatus = DeliveryStatus.SUCCEEDED,
    next_attempt_at: datetime | None = None,
    lease: Lease = LEASE,
) -> AttemptResult:
    return AttemptResult(
        delivery_id=delivery_id,
        endpoint_id=endpoint_id,
        attempt=number,
        started_at=T0 + number * SECOND,
        outcome=AttemptOutcome(
            status_code=200 if failure is None else 503,
            failure=failure,
            duration_ms=5.0,
            detail="" if failure is None else "HTTP 503",
        ),
        status=status,
        next_attempt_at=next_attempt_at,
        lease=lease,
    )


def retry_at(delivery_id: str, due: datetime, *, number: int = 1) -> AttemptResult:
    """A failed attempt put back on the ladder, due again at `due`."""
    return attempt(
        delivery_id,
        number=number,
        failure=FailureKind.HTTP_STATUS,
        status=DeliveryStatus.PENDING,
        next_attempt_at=due,
    )


def gave_up(delivery_id: str, *, number: int, endpoint_id: str = "ep_1") -> AttemptResult:
    """A failed last attempt: the delivery is failed for good."""
    return attempt(
        delivery_id,
        endpoint_id=endpoint_id,
        number=number,
        failure=FailureKind.HTTP_STATUS,
        status=DeliveryStatus.FAILED,
    )


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> bool:
    """Poll `check` until it holds or `within` seconds pass (a bound, not a speed claim)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.005)
    return await check()
