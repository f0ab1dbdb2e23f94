"""Intake: `plan` (pure fan-out into delivery rows and claims) as tables, and `ingest` over a
real SQLite store and directory, with a scheduler stand-in that only records what it is
handed (the scheduler is not the database)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.core.models import (
    FRESH_EPOCH,
    Claim,
    DeadLetter,
    DeliveryStatus,
    EndpointStatus,
    Event,
    Lease,
    Organization,
    OrgStatus,
)
from dispatcher.core.plan import plan
from dispatcher.core.routing import RoutingTable, Target
from dispatcher.engine.directory import Directory
from dispatcher.engine.intake import Intake
from dispatcher.engine.scheduler import Scheduler
from dispatcher.errors import StoreUnavailableError
from dispatcher.metrics import Metrics
from dispatcher.store import Store
from tests.dispatcher.engine.support import (
    ORG,
    OWNER,
    SECRET,
    T0,
    Outage,
    endpoint,
    event,
    sample,
)

LEASE = 12.5
CREATED = "webhooks_deliveries_created_total"
EVENTS_DUPLICATE = "webhooks_events_duplicate_total"
DELIVERIES_DUPLICATE = "webhooks_deliveries_duplicate_total"
NO_SUBSCRIBERS = "webhooks_events_no_subscribers_total"
DEAD_LETTERS = "webhooks_dead_letters_total"

PENDING = DeliveryStatus.PENDING
SUPPRESSED = DeliveryStatus.SUPPRESSED


def numbered() -> Callable[[], str]:
    """Delivery ids dlv_1, dlv_2, … (the engine passes clock-and-entropy ids)."""
    counter = itertools.count(1)
    return lambda: f"dlv_{next(counter)}"


def dead_letter(dead_letter_id: str, offset: int, reason: str) -> DeadLetter:
    return DeadLetter(
        id=dead_letter_id,
        topic="layers.events",
        partition=2,
        offset=offset,
        key=ORG.encode(),
        value=b"{not json",
        reason=reason,
        detail="for the test",
        received_at=T0,
    )


# -- plan: pure ------------------------------------------------------------------------

# (case, org status, endpoints as (id, enabled, event types), expected (endpoint, status,
# reason) per delivery, no_subscribers)
PLAN_TABLE = [
    (
        "two enabled endpoints",
        OrgStatus.ACTIVE,
        [("ep_a", True, None), ("ep_b", True, None)],
        [("ep_a", PENDING, None), ("ep_b", PENDING, None)],
        0,
    ),
    (
        "a disabled endpoint is suppressed",
        OrgStatus.ACTIVE,
        [("ep_a", True, None), ("ep_off", False, None)],
        [("ep_a", PENDING, None), ("ep_off", SUPPRESSED, "endpoint_disabled")],
        0,
    ),
    (
        "a suspended organization suppresses every target",
        OrgStatus.SUSPENDED,
        [("ep_a", True, None), ("ep_b", True, None)],
        [("ep_a", SUPPRESSED, "org_suspended"), ("ep_b", SUPPRESSED, "org_suspended")],
        0,
    ),
    (
        "an endpoint filtering other types is no target",
        OrgStatus.ACTIVE,
        [("ep_a", True, frozenset({"ads.write.denied"})), ("ep_b", True, None)],
        [("ep_b", PENDING, None)],
        0,
    ),
    (
        "no endpoint subscribes",
        OrgStatus.ACTIVE,
        [("ep_a", True, frozenset({"ads.write.denied"}))],
        [],
        1,
    ),
    ("the organization has no endpoints", OrgStatus.ACTIVE, [], [], 1),
]


@pytest.mark.parametrize(
    ("org_status", "endpoints", "expected", "no_subscribers"),
    [row[1:] for row in PLAN_TABLE],
    ids=[row[0] for row in PLAN_TABLE],
)
def test_plan_routes_an_event_into_deliveries_and_claims(
    org_status: OrgStatus,
    endpoints: list[tuple[str, bool, frozenset[str] | None]],
    expected: list[tuple[str, DeliveryStatus, str | None]],
    no_subscribers: int,
) -> None:
    """One delivery per target (a fresh `dlv_` id); pending ones are leased to the owner until
    now + lease and become claims; suppressed ones carry their reason, no lease, no claim."""
    table = RoutingTable.build(
        [Organization(id=ORG, status=org_status)],
        [
            endpoint(
                ep,
                status=EndpointStatus.ENABLED if enabled else EndpointStatus.DISABLED,
                event_types=types,
            )
            for ep, enabled, types in endpoints
        ],
    )
    evt = event("evt_1")

    planned = plan(table, [evt], [], now=T0, lease_owner=OWNER, lease=LEASE, delivery_id=numbered())

    deliveries = planned.batch.deliveries
    assert [(d.endpoint_id, d.status, d.reason) for d in deliveries] == expected
    assert all(d.id.startswith("dlv_") for d in deliveries)
    assert len({d.id for d in deliveries}) == len(deliveries)
    assert {(d.event_id, d.next_attempt_at) for d in deliveries} <= {("evt_1", T0)}
    for d in deliveries:
        leased = d.status is PENDING
        assert d.lease_owner == (OWNER if leased else None)
        assert d.lease_expires_at == (T0 + timedelta(seconds=LEASE) if leased else None)
    pending = [d for d in deliveries if d.status is PENDING]
    assert planned.claims == {
        d.id: Claim(
            delivery_id=d.id,
            event_id="evt_1",
            event_type=evt.type,
            organization_id=ORG,
            endpoint_id=d.endpoint_id,
            attempts=0,
            body=evt.body,
            lease=Lease(OWNER, FRESH_EPOCH),
        )
        for d in pending
    }
    assert planned.no_subscribers == no_subscribers
    assert list(planned.batch.events) == [evt]  # stored even with no subscriber
    assert list(planned.batch.dead_letters) == []


def test_plan_plans_a_repeated_event_id_once() -> None:
    """An event id seen twice in one batch is routed once (its first copy kept); a repeated
    event without subscribers counts once in no_subscribers."""
    table = RoutingTable.build(
        [], [endpoint("ep_a", event_types=frozenset({"content.generated"})), endpoint("ep_b")]
    )
    first = event("evt_1")
    again = replace(first, body=b'{"a":"republished copy"}')
    lonely = event("evt_2", org="org_other")

    planned = plan(
        table,
        [first, lonely, again, lonely],
        [],
        now=T0,
        lease_owner=OWNER,
        lease=LEASE,
        delivery_id=numbered(),
    )

    assert list(planned.batch.events) == [first, lonely]
    assert sorted((d.event_id, d.endpoint_id) for d in planned.batch.deliveries) == [
        ("evt_1", "ep_a"),
        ("evt_1", "ep_b"),
    ]
    assert len(planned.claims) == 2
    assert {c.body for c in planned.claims.values()} == {first.body}
    assert planned.no_subscribers == 1


def test_plan_counts_each_event_without_subscribers() -> None:
    """no_subscribers is the number of distinct events that matched nothing, no more."""
    table = RoutingTable.build([], [endpoint("ep_a")])
    events = [event("evt_1"), event("evt_2", org="org_x"), event("evt_3", org="org_y")]

    planned = plan(
        table, events, [], now=T0, lease_owner=OWNER, lease=LEASE, delivery_id=numbered()
    )

    assert planned.no_subscribers == 2
    assert [d.event_id for d in planned.batch.deliveries] == ["evt_1"]


def test_plan_passes_dead_letters_through_in_order() -> None:
    dead = [dead_letter("dl_1", 7, "malformed_json"), dead_letter("dl_2", 9, "too_large")]

    planned = plan(
        RoutingTable(), [], dead, now=T0, lease_owner=OWNER, lease=LEASE, delivery_id=numbered()
    )

    assert list(planned.batch.dead_letters) == dead
    assert (list(planned.batch.events), list(planned.batch.deliveries)) == ([], [])
    assert (planned.claims, planned.no_subscribers) == ({}, 0)


def test_plan_uses_a_router_callable_instead_of_a_table() -> None:
    """A callable (the send-test's router) decides the targets alone."""
    target = Target(endpoint=endpoint("ep_test"), status=PENDING)
    seen: list[str] = []

    def router(evt: Event) -> list[Target]:
        seen.append(evt.id)
        return [target]

    planned = plan(
        router, [event("evt_1")], [], now=T0, lease_owner=OWNER, lease=LEASE, delivery_id=numbered()
    )

    assert seen == ["evt_1"]
    assert [d.endpoint_id for d in planned.batch.deliveries] == ["ep_test"]
    assert [c.endpoint_id for c in planned.claims.values()] == ["ep_test"]


# -- ingest: a real store --------------------------------------------------------------


class Submitted:
    """Stands in for the scheduler: records every batch of claims it is handed."""

    def __init__(self) -> None:
        self.batches: list[list[Claim]] = []

    def submit(self, claims: list[Claim]) -> None:
        self.batches.append(list(claims))


async def directory_over(store: Store, *enabled: str, disabled: tuple[str, ...] = ()) -> Directory:
    await store.put_organization(Organization(id=ORG))
    for ep in enabled:
        await store.create_endpoint(endpoint(ep), SECRET, now=T0)
    for ep in disabled:
        await store.create_endpoint(endpoint(ep, status=EndpointStatus.DISABLED), SECRET, now=T0)
    directory = Directory(store)
    await directory.refresh()
    return directory


def intake(store: Store, directory: Directory, metrics: Metrics, submitted: Submitted) -> Intake:
    return Intake(
        store=store,
        directory=directory,
        scheduler=cast(Scheduler, submitted),
        metrics=metrics,
        lease_owner=OWNER,
        lease=LEASE,
    )


async def test_ingest_stores_the_batch_and_submits_the_new_pending_deliveries(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Every routed delivery is stored; exactly the pending ones, leased to this process, go
    to the scheduler in one batch; creations are counted by status."""
    directory = await directory_over(store, "ep_a", "ep_b", disabled=("ep_off",))
    submitted = Submitted()
    before = datetime.now(UTC)

    result = await intake(store, directory, metrics, submitted).ingest(
        [event("evt_1"), event("evt_2")]
    )

    after = datetime.now(UTC)
    stored = [d for e in ("evt_1", "evt_2") for d in await store.list_event_deliveries(e)]
    assert len(stored) == 6
    assert result.created == {d.id for d in stored}
    pending = {d.id for d in stored if d.status is PENDING}
    assert {d.endpoint_id for d in stored if d.id in pending} == {"ep_a", "ep_b"}
    assert len(submitted.batches) == 1
    assert sorted(c.delivery_id for c in submitted.batches[0]) == sorted(pending)
    assert {(c.lease, c.organization_id) for c in submitted.batches[0]} == {
        (Lease(OWNER, FRESH_EPOCH), ORG)
    }
    for d in stored:
        if d.id in pending:
            assert (d.lease_owner, d.lease_epoch) == (OWNER, FRESH_EPOCH)
            assert d.lease_expires_at is not None
            lease = timedelta(seconds=LEASE)
            assert before + lease - timedelta(milliseconds=1) <= d.lease_expires_at
            assert d.lease_expires_at <= after + lease
        else:
            assert (d.status, d.reason, d.lease_owner, d.lease_epoch) == (
                SUPPRESSED,
                "endpoint_disabled",
                None,
                0,
            )
    assert sample(registry, CREATED, {"status": "pending"}) == 4
    assert sample(registry, CREATED, {"status": "suppressed"}) == 2
    assert sample(registry, EVENTS_DUPLICATE) == 0
    assert sample(registry, DELIVERIES_DUPLICATE) == 0
    assert sample(registry, NO_SUBSCRIBERS) == 0


async def test_ingesting_a_batch_again_submits_nothing_and_counts_duplicates(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """A re-consumed batch creates no row, starts no attempt and is counted as duplicates;
    the creation counters do not move."""
    directory = await directory_over(store, "ep_a", "ep_b", disabled=("ep_off",))
    submitted = Submitted()
    service = intake(store, directory, metrics, submitted)
    batch = [event("evt_1"), event("evt_2")]
    await service.ingest(batch)

    again = await service.ingest(batch)

    assert again.created == frozenset()
    assert (again.duplicate_events, again.duplicate_deliveries) == (2, 6)
    assert len(submitted.batches) == 1  # only the first ingest submitted
    assert sample(registry, EVENTS_DUPLICATE) == 2
    assert sample(registry, DELIVERIES_DUPLICATE) == 6
    assert sample(registry, CREATED, {"status": "pending"}) == 4
    assert sample(registry, CREATED, {"status": "suppressed"}) == 2
    for e in ("evt_1", "evt_2"):
        assert len(await store.list_event_deliveries(e)) == 3


async def test_only_deliveries_the_store_created_are_submitted(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """An endpoint deleted after the directory's snapshot still gets routed to, but its
    delivery is dropped by the store, so it is neither submitted nor counted."""
    directory = await directory_over(store, "ep_a", "ep_gone")
    assert await store.delete_endpoint("ep_gone")
    submitted = Submitted()

    result = await intake(store, directory, metrics, submitted).ingest([event("evt_1")])

    [kept] = await store.list_event_deliveries("evt_1")
    assert kept.endpoint_id == "ep_a"
    assert result.created == {kept.id}
    assert [[c.delivery_id for c in batch] for batch in submitted.batches] == [[kept.id]]
    assert sample(registry, CREATED, {"status": "pending"}) == 1
    assert sample(registry, DELIVERIES_DUPLICATE) == 0


async def test_dead_letters_are_stored_and_counted_by_reason(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Dead letters go into the same transaction; each reason counts its own; an event with
    no subscriber is stored, counted, and starts nothing."""
    directory = await directory_over(store)
    submitted = Submitted()
    dead = [
        dead_letter("dl_1", 10, "malformed_json"),
        dead_letter("dl_2", 11, "too_large"),
        dead_letter("dl_3", 12, "malformed_json"),
    ]

    await intake(store, directory, metrics, submitted).ingest([event("evt_1")], dead)

    stored = await store.list_dead_letters()
    assert sorted((d.id, d.offset, d.reason) for d in stored) == [
        ("dl_1", 10, "malformed_json"),
        ("dl_2", 11, "too_large"),
        ("dl_3", 12, "malformed_json"),
    ]
    assert sample(registry, DEAD_LETTERS, {"reason": "malformed_json"}) == 2
    assert sample(registry, DEAD_LETTERS, {"reason": "too_large"}) == 1
    assert sample(registry, DEAD_LETTERS, {"reason": "tombstone"}) == 0
    assert sample(registry, NO_SUBSCRIBERS) == 1
    stored_event = await store.get_event("evt_1")
    assert stored_event is not None
    assert stored_event.delivery_count == 0
    assert submitted.batches == []


async def test_a_re_consumed_batch_counts_nothing_again(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """After a rebalance the same records come again (new dead-letter ids, same offsets):
    the store dedupes them, and the dead-letter and no-subscriber counters stay put."""
    directory = await directory_over(store)
    ingest = intake(store, directory, metrics, Submitted()).ingest
    await ingest([event("evt_1")], [dead_letter("dl_1", 10, "malformed_json")])
    await ingest([event("evt_1")], [dead_letter("dl_again", 10, "malformed_json")])

    assert sample(registry, DEAD_LETTERS, {"reason": "malformed_json"}) == 1
    assert sample(registry, NO_SUBSCRIBERS) == 1
    assert [d.id for d in await store.list_dead_letters()] == ["dl_1"]


async def test_a_store_outage_in_ingest_raises_and_starts_and_counts_nothing(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The caller retries on StoreUnavailableError: nothing was stored, submitted or counted
    the first time, and the retry behaves like a first ingest."""
    directory = await directory_over(store, "ep_a")
    submitted = Submitted()
    service = intake(Outage(store, "ingest", failures=1), directory, metrics, submitted)
    batch = [event("evt_1")]

    with pytest.raises(StoreUnavailableError):
        await service.ingest(batch, [dead_letter("dl_1", 3, "malformed_json")])

    assert submitted.batches == []
    assert await store.get_event("evt_1") is None
    assert sample(registry, CREATED, {"status": "pending"}) == 0
    assert sample(registry, DEAD_LETTERS, {"reason": "malformed_json"}) == 0

    await service.ingest(batch, [dead_letter("dl_1", 3, "malformed_json")])

    assert len(submitted.batches) == 1
    assert sample(registry, CREATED, {"status": "pending"}) == 1
    assert sample(registry, DEAD_LETTERS, {"reason": "malformed_json"}) == 1
    assert sample(registry, EVENTS_DUPLICATE) == 0


async def test_a_router_overrides_the_directory(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The send-test's router: only the endpoint it names gets a delivery."""
    directory = await directory_over(store, "ep_a", "ep_b")
    submitted = Submitted()
    only_b = endpoint("ep_b")

    await intake(store, directory, metrics, submitted).ingest(
        [event("evt_1")], router=lambda _: [Target(endpoint=only_b, status=PENDING)]
    )

    assert [d.endpoint_id for d in await store.list_event_deliveries("evt_1")] == ["ep_b"]
    assert [[c.endpoint_id for c in batch] for batch in submitted.batches] == [["ep_b"]]
    assert sample(registry, CREATED, {"status": "pending"}) == 1
