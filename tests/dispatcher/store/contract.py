"""The Store contract: every behaviour both backends promise, as one suite to subclass.

A backend's test class inherits `StoreContract` and provides three fixtures:

- `store_factory` — a callable returning a new, unopened store on one shared database
  (called again for a second "replica"), using the `clock` and `box` fixtures;
- `raw_contents` — an async callable returning every byte the database holds, to prove a
  plaintext secret never reaches it;
- `unreachable_store` — an unopened store whose database cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatcher.core.models import (
    ApiKeyRecord,
    AttemptOutcome,
    AttemptResult,
    Claim,
    DeadLetter,
    DeliveryStatus,
    DisabledReason,
    Endpoint,
    EndpointScope,
    EndpointStatus,
    Event,
    FailureKind,
    Lease,
    NewDelivery,
    Organization,
    OrgStatus,
    SignatureScheme,
    WaitingReason,
)
from dispatcher.errors import (
    DecryptionError,
    IntegrityViolationError,
    NotFoundError,
    StoreUnavailableError,
)
from dispatcher.store import IngestBatch, IngestResult, Store
from dispatcher.store.records import Purged, ReplayFilter, ReplayJobRecord, ReplayJobStatus
from dispatcher.store.secretbox import SecretBox

T0 = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ORG = "org_acme"
SECRET = "whsec_c2VjcmV0LXBsYWludGV4dC1uZXZlci1zdG9yZWQ="
NEW_SECRET = "whsec_bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbi0xMjM="

# A new store on the test's database: with the test's SecretBox, or with the one given.
StoreFactory = Callable[..., Store]
RawContents = Callable[[], Awaitable[bytes]]


class FakeClock:
    """The store's bookkeeping clock (received_at, created_at, updated_at), set by tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def endpoint(endpoint_id: str, org: str = ORG, **changes: Any) -> Endpoint:
    base = Endpoint(
        id=endpoint_id, organization_id=org, url=f"https://hooks.example.com/{endpoint_id}"
    )
    return replace(base, **changes)


def event(event_id: str, *, event_type: str = "content.generated", org: str = ORG) -> Event:
    body = b'{"id":"%s","type":"%s","data":{"organizationId":"%s"}}' % (
        event_id.encode(),
        event_type.encode(),
        org.encode(),
    )
    return Event(id=event_id, type=event_type, created=T0 - HOUR, organization_id=org, body=body)


def delivery(
    delivery_id: str,
    event_id: str,
    endpoint_id: str,
    *,
    due: datetime = T0,
    status: DeliveryStatus = DeliveryStatus.PENDING,
    reason: str | None = None,
    lease_owner: str | None = None,
    lease_expires_at: datetime | None = None,
) -> NewDelivery:
    return NewDelivery(
        id=delivery_id,
        event_id=event_id,
        endpoint_id=endpoint_id,
        status=status,
        reason=reason,
        next_attempt_at=due,
        lease_owner=lease_owner,
        lease_expires_at=lease_expires_at,
    )


# A result built without a lease takes the delivery's current one in `complete` below (the
# result of the claim that holds it); tests of fencing pass leases explicitly.
CURRENT = Lease("(the current holder)", -1)


def result(
    delivery_id: str,
    endpoint_id: str,
    *,
    started_at: datetime = T0,
    attempt: int = 1,
    status_code: int | None = 200,
    failure: FailureKind | None = None,
    next_attempt_at: datetime | None = None,
    lease: Lease = CURRENT,
) -> AttemptResult:
    """An attempt result: success by default; a failure stays pending if it has a next time."""
    if failure is None:
        status = DeliveryStatus.SUCCEEDED
    else:
        status = DeliveryStatus.FAILED if next_attempt_at is None else DeliveryStatus.PENDING
    outcome = AttemptOutcome(
        status_code=status_code,
        failure=failure,
        duration_ms=12.5,
        response_excerpt=b"ok" if failure is None else b"upstream down",
        detail="" if failure is None else "HTTP 503",
    )
    return AttemptResult(
        delivery_id=delivery_id,
        endpoint_id=endpoint_id,
        attempt=attempt,
        started_at=started_at,
        outcome=outcome,
        status=status,
        next_attempt_at=next_attempt_at,
        lease=lease,
    )


async def held(store: Store, delivery_id: str) -> Lease:
    """The lease a delivery carries now (owner "" when nobody holds it or it is gone)."""
    record = await store.get_delivery(delivery_id)
    if record is None:
        return Lease("", 0)
    return Lease(record.lease_owner or "", record.lease_epoch)


async def complete(store: Store, results: list[AttemptResult]) -> frozenset[str]:
    """`store.complete`, each result under the lease its delivery holds now (unless given)."""
    return await store.complete(
        [
            replace(r, lease=await held(store, r.delivery_id)) if r.lease == CURRENT else r
            for r in results
        ]
    )


async def release(
    store: Store, delivery_ids: list[str], *, next_attempt_at: datetime, reason: WaitingReason
) -> int:
    """`store.release` under each delivery's current lease."""
    leased = [(i, await held(store, i)) for i in delivery_ids]
    return await store.release(leased, next_attempt_at=next_attempt_at, reason=reason)


async def suppress(store: Store, delivery_ids: list[str], reason: str) -> int:
    """`store.suppress` under each delivery's current lease."""
    return await store.suppress([(i, await held(store, i)) for i in delivery_ids], reason)


def failure(
    delivery_id: str,
    endpoint_id: str,
    started_at: datetime,
    *,
    attempt: int = 1,
    next_attempt_at: datetime | None = None,
) -> AttemptResult:
    return result(
        delivery_id,
        endpoint_id,
        started_at=started_at,
        status_code=503,
        failure=FailureKind.HTTP_STATUS,
        attempt=attempt,
        next_attempt_at=next_attempt_at,
    )


def dead_letter(dead_letter_id: str, offset: int, reason: str = "malformed_json") -> DeadLetter:
    return DeadLetter(
        id=dead_letter_id,
        topic="layers.events",
        partition=3,
        offset=offset,
        key=b"org_acme",
        value=b"{not json",
        reason=reason,
        detail="Expecting property name at line 1 column 2",
        received_at=T0,
    )


async def add_endpoints(store: Store, *endpoint_ids: str, org: str = ORG) -> None:
    for endpoint_id in endpoint_ids:
        await store.create_endpoint(endpoint(endpoint_id, org), SECRET, now=T0)


async def one_delivery(store: Store, *, due: datetime = T0) -> str:
    """Endpoint ep_1 with one pending delivery dlv_1 of event evt_1; returns its id."""
    await add_endpoints(store, "ep_1")
    await store.ingest(
        IngestBatch(
            events=[event("evt_1")], deliveries=[delivery("dlv_1", "evt_1", "ep_1", due=due)]
        )
    )
    return "dlv_1"


def api_key(key_id: str, org: str | None, scopes: set[str]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=key_id, organization_id=org, scopes=frozenset(scopes), name="ci", created_at=T0
    )


async def failed_deliveries(store: Store, clock: FakeClock, count: int) -> list[str]:
    """ep_1 with `count` failed deliveries created an hour apart, alternating two types."""
    await add_endpoints(store, "ep_1")
    ids = []
    for i in range(count):
        clock.now = T0 + i * HOUR
        event_type = "a.one" if i % 2 else "b.two"
        await store.ingest(
            IngestBatch(
                events=[event(f"evt_{i}", event_type=event_type)],
                deliveries=[delivery(f"dlv_{i}", f"evt_{i}", "ep_1")],
            )
        )
        ids.append(f"dlv_{i}")
    await claim(store, T0 + count * HOUR)
    await complete(store, [failure(i, "ep_1", T0, attempt=8) for i in ids])
    clock.now = T0
    return ids


async def new_job(
    store: Store, selection: ReplayFilter, *, job_id: str = "rpl_1", org: str = ORG
) -> tuple[ReplayJobRecord, bool]:
    return await store.create_replay_job(
        job_id=job_id,
        organization_id=org,
        filter=selection,
        actor="key_oncall",
        reason="endpoint fixed",
        now=T0,
    )


async def claim(
    store: Store, now: datetime = T0, *, owner: str = "w1", limit: int = 100
) -> list[Claim]:
    return await store.claim_due(
        now=now, limit=limit, lease_owner=owner, lease_expires_at=now + 30 * SECOND
    )


class StoreContract:
    """Behaviour every Store backend must show (docs/design.md §4–§6, §9)."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(T0)

    @pytest.fixture
    def box(self) -> SecretBox:
        return SecretBox([bytes(range(32))])

    @pytest.fixture
    async def store(self, store_factory: StoreFactory) -> AsyncIterator[Store]:
        async with store_factory() as opened:
            await opened.migrate()
            yield opened

    # -- migrations -------------------------------------------------------------------

    async def test_migrate_applies_the_initial_version_once(
        self, store_factory: StoreFactory
    ) -> None:
        """A fresh database gets every migration on the first migrate, nothing on the second."""
        async with store_factory() as store:
            assert await store.migrate() == [
                "0001_initial",
                "0002_api",
                "0003_waiting_reason",
                "0004_lease_epoch",
                "0005_retention",
                "0006_replicas",
                "0007_signature_scheme",
                "0008_health",
                "0009_portal",
                "0010_attempt_ladder",
                "0011_health_hourly",
            ]
            assert await store.migrate() == []

    async def test_concurrent_migrations_apply_once(self, store_factory: StoreFactory) -> None:
        """Two processes migrating one fresh database at once apply each version exactly once."""
        async with store_factory() as first, store_factory() as second:
            applied = await asyncio.gather(first.migrate(), second.migrate())
        assert sorted(applied) == [
            [],
            [
                "0001_initial",
                "0002_api",
                "0003_waiting_reason",
                "0004_lease_epoch",
                "0005_retention",
                "0006_replicas",
                "0007_signature_scheme",
                "0008_health",
                "0009_portal",
                "0010_attempt_ladder",
                "0011_health_hourly",
            ],
        ]

    async def test_ping_answers(self, store: Store) -> None:
        """An open store answers ping."""
        await store.ping()

    async def test_unreachable_database_is_unavailable(self, unreachable_store: Store) -> None:
        """Failing to reach the database raises StoreUnavailableError, not a driver error."""
        with pytest.raises(StoreUnavailableError):
            async with unreachable_store as store:
                await store.ping()

    # -- organizations ----------------------------------------------------------------

    async def test_put_get_and_list_organizations(self, store: Store) -> None:
        """put_organization inserts or replaces; get and list return the latest values."""
        await store.put_organization(Organization(id="org_parent"))
        await store.put_organization(Organization(id="org_child", parent_id="org_parent"))
        await store.put_organization(
            Organization(id="org_child", parent_id="org_parent", status=OrgStatus.SUSPENDED)
        )

        assert await store.get_organization("org_child") == Organization(
            id="org_child", parent_id="org_parent", status=OrgStatus.SUSPENDED
        )
        assert await store.get_organization("org_unknown") is None
        assert await store.list_organizations() == [
            Organization(id="org_child", parent_id="org_parent", status=OrgStatus.SUSPENDED),
            Organization(id="org_parent"),
        ]

    # -- endpoints --------------------------------------------------------------------

    async def test_endpoint_round_trips_every_field(self, store: Store) -> None:
        """An endpoint reads back exactly as created, stamped with the creation time."""
        created = endpoint(
            "ep_1",
            scope=EndpointScope.ALL_CHILDREN,
            event_types=frozenset({"content.generated", "approval.approved"}),
            rate_limit=2.5,
            description="billing hooks",
            metadata={"team": "billing", "env": "prod"},
            created_by_key_id="key_admin",
        )
        await store.create_endpoint(created, SECRET, now=T0)

        assert await store.get_endpoint("ep_1") == replace(created, created_at=T0, updated_at=T0)
        assert await store.get_endpoint("ep_unknown") is None

    async def test_creating_an_existing_endpoint_id_is_a_value_error(self, store: Store) -> None:
        """A second endpoint with the same id is refused as a caller error."""
        await add_endpoints(store, "ep_1")
        with pytest.raises(IntegrityViolationError, match="integrity"):
            await store.create_endpoint(endpoint("ep_1"), SECRET, now=T0)

    async def test_list_endpoints_pages_by_id_within_one_org(self, store: Store) -> None:
        """list_endpoints returns one org's endpoints by id, `limit` at a time after `after`."""
        await add_endpoints(store, "ep_3", "ep_1", "ep_2")
        await add_endpoints(store, "ep_0", org="org_other")

        first = await store.list_endpoints(ORG, limit=2)
        rest = await store.list_endpoints(ORG, after=first[-1].id, limit=2)

        assert [e.id for e in first] == ["ep_1", "ep_2"]
        assert [e.id for e in rest] == ["ep_3"]
        assert await store.list_endpoints(ORG, after="ep_3") == []

    async def test_update_endpoint_replaces_configuration_only(self, store: Store) -> None:
        """update_endpoint rewrites the configuration and updated_at, never status or origin."""
        await store.create_endpoint(endpoint("ep_1", rate_limit=5.0), SECRET, now=T0)
        patched = endpoint(
            "ep_1",
            url="https://new.example.com/hook",
            scope=EndpointScope.ALL_CHILDREN,
            event_types=frozenset({"approval.approved"}),
            rate_limit=None,
            description="moved",
            metadata={"k": "v"},
            status=EndpointStatus.DISABLED,
            organization_id="org_elsewhere",
        )
        await store.update_endpoint(patched, now=T0 + HOUR)

        assert await store.get_endpoint("ep_1") == replace(
            patched,
            organization_id=ORG,
            status=EndpointStatus.ENABLED,
            created_at=T0,
            updated_at=T0 + HOUR,
        )

    async def test_update_of_a_missing_endpoint_raises_lookup_error(self, store: Store) -> None:
        """Updating an endpoint that does not exist raises LookupError."""
        with pytest.raises(NotFoundError, match="ep_gone"):
            await store.update_endpoint(endpoint("ep_gone"), now=T0)

    async def test_set_endpoint_status_reports_only_real_changes(self, store: Store) -> None:
        """Disabling records the reason, repeating it changes nothing, enabling clears it."""
        await add_endpoints(store, "ep_1")

        assert await store.set_endpoint_status(
            "ep_1", EndpointStatus.DISABLED, DisabledReason.GONE, now=T0 + HOUR
        )
        assert not await store.set_endpoint_status(
            "ep_1", EndpointStatus.DISABLED, DisabledReason.MANUAL, now=T0 + 2 * HOUR
        )
        disabled = await store.get_endpoint("ep_1")
        assert disabled is not None
        assert (disabled.status, disabled.disabled_reason, disabled.updated_at) == (
            EndpointStatus.DISABLED,
            DisabledReason.GONE,
            T0 + HOUR,
        )

        assert await store.set_endpoint_status("ep_1", EndpointStatus.ENABLED, None, now=T0 + DAY)
        enabled = await store.get_endpoint("ep_1")
        assert enabled is not None
        assert (enabled.status, enabled.disabled_reason) == (EndpointStatus.ENABLED, None)
        assert not await store.set_endpoint_status(
            "ep_unknown", EndpointStatus.ENABLED, None, now=T0
        )

    async def test_routable_endpoints_are_enabled_and_disabled_but_not_deleted(
        self, store: Store
    ) -> None:
        """The routing table's input holds every endpoint that still exists."""
        await add_endpoints(store, "ep_1", "ep_2", "ep_3")
        await add_endpoints(store, "ep_4", org="org_other")
        await store.set_endpoint_status(
            "ep_2", EndpointStatus.DISABLED, DisabledReason.MANUAL, now=T0
        )
        await store.delete_endpoint("ep_3")

        routable = await store.routable_endpoints()

        assert [(e.id, e.status) for e in routable] == [
            ("ep_1", EndpointStatus.ENABLED),
            ("ep_2", EndpointStatus.DISABLED),
            ("ep_4", EndpointStatus.ENABLED),
        ]

    async def test_delete_endpoint_cascades_to_secrets_and_deliveries(self, store: Store) -> None:
        """Deleting an endpoint removes its secrets, deliveries, attempts and replays; the
        event stays for the other endpoints."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[delivery("dlv_1", "evt_1", "ep_1"), delivery("dlv_2", "evt_1", "ep_2")],
            )
        )
        await claim(store)
        await complete(store, [failure("dlv_1", "ep_1", T0), result("dlv_2", "ep_2")])
        await store.replay_deliveries(["dlv_1"], actor="oncall", reason="test", now=T0 + HOUR)

        assert await store.delete_endpoint("ep_1")

        assert await store.get_endpoint("ep_1") is None
        assert await store.signing_secrets(["ep_1"], now=T0) == {}
        assert await store.get_delivery("dlv_1") is None
        assert await store.list_attempts("dlv_1") == []
        assert await store.list_replays("dlv_1") == []
        assert [d.id for d in await store.list_event_deliveries("evt_1")] == ["dlv_2"]
        assert not await store.delete_endpoint("ep_1")

    # -- secrets ----------------------------------------------------------------------

    async def test_signing_secrets_are_returned_decrypted(self, store: Store) -> None:
        """The secret given at creation comes back decrypted; unknown endpoints are absent."""
        await add_endpoints(store, "ep_1")
        assert await store.signing_secrets(["ep_1", "ep_unknown"], now=T0) == {"ep_1": (SECRET,)}

    async def test_rotation_signs_with_both_until_the_old_one_expires(self, store: Store) -> None:
        """After rotation the new secret comes first and the old one signs until it expires."""
        await add_endpoints(store, "ep_1")
        await store.rotate_secret("ep_1", NEW_SECRET, now=T0 + HOUR, old_expires_at=T0 + DAY)

        assert await store.signing_secrets(["ep_1"], now=T0 + DAY - SECOND) == {
            "ep_1": (NEW_SECRET, SECRET)
        }
        assert await store.signing_secrets(["ep_1"], now=T0 + DAY) == {"ep_1": (NEW_SECRET,)}

    async def test_a_second_rotation_shortens_every_older_grace_period(self, store: Store) -> None:
        """Rotating again stops all older secrets at the new expiry, newest first until then."""
        third = "whsec_dGhpcmQtc2VjcmV0LWFmdGVyLXR3by1yb3RhdGlvbnM="
        await add_endpoints(store, "ep_1")
        await store.rotate_secret("ep_1", NEW_SECRET, now=T0, old_expires_at=T0 + DAY)
        await store.rotate_secret("ep_1", third, now=T0 + HOUR, old_expires_at=T0 + 2 * HOUR)

        assert await store.signing_secrets(["ep_1"], now=T0 + HOUR) == {
            "ep_1": (third, NEW_SECRET, SECRET)
        }
        assert await store.signing_secrets(["ep_1"], now=T0 + 2 * HOUR) == {"ep_1": (third,)}

    async def test_rotating_a_missing_endpoint_raises_lookup_error(self, store: Store) -> None:
        """Rotating the secret of an endpoint that does not exist raises LookupError."""
        with pytest.raises(NotFoundError, match="ep_gone"):
            await store.rotate_secret("ep_gone", NEW_SECRET, now=T0, old_expires_at=T0)

    async def test_plaintext_secrets_never_reach_the_database(
        self, store: Store, raw_contents: RawContents
    ) -> None:
        """The raw database holds the endpoint's URL but neither its secret nor a rotated one."""
        await add_endpoints(store, "ep_1")
        await store.rotate_secret("ep_1", NEW_SECRET, now=T0, old_expires_at=T0 + DAY)

        raw = await raw_contents()

        assert b"https://hooks.example.com/ep_1" in raw  # the dump does see stored text
        for secret in (SECRET, NEW_SECRET):
            assert secret.encode() not in raw
            assert secret.removeprefix("whsec_").encode() not in raw

    # -- ingest -----------------------------------------------------------------------

    async def test_ingest_stores_events_and_deliveries(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A batch's events and deliveries are stored; every inserted delivery id is reported."""
        await add_endpoints(store, "ep_1", "ep_2")
        clock.now = T0 + SECOND
        batch = IngestBatch(
            events=[event("evt_1"), event("evt_2", event_type="approval.approved")],
            deliveries=[
                delivery("dlv_1", "evt_1", "ep_1"),
                delivery("dlv_2", "evt_1", "ep_2"),
                delivery("dlv_3", "evt_2", "ep_1", due=T0 + HOUR),
            ],
        )

        assert await store.ingest(batch) == IngestResult(
            created=frozenset({"dlv_1", "dlv_2", "dlv_3"}),
            new_events=frozenset({"evt_1", "evt_2"}),
        )

        stored = await store.get_event("evt_1")
        assert stored is not None
        assert (stored.type, stored.organization_id, stored.created, stored.received_at) == (
            "content.generated",
            ORG,
            T0 - HOUR,
            T0 + SECOND,
        )
        assert (stored.body, stored.delivery_count) == (event("evt_1").body, 2)
        record = await store.get_delivery("dlv_3")
        assert record is not None
        assert (record.event_type, record.status, record.attempts, record.next_attempt_at) == (
            "approval.approved",
            DeliveryStatus.PENDING,
            0,
            T0 + HOUR,
        )
        assert (record.created_at, record.updated_at, record.lease_owner) == (
            T0 + SECOND,
            T0 + SECOND,
            None,
        )

    async def test_reingesting_a_batch_is_deduplicated(self, store: Store) -> None:
        """A replayed Kafka batch (new delivery ids, same pairs) creates nothing and is counted."""
        await add_endpoints(store, "ep_1", "ep_2")
        pairs = [("evt_1", "ep_1"), ("evt_1", "ep_2"), ("evt_2", "ep_1")]
        events = [event("evt_1"), event("evt_2")]
        await store.ingest(
            IngestBatch(
                events=events, deliveries=[delivery(f"dlv_a{i}", *p) for i, p in enumerate(pairs)]
            )
        )

        again = await store.ingest(
            IngestBatch(
                events=events, deliveries=[delivery(f"dlv_b{i}", *p) for i, p in enumerate(pairs)]
            )
        )

        assert again == IngestResult(
            created=frozenset(), duplicate_events=2, duplicate_deliveries=3
        )
        assert await store.get_delivery("dlv_b0") is None
        stored = await store.get_event("evt_1")
        assert stored is not None
        assert stored.delivery_count == 2

    async def test_a_known_event_can_gain_a_delivery_for_a_new_endpoint(self, store: Store) -> None:
        """Re-consuming an event after a new endpoint subscribed creates only the new pair."""
        await add_endpoints(store, "ep_1")
        await store.ingest(
            IngestBatch(events=[event("evt_1")], deliveries=[delivery("dlv_1", "evt_1", "ep_1")])
        )
        await add_endpoints(store, "ep_2")

        again = await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[delivery("dlv_2", "evt_1", "ep_1"), delivery("dlv_3", "evt_1", "ep_2")],
            )
        )

        assert again == IngestResult(
            created=frozenset({"dlv_3"}), duplicate_events=1, duplicate_deliveries=1
        )
        stored = await store.get_event("evt_1")
        assert stored is not None
        assert stored.delivery_count == 2

    async def test_a_pair_repeated_within_one_batch_is_created_once(self, store: Store) -> None:
        """Two deliveries of the same (event, endpoint) in one batch: one created, one duplicate."""
        await add_endpoints(store, "ep_1")
        outcome = await store.ingest(
            IngestBatch(
                events=[event("evt_1"), event("evt_1")],
                deliveries=[delivery("dlv_1", "evt_1", "ep_1"), delivery("dlv_2", "evt_1", "ep_1")],
            )
        )

        assert outcome == IngestResult(
            created=frozenset({"dlv_1"}),
            duplicate_events=1,
            duplicate_deliveries=1,
            new_events=frozenset({"evt_1"}),
        )
        stored = await store.get_event("evt_1")
        assert stored is not None
        assert stored.delivery_count == 1

    async def test_deliveries_to_a_deleted_endpoint_are_dropped(self, store: Store) -> None:
        """A delivery routed to an endpoint deleted since is neither created nor a duplicate."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.delete_endpoint("ep_2")

        outcome = await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[delivery("dlv_1", "evt_1", "ep_1"), delivery("dlv_2", "evt_1", "ep_2")],
            )
        )

        assert outcome == IngestResult(
            created=frozenset({"dlv_1"}), new_events=frozenset({"evt_1"})
        )
        stored = await store.get_event("evt_1")
        assert stored is not None
        assert stored.delivery_count == 1

    async def test_an_event_without_subscribers_is_recorded(self, store: Store) -> None:
        """An event routed nowhere is stored with delivery_count 0 ("no subscribers")."""
        recorded = await store.ingest(IngestBatch(events=[event("evt_1")]))
        assert recorded == IngestResult(new_events=frozenset({"evt_1"}))
        again = await store.ingest(IngestBatch(events=[event("evt_1")]))
        assert again == IngestResult(duplicate_events=1)  # re-consumed: nothing new
        stored = await store.get_event("evt_1")
        assert stored is not None
        assert stored.delivery_count == 0

    async def test_ingest_is_one_transaction(self, store: Store) -> None:
        """A batch with a delivery of an unknown event raises ValueError and stores nothing."""
        await add_endpoints(store, "ep_1")
        broken = IngestBatch(
            events=[event("evt_1")],
            deliveries=[
                delivery("dlv_1", "evt_1", "ep_1"),
                delivery("dlv_2", "evt_missing", "ep_1"),
            ],
            dead_letters=[dead_letter("dl_1", offset=7)],
        )

        with pytest.raises(IntegrityViolationError, match="integrity"):
            await store.ingest(broken)

        assert await store.get_event("evt_1") is None
        assert await store.get_delivery("dlv_1") is None
        assert await store.get_dead_letter("dl_1") is None

    async def test_an_empty_batch_changes_nothing(self, store: Store) -> None:
        """Ingesting an empty batch returns an empty result."""
        assert await store.ingest(IngestBatch()) == IngestResult()

    async def test_suppressed_deliveries_are_kept_but_never_claimed(self, store: Store) -> None:
        """A delivery ingested as suppressed keeps its reason, has no next attempt, is not due."""
        await add_endpoints(store, "ep_1")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[
                    delivery(
                        "dlv_1",
                        "evt_1",
                        "ep_1",
                        status=DeliveryStatus.SUPPRESSED,
                        reason="org_suspended",
                    )
                ],
            )
        )

        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert (record.status, record.reason, record.next_attempt_at) == (
            DeliveryStatus.SUPPRESSED,
            "org_suspended",
            None,
        )
        assert await claim(store, T0 + DAY) == []
        assert await store.next_due_at() is None

    # -- dead letters -----------------------------------------------------------------

    async def test_dead_letters_are_stored_once_per_record(self, store: Store) -> None:
        """Dead letters keep their bytes; the same topic/partition/offset is stored once."""
        first = await store.ingest(IngestBatch(dead_letters=[dead_letter("dl_1", offset=7)]))
        again = await store.ingest(IngestBatch(dead_letters=[dead_letter("dl_2", offset=7)]))
        assert (first.new_dead_letters, again.new_dead_letters) == (
            frozenset({"dl_1"}),
            frozenset(),
        )

        stored = await store.get_dead_letter("dl_1")
        assert stored is not None
        assert (stored.topic, stored.partition, stored.offset, stored.key, stored.value) == (
            "layers.events",
            3,
            7,
            b"org_acme",
            b"{not json",
        )
        assert (stored.reason, stored.received_at, stored.retried_at) == (
            "malformed_json",
            T0,
            None,
        )
        assert await store.get_dead_letter("dl_2") is None

    async def test_dead_letters_list_newest_first_with_filter_and_cursor(
        self, store: Store
    ) -> None:
        """list_dead_letters pages newest first, optionally by reason."""
        await store.ingest(
            IngestBatch(
                dead_letters=[
                    dead_letter("dl_1", 1),
                    dead_letter("dl_2", 2, reason="too_large"),
                    dead_letter("dl_3", 3),
                    dead_letter("dl_4", 4),
                ]
            )
        )

        first = await store.list_dead_letters(limit=2)
        assert [d.id for d in first] == ["dl_4", "dl_3"]
        assert [d.id for d in await store.list_dead_letters(after="dl_3")] == ["dl_2", "dl_1"]
        assert [
            d.id for d in await store.list_dead_letters(reason="malformed_json", after="dl_4")
        ] == [
            "dl_3",
            "dl_1",
        ]

    async def test_mark_dead_letter_retried(self, store: Store) -> None:
        """Marking a dead letter retried records when; an unknown id reports False."""
        await store.ingest(IngestBatch(dead_letters=[dead_letter("dl_1", 1)]))

        assert await store.mark_dead_letter_retried("dl_1", now=T0 + HOUR)
        assert not await store.mark_dead_letter_retried("dl_unknown", now=T0 + HOUR)
        stored = await store.get_dead_letter("dl_1")
        assert stored is not None
        assert stored.retried_at == T0 + HOUR

    # -- claiming ---------------------------------------------------------------------

    async def test_claim_due_leases_due_deliveries_in_due_order(self, store: Store) -> None:
        """claim_due returns due deliveries oldest first, up to the limit, with their event."""
        await add_endpoints(store, "ep_1")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1"), event("evt_2", event_type="approval.approved")],
                deliveries=[
                    delivery("dlv_late", "evt_1", "ep_1", due=T0 + SECOND),
                    delivery("dlv_now", "evt_2", "ep_1", due=T0),
                ],
            )
        )
        await add_endpoints(store, "ep_2")
        await store.ingest(
            IngestBatch(deliveries=[delivery("dlv_early", "evt_1", "ep_2", due=T0 - SECOND)])
        )

        first = await store.claim_due(
            now=T0, limit=1, lease_owner="w1", lease_expires_at=T0 + 30 * SECOND
        )
        second = await claim(store, T0)

        assert first == [
            Claim(
                delivery_id="dlv_early",
                event_id="evt_1",
                event_type="content.generated",
                organization_id=ORG,
                endpoint_id="ep_2",
                attempts=0,
                body=event("evt_1").body,
                lease=Lease("w1", 1),  # its first claim
            )
        ]
        assert [(c.delivery_id, c.event_type) for c in second] == [("dlv_now", "approval.approved")]
        leased = await store.get_delivery("dlv_early")
        assert leased is not None
        assert (leased.lease_owner, leased.lease_expires_at) == ("w1", T0 + 30 * SECOND)

    async def test_a_leased_delivery_is_claimable_only_after_its_lease_expires(
        self, store: Store
    ) -> None:
        """A claimed delivery is invisible to other claimers until its lease runs out."""
        await one_delivery(store)
        assert [c.delivery_id for c in await claim(store, T0, owner="w1")] == ["dlv_1"]

        assert await claim(store, T0 + 29 * SECOND, owner="w2") == []
        assert [c.delivery_id for c in await claim(store, T0 + 30 * SECOND, owner="w2")] == [
            "dlv_1"
        ]
        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert record.lease_owner == "w2"

    async def test_a_delivery_ingested_with_a_lease_waits_for_it(self, store: Store) -> None:
        """The consumer's own lease on a fresh delivery keeps pollers off until it expires."""
        await add_endpoints(store, "ep_1")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[
                    delivery(
                        "dlv_1",
                        "evt_1",
                        "ep_1",
                        lease_owner="consumer",
                        lease_expires_at=T0 + 60 * SECOND,
                    )
                ],
            )
        )

        assert await claim(store, T0) == []
        assert await store.next_due_at() == T0 + 60 * SECOND
        assert [c.delivery_id for c in await claim(store, T0 + 60 * SECOND)] == ["dlv_1"]

    async def test_concurrent_claimers_never_share_a_delivery(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        """Claimers on two store instances, racing, lease every due delivery exactly once."""
        endpoint_ids = [f"ep_{i}" for i in range(4)]
        await add_endpoints(store, *endpoint_ids)
        events = [event(f"evt_{i:03d}") for i in range(50)]
        deliveries = [delivery(f"dlv_{e.id}_{ep}", e.id, ep) for e in events for ep in endpoint_ids]
        await store.ingest(IngestBatch(events=events, deliveries=deliveries))

        async with store_factory() as replica:

            async def drain(instance: Store, owner: str) -> list[str]:
                taken: list[str] = []
                while batch := await claim(instance, T0, owner=owner, limit=7):
                    taken.extend(c.delivery_id for c in batch)
                    await asyncio.sleep(0)
                return taken

            claimed = await asyncio.gather(
                drain(store, "a1"), drain(store, "a2"), drain(replica, "b1"), drain(replica, "b2")
            )

        everything = [delivery_id for taken in claimed for delivery_id in taken]
        assert len(everything) == len(set(everything)) == 200
        assert set(everything) == {d.id for d in deliveries}

    # -- completing, releasing, suppressing -------------------------------------------

    async def test_a_success_completes_the_delivery_and_records_the_attempt(
        self, store: Store, clock: FakeClock
    ) -> None:
        """complete stores the attempt and marks the delivery succeeded with its lease released."""
        await one_delivery(store)
        await claim(store)
        clock.now = T0 + 2 * SECOND

        await complete(store, [result("dlv_1", "ep_1", started_at=T0 + SECOND)])

        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert (record.status, record.attempts, record.next_attempt_at) == (
            DeliveryStatus.SUCCEEDED,
            1,
            None,
        )
        assert (record.lease_owner, record.lease_expires_at) == (None, None)
        assert (record.last_attempt_at, record.last_status_code, record.updated_at) == (
            T0 + SECOND,
            200,
            T0 + 2 * SECOND,
        )
        [attempt] = await store.list_attempts("dlv_1")
        assert attempt.id.startswith("att_")
        assert (attempt.delivery_id, attempt.attempt, attempt.started_at) == (
            "dlv_1",
            1,
            T0 + SECOND,
        )
        assert (attempt.duration_ms, attempt.status_code, attempt.failure) == (12.5, 200, None)
        assert (attempt.response_excerpt, attempt.detail) == (b"ok", "")

    async def test_a_batch_larger_than_one_statement_is_stored_and_completed_whole(
        self, store: Store
    ) -> None:
        """Ingest and complete write a batch as set-based statements; one of 3,000 deliveries
        (more than one statement's rows) is stored, claimed and completed to the last row,
        and a stale result among them is the only one refused."""
        endpoint_ids = [f"ep_{i}" for i in range(10)]
        await add_endpoints(store, *endpoint_ids)
        events = [event(f"evt_{i:04d}") for i in range(300)]
        deliveries = [delivery(f"dlv_{e.id}_{ep}", e.id, ep) for e in events for ep in endpoint_ids]
        stored = await store.ingest(IngestBatch(events=events, deliveries=deliveries))
        assert len(stored.created) == 3000
        assert stored.new_events == {e.id for e in events}
        claims = await claim(store, limit=5000)
        assert len(claims) == 3000
        results = [result(c.delivery_id, c.endpoint_id, lease=c.lease) for c in claims]
        stale = replace(results[7], lease=Lease(results[7].lease.owner, results[7].lease.epoch + 1))

        assert await store.complete([*results[:7], stale, *results[8:]]) == {stale.delivery_id}

        succeeded = [
            await store.count_deliveries(ep, statuses=[DeliveryStatus.SUCCEEDED])
            for ep in endpoint_ids
        ]
        assert sum(succeeded) == 2999
        assert len(await store.list_attempts(results[-1].delivery_id)) == 1
        assert await store.list_attempts(stale.delivery_id) == []

    async def test_a_retryable_failure_waits_for_its_next_attempt(self, store: Store) -> None:
        """A failed attempt with a next time stays pending, due then, with its count kept."""
        await one_delivery(store)
        await claim(store)

        await complete(store, [failure("dlv_1", "ep_1", T0, next_attempt_at=T0 + 5 * SECOND)])

        assert await claim(store, T0 + 4 * SECOND) == []
        assert await store.next_due_at() == T0 + 5 * SECOND
        [retry] = await claim(store, T0 + 5 * SECOND)
        assert (retry.delivery_id, retry.attempts) == ("dlv_1", 1)
        [attempt] = await store.list_attempts("dlv_1")
        assert (attempt.status_code, attempt.failure, attempt.detail) == (
            503,
            FailureKind.HTTP_STATUS,
            "HTTP 503",
        )

    async def test_the_last_failure_leaves_the_delivery_failed(self, store: Store) -> None:
        """A failure without a next attempt marks the delivery failed and never claimable."""
        await one_delivery(store)
        await claim(store)

        await complete(store, [failure("dlv_1", "ep_1", T0, attempt=8)])

        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert (record.status, record.attempts, record.next_attempt_at) == (
            DeliveryStatus.FAILED,
            8,
            None,
        )
        assert await claim(store, T0 + DAY) == []

    async def test_the_failing_clock_starts_at_the_first_failure_after_a_success(
        self, store: Store
    ) -> None:
        """failing_since is the first failure since the last success and a success clears it."""
        await add_endpoints(store, "ep_1", "ep_2")
        events = [event(f"evt_{i}") for i in range(5)]
        await store.ingest(
            IngestBatch(
                events=events,
                deliveries=[delivery(f"dlv_{i}", f"evt_{i}", "ep_1") for i in range(5)],
            )
        )

        await complete(store, [failure("dlv_0", "ep_1", T0)])
        await complete(store, [failure("dlv_1", "ep_1", T0 + HOUR)])
        assert await store.endpoints_failing_since(T0 - SECOND) == []
        assert await store.endpoints_failing_since(T0) == ["ep_1"]

        await complete(store, [result("dlv_2", "ep_1", started_at=T0 + 2 * HOUR)])
        assert await store.endpoints_failing_since(T0 + DAY) == []

        # In one batch: a success, then a failure after it — the clock starts at that failure.
        await complete(
            store,
            [
                failure("dlv_4", "ep_1", T0 + 4 * HOUR),
                result("dlv_3", "ep_1", started_at=T0 + 3 * HOUR),
            ],
        )
        assert await store.endpoints_failing_since(T0 + 4 * HOUR - SECOND) == []
        assert await store.endpoints_failing_since(T0 + 4 * HOUR) == ["ep_1"]

    async def test_failing_since_lists_only_enabled_endpoints(self, store: Store) -> None:
        """A disabled endpoint is not reported again, and re-enabling restarts its clock."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[delivery("dlv_1", "evt_1", "ep_1"), delivery("dlv_2", "evt_1", "ep_2")],
            )
        )
        await complete(store, [failure("dlv_1", "ep_1", T0), failure("dlv_2", "ep_2", T0)])
        assert await store.endpoints_failing_since(T0) == ["ep_1", "ep_2"]

        await store.set_endpoint_status(
            "ep_1", EndpointStatus.DISABLED, DisabledReason.FAILING, now=T0
        )
        assert await store.endpoints_failing_since(T0) == ["ep_2"]

        await store.set_endpoint_status("ep_1", EndpointStatus.ENABLED, None, now=T0 + DAY)
        assert await store.endpoints_failing_since(T0 + DAY) == ["ep_2"]

    # -- fencing: a lease taken over cannot be written through ---------------------------

    async def test_a_stale_result_cannot_undo_what_the_new_lease_holder_did(
        self, store: Store
    ) -> None:
        """The probe of the replicas issue: A claims, its lease expires, B claims and
        succeeds, then A's buffered 503 arrives. It is refused (returned as stale): the
        delivery stays succeeded, with B's attempt only, and is not delivered again."""
        await one_delivery(store)
        [a] = await claim(store, T0, owner="replica-a")
        [b] = await claim(store, T0 + 30 * SECOND, owner="replica-b")
        assert (a.lease, b.lease) == (Lease("replica-a", 1), Lease("replica-b", 2))

        assert await store.complete([result("dlv_1", "ep_1", lease=b.lease)]) == frozenset()
        late = result(
            "dlv_1",
            "ep_1",
            status_code=503,
            failure=FailureKind.HTTP_STATUS,
            next_attempt_at=T0 + 40 * SECOND,
            lease=a.lease,
        )
        assert await store.complete([late]) == frozenset({"dlv_1"})

        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert (record.status, record.attempts, record.last_status_code) == (
            DeliveryStatus.SUCCEEDED,
            1,
            200,
        )
        assert [x.status_code for x in await store.list_attempts("dlv_1")] == [200]
        assert await claim(store, T0 + DAY) == []

    async def test_a_stale_hand_back_or_suppression_leaves_the_new_lease_alone(
        self, store: Store
    ) -> None:
        """A's release and suppress after B took the delivery over change nothing."""
        await one_delivery(store)
        [a] = await claim(store, T0, owner="replica-a")
        [b] = await claim(store, T0 + 30 * SECOND, owner="replica-b")

        released = await store.release(
            [("dlv_1", a.lease)], next_attempt_at=T0, reason=WaitingReason.SHUTDOWN
        )
        suppressed = await store.suppress([("dlv_1", a.lease)], "endpoint_disabled")

        assert (released, suppressed) == (0, 0)
        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert (record.status, record.lease_owner, record.lease_epoch) == (
            DeliveryStatus.PENDING,
            "replica-b",
            b.lease.epoch,
        )
        assert (
            await store.release(
                [("dlv_1", b.lease)], next_attempt_at=T0, reason=WaitingReason.SHUTDOWN
            )
            == 1
        )

    async def test_a_late_result_applies_while_nobody_took_the_lease_over(
        self, store: Store
    ) -> None:
        """An expired lease nobody claimed again is still the holder's: its result counts."""
        await one_delivery(store)
        [a] = await claim(store, T0, owner="replica-a")
        assert await store.complete([result("dlv_1", "ep_1", lease=a.lease)]) == frozenset()
        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert record.status is DeliveryStatus.SUCCEEDED

    async def test_every_claim_takes_the_next_epoch(self, store: Store) -> None:
        """Ingested with a lease: epoch 1; each later claim: one more."""
        await add_endpoints(store, "ep_1")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[
                    delivery(
                        "dlv_1",
                        "evt_1",
                        "ep_1",
                        lease_owner="consumer",
                        lease_expires_at=T0 + 60 * SECOND,
                    )
                ],
            )
        )
        assert (await held(store, "dlv_1")) == Lease("consumer", 1)
        epochs = [(await claim(store, T0 + n * 60 * SECOND))[0].lease.epoch for n in (1, 2, 3)]
        assert epochs == [2, 3, 4]

    async def test_completing_a_deleted_delivery_is_harmless(self, store: Store) -> None:
        """An attempt finishing after its endpoint was deleted is dropped; the rest of the
        batch is stored."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[delivery("dlv_1", "evt_1", "ep_1"), delivery("dlv_2", "evt_1", "ep_2")],
            )
        )
        await claim(store)
        await store.delete_endpoint("ep_1")

        await complete(store, [result("dlv_1", "ep_1"), result("dlv_2", "ep_2")])

        assert await store.get_delivery("dlv_1") is None
        record = await store.get_delivery("dlv_2")
        assert record is not None
        assert record.status is DeliveryStatus.SUCCEEDED
        assert len(await store.list_attempts("dlv_2")) == 1

    async def test_release_returns_a_lease_without_counting_an_attempt(self, store: Store) -> None:
        """release frees the lease, keeps the attempt count, makes the delivery due later and
        records why it waits."""
        await one_delivery(store)
        await claim(store)

        await release(
            store, ["dlv_1"], next_attempt_at=T0 + 10 * SECOND, reason=WaitingReason.BREAKER_OPEN
        )

        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert (
            record.lease_owner,
            record.attempts,
            record.next_attempt_at,
            record.waiting_reason,
        ) == (None, 0, T0 + 10 * SECOND, WaitingReason.BREAKER_OPEN)
        assert await claim(store, T0 + 9 * SECOND) == []
        assert [c.attempts for c in await claim(store, T0 + 10 * SECOND)] == [0]

    async def test_a_failed_attempt_waits_as_a_scheduled_retry_and_a_final_one_not_at_all(
        self, store: Store
    ) -> None:
        """complete records `retry_scheduled` for a pending result and clears it when final."""
        await one_delivery(store)
        await claim(store)
        await release(store, ["dlv_1"], next_attempt_at=T0, reason=WaitingReason.ENDPOINT_BUSY)
        await claim(store)
        retry = result(
            "dlv_1",
            "ep_1",
            status_code=503,
            failure=FailureKind.HTTP_STATUS,
            next_attempt_at=T0 + 5 * SECOND,
        )
        await complete(store, [retry])
        pending = await store.get_delivery("dlv_1")
        assert pending is not None
        assert pending.waiting_reason is WaitingReason.RETRY_SCHEDULED

        await claim(store, T0 + 5 * SECOND)
        await complete(store, [result("dlv_1", "ep_1", attempt=2)])
        final = await store.get_delivery("dlv_1")
        assert final is not None
        assert (final.status, final.waiting_reason) == (DeliveryStatus.SUCCEEDED, None)

    async def test_suppress_marks_only_pending_deliveries(self, store: Store) -> None:
        """suppress records a reason on pending deliveries and leaves finished ones alone."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[delivery("dlv_1", "evt_1", "ep_1"), delivery("dlv_2", "evt_1", "ep_2")],
            )
        )
        await claim(store)
        await complete(store, [result("dlv_2", "ep_2")])

        assert await suppress(store, ["dlv_1", "dlv_2"], "endpoint_disabled") == 1

        suppressed, succeeded = await store.list_event_deliveries("evt_1")
        assert (suppressed.status, suppressed.reason, suppressed.next_attempt_at) == (
            DeliveryStatus.SUPPRESSED,
            "endpoint_disabled",
            None,
        )
        assert (succeeded.status, succeeded.reason) == (DeliveryStatus.SUCCEEDED, None)
        assert await claim(store, T0 + DAY) == []

    async def test_next_due_at_is_the_earliest_pending_time(self, store: Store) -> None:
        """next_due_at is None with nothing pending, else the earliest next attempt."""
        assert await store.next_due_at() is None
        await add_endpoints(store, "ep_1", "ep_2")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[
                    delivery("dlv_1", "evt_1", "ep_1", due=T0 + HOUR),
                    delivery("dlv_2", "evt_1", "ep_2", due=T0 + 5 * SECOND),
                ],
            )
        )
        assert await store.next_due_at() == T0 + 5 * SECOND

    # -- replay -----------------------------------------------------------------------

    async def test_replay_resets_the_ladder_and_records_who_and_why(self, store: Store) -> None:
        """A replayed delivery is pending again at the start of a fresh ladder, due now; its
        attempts keep counting and its history is kept."""
        await one_delivery(store)
        await claim(store)
        await complete(store, [failure("dlv_1", "ep_1", T0, attempt=8)])

        replayed = await store.replay_deliveries(
            ["dlv_1", "dlv_unknown"], actor="key_oncall", reason="endpoint fixed", now=T0 + DAY
        )

        assert replayed == 1
        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert (record.status, record.attempts, record.next_attempt_at, record.lease_owner) == (
            DeliveryStatus.PENDING,
            8,
            T0 + DAY,
            None,
        )
        [history] = await store.list_replays("dlv_1")
        assert (history.delivery_id, history.actor, history.reason, history.at) == (
            "dlv_1",
            "key_oncall",
            "endpoint fixed",
            T0 + DAY,
        )
        assert len(await store.list_attempts("dlv_1")) == 1
        [again] = await claim(store, T0 + DAY)
        assert (again.delivery_id, again.attempt, again.ladder_position) == ("dlv_1", 9, 1)

    async def test_attempts_are_numbered_across_replays_while_the_ladder_restarts(
        self, store: Store
    ) -> None:
        """Two attempts, a replay, a third: numbered 1, 2, 3 and counted 3; each claim says
        the attempt's number and its position on the ladder (1 again after the replay)."""
        await one_delivery(store)
        positions = []
        for number, final in [(1, False), (2, True)]:
            [claimed] = await claim(store, T0 + number * HOUR)
            positions.append((claimed.attempt, claimed.ladder_position))
            due = None if final else T0 + (number + 1) * HOUR
            at = T0 + number * HOUR
            await complete(
                store, [failure("dlv_1", "ep_1", at, attempt=number, next_attempt_at=due)]
            )
        await store.replay_deliveries(["dlv_1"], actor="key_oncall", reason="", now=T0 + DAY)
        [replayed] = await claim(store, T0 + DAY)
        positions.append((replayed.attempt, replayed.ladder_position))
        await complete(
            store, [result("dlv_1", "ep_1", started_at=T0 + DAY, attempt=replayed.attempt)]
        )
        await store.replay_deliveries(["dlv_1"], actor="key_oncall", reason="", now=T0 + 2 * DAY)
        [twice] = await claim(store, T0 + 2 * DAY)

        record = await store.get_delivery("dlv_1")
        assert record is not None
        assert positions == [(1, 1), (2, 2), (3, 1)]
        assert (twice.attempt, twice.ladder_position) == (4, 1)
        assert record.attempts == 3
        assert [a.attempt for a in await store.list_attempts("dlv_1")] == [1, 2, 3]

    # -- API keys ---------------------------------------------------------------------

    async def test_api_keys_are_found_by_hash_listed_and_revoked_once(self, store: Store) -> None:
        """A key reads back by its hash and id, lists per org, and revokes exactly once."""
        org_key = api_key("key_1", ORG, {"webhooks:read", "org:admin"})
        operator = api_key("key_2", None, {"ops:read"})
        await store.create_api_key(org_key, "hash-1")
        await store.create_api_key(operator, "hash-2")

        assert await store.api_key_by_hash("hash-1") == org_key
        assert await store.api_key_by_hash("hash-unknown") is None
        assert await store.get_api_keys(["key_2", "key_1", "key_x"]) == [org_key, operator]
        assert await store.list_api_keys() == [org_key, operator]
        assert await store.list_api_keys(organization_id=ORG) == [org_key]

        assert await store.revoke_api_key("key_1", now=T0 + HOUR)
        assert not await store.revoke_api_key("key_1", now=T0 + DAY)
        assert not await store.revoke_api_key("key_unknown", now=T0)
        assert await store.api_key_by_hash("hash-1") == replace(org_key, revoked_at=T0 + HOUR)

    async def test_an_api_key_hash_or_id_cannot_repeat(self, store: Store) -> None:
        """A second key with the same hash, or the same id, is refused as a caller error."""
        await store.create_api_key(api_key("key_1", ORG, {"webhooks:read"}), "hash-1")
        with pytest.raises(IntegrityViolationError, match="integrity"):
            await store.create_api_key(api_key("key_2", ORG, {"webhooks:read"}), "hash-1")
        with pytest.raises(IntegrityViolationError, match="integrity"):
            await store.create_api_key(api_key("key_1", ORG, {"webhooks:read"}), "hash-2")

    async def test_set_endpoint_creator_moves_a_firehose_authorisation(self, store: Store) -> None:
        """set_endpoint_creator records the key an endpoint's firehose now rests on."""
        await add_endpoints(store, "ep_1")
        assert await store.set_endpoint_creator("ep_1", "key_admin")
        assert not await store.set_endpoint_creator("ep_unknown", "key_admin")
        stored = await store.get_endpoint("ep_1")
        assert stored is not None
        assert stored.created_by_key_id == "key_admin"

    # -- bulk replay jobs -------------------------------------------------------------

    async def test_a_replay_job_snapshots_what_count_deliveries_counts(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A job's total equals count_deliveries over its filter; it starts queued."""
        await failed_deliveries(store, clock, 5)
        selection = ReplayFilter(endpoint_id="ep_1", since=T0 + HOUR, types=frozenset({"a.one"}))

        job, created = await new_job(store, selection)

        counted = await store.count_deliveries(
            "ep_1", statuses=selection.statuses, types=selection.types, since=selection.since
        )
        assert created
        assert (job.status, job.total, job.done, counted) == (ReplayJobStatus.QUEUED, 2, 0, 2)
        assert (job.organization_id, job.actor, job.reason, job.filter) == (
            ORG,
            "key_oncall",
            "endpoint fixed",
            selection,
        )
        assert await store.get_replay_job(job.id) == job

    async def test_resubmitting_an_active_filter_returns_the_same_job(
        self, store: Store, clock: FakeClock
    ) -> None:
        """While a job is active an equal filter returns it; another filter is another job."""
        await failed_deliveries(store, clock, 3)
        selection = ReplayFilter(endpoint_id="ep_1", since=T0)
        first, _ = await new_job(store, selection, job_id="rpl_1")

        again, created = await new_job(store, selection, job_id="rpl_2")
        other, other_created = await new_job(
            store, replace(selection, until=T0 + DAY), job_id="rpl_3"
        )

        assert (again, created) == (first, False)
        assert (other.id, other_created) == ("rpl_3", True)
        assert [j.id for j in await store.active_replay_jobs()] == ["rpl_1", "rpl_3"]

    async def test_replay_jobs_list_newest_first_by_organization_with_a_cursor(
        self, store: Store
    ) -> None:
        """list_replay_jobs pages newest first (by id), every organization's or one's."""
        await add_endpoints(store, "ep_1")
        for n, org in enumerate([ORG, "org_other", ORG], start=1):
            selection = ReplayFilter(endpoint_id="ep_1", since=T0, until=T0 + n * DAY)
            await new_job(store, selection, job_id=f"rpl_{n}", org=org)

        every = [j.id for j in await store.list_replay_jobs()]
        own = [j.id for j in await store.list_replay_jobs(organization_id=ORG)]
        after = await store.list_replay_jobs(organization_id=ORG, after="rpl_3", limit=1)

        assert every == ["rpl_3", "rpl_2", "rpl_1"]
        assert own == ["rpl_3", "rpl_1"]
        assert [j.id for j in after] == ["rpl_1"]

    async def test_a_replay_job_matching_nothing_succeeds_at_once(self, store: Store) -> None:
        """A job whose filter matches no delivery is created succeeded with total 0."""
        await add_endpoints(store, "ep_1")
        job, created = await new_job(store, ReplayFilter(endpoint_id="ep_1", since=T0))
        assert created
        assert (job.status, job.total, job.done, job.finished_at) == (
            ReplayJobStatus.SUCCEEDED,
            0,
            0,
            T0,
        )
        assert await store.active_replay_jobs() == []

    async def test_advancing_a_job_replays_in_id_order_and_records_the_job(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Each step replays the next deliveries (fresh ladder, history naming the job) until
        the job succeeds; a finished job is left alone."""
        ids = await failed_deliveries(store, clock, 5)
        job, _ = await new_job(store, ReplayFilter(endpoint_id="ep_1", since=T0))

        first = await store.advance_replay_job(job.id, limit=2, now=T0 + DAY)
        assert first.job is not None
        assert (first.processed, first.job.done, first.job.status) == (
            2,
            2,
            ReplayJobStatus.RUNNING,
        )
        statuses = [(await store.get_delivery(i)) for i in ids]
        assert [d.status for d in statuses if d is not None] == [DeliveryStatus.PENDING] * 2 + [
            DeliveryStatus.FAILED
        ] * 3
        [history] = await store.list_replays(ids[0])
        assert (history.actor, history.reason, history.at, history.job_id) == (
            "key_oncall",
            "endpoint fixed",
            T0 + DAY,
            job.id,
        )

        rest = await store.advance_replay_job(job.id, limit=10, now=T0 + DAY + SECOND)
        assert rest.job is not None
        assert (rest.processed, rest.job.done, rest.job.total, rest.job.status) == (
            3,
            5,
            5,
            ReplayJobStatus.SUCCEEDED,
        )
        assert rest.job.finished_at == T0 + DAY + SECOND
        after = await store.advance_replay_job(job.id, limit=10, now=T0 + 2 * DAY)
        assert (after.processed, after.job) == (0, rest.job)
        missing = await store.advance_replay_job("rpl_unknown", limit=10, now=T0)
        assert (missing.processed, missing.job) == (0, None)
        assert await store.active_replay_jobs() == []

    async def test_a_replay_job_resumes_on_another_store_instance(
        self, store_factory: StoreFactory, store: Store, clock: FakeClock
    ) -> None:
        """A job half done by one process is found active and finished by the next."""
        await failed_deliveries(store, clock, 4)
        job, _ = await new_job(store, ReplayFilter(endpoint_id="ep_1", since=T0))
        await store.advance_replay_job(job.id, limit=3, now=T0 + DAY)

        async with store_factory() as restarted:
            [active] = await restarted.active_replay_jobs()
            step = await restarted.advance_replay_job(active.id, limit=10, now=T0 + DAY)

        assert (active.id, active.done, active.status) == (job.id, 3, ReplayJobStatus.RUNNING)
        assert step.job is not None
        assert (step.processed, step.job.done, step.job.status) == (
            1,
            4,
            ReplayJobStatus.SUCCEEDED,
        )

    # -- reads for the API ------------------------------------------------------------

    async def test_list_deliveries_filters_and_pages_newest_first(
        self, store: Store, clock: FakeClock
    ) -> None:
        """An endpoint's deliveries page newest first, filtered by statuses, type and time."""
        await add_endpoints(store, "ep_1", "ep_2")
        for i, event_type in enumerate(["a.one", "b.two", "a.one", "b.two"]):
            clock.now = T0 + i * HOUR
            await store.ingest(
                IngestBatch(
                    events=[event(f"evt_{i}", event_type=event_type)],
                    deliveries=[
                        delivery(f"dlv_{i}", f"evt_{i}", "ep_1"),
                        delivery(f"dlv_x{i}", f"evt_{i}", "ep_2"),
                    ],
                )
            )
        await claim(store, T0 + 4 * HOUR)
        await complete(store, [failure("dlv_1", "ep_1", T0), failure("dlv_2", "ep_1", T0)])

        async def ids(**filters: Any) -> list[str]:
            return [d.id for d in await store.list_deliveries("ep_1", **filters)]

        assert await ids() == ["dlv_3", "dlv_2", "dlv_1", "dlv_0"]
        assert await ids(limit=2) == ["dlv_3", "dlv_2"]
        assert await ids(after="dlv_2") == ["dlv_1", "dlv_0"]
        assert await ids(statuses=[DeliveryStatus.FAILED]) == ["dlv_2", "dlv_1"]
        assert await ids(statuses=[DeliveryStatus.FAILED, DeliveryStatus.PENDING]) == [
            "dlv_3",
            "dlv_2",
            "dlv_1",
            "dlv_0",
        ]
        assert await ids(event_type="a.one") == ["dlv_2", "dlv_0"]
        assert await ids(since=T0 + HOUR, until=T0 + 3 * HOUR) == ["dlv_2", "dlv_1"]
        assert await ids(statuses=[DeliveryStatus.FAILED], event_type="b.two") == ["dlv_1"]

    async def test_count_deliveries_matches_a_bulk_replay_filter(
        self, store: Store, clock: FakeClock
    ) -> None:
        """count_deliveries counts by statuses, types and a time window."""
        await add_endpoints(store, "ep_1")
        for i, event_type in enumerate(["a.one", "b.two", "a.one", "c.three"]):
            clock.now = T0 + i * HOUR
            await store.ingest(
                IngestBatch(
                    events=[event(f"evt_{i}", event_type=event_type)],
                    deliveries=[delivery(f"dlv_{i}", f"evt_{i}", "ep_1")],
                )
            )
        await claim(store, T0 + DAY)
        await complete(
            store,
            [failure("dlv_0", "ep_1", T0), failure("dlv_1", "ep_1", T0), result("dlv_2", "ep_1")],
        )

        assert await store.count_deliveries("ep_1") == 4
        assert await store.count_deliveries("ep_2") == 0
        assert await store.count_deliveries("ep_1", statuses=[DeliveryStatus.FAILED]) == 2
        assert (
            await store.count_deliveries(
                "ep_1", statuses=[DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED]
            )
            == 3
        )
        assert await store.count_deliveries("ep_1", types=["a.one", "c.three"]) == 3
        assert await store.count_deliveries("ep_1", since=T0 + HOUR, until=T0 + 3 * HOUR) == 2
        assert (
            await store.count_deliveries(
                "ep_1", statuses=[DeliveryStatus.FAILED], types=["a.one"], since=T0, until=T0 + HOUR
            )
            == 1
        )

    async def test_get_event_and_its_deliveries(self, store: Store) -> None:
        """An event reads back with its body, and its deliveries list by id."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.ingest(
            IngestBatch(
                events=[event("evt_1")],
                deliveries=[delivery("dlv_b", "evt_1", "ep_1"), delivery("dlv_a", "evt_1", "ep_2")],
            )
        )

        assert [(d.id, d.endpoint_id) for d in await store.list_event_deliveries("evt_1")] == [
            ("dlv_a", "ep_2"),
            ("dlv_b", "ep_1"),
        ]
        assert await store.get_event("evt_unknown") is None
        assert await store.list_event_deliveries("evt_unknown") == []

    # -- retention --------------------------------------------------------------------

    async def test_replicas_count_those_seen_within_the_ttl(self, store: Store) -> None:
        """Each heartbeat counts the replicas alive; a silent one drops out after the ttl,
        one that leaves drops out at once."""
        assert await store.heartbeat("r1", now=T0, ttl=15) == 1
        assert await store.heartbeat("r2", now=T0 + SECOND, ttl=15) == 2
        assert await store.heartbeat("r3", now=T0 + 2 * SECOND, ttl=15) == 3
        assert await store.heartbeat("r1", now=T0 + 10 * SECOND, ttl=15) == 3
        # r2 and r3 fell silent: 20 s after their last beat they no longer count
        assert await store.heartbeat("r1", now=T0 + 20 * SECOND, ttl=15) == 1
        assert await store.heartbeat("r2", now=T0 + 21 * SECOND, ttl=15) == 2
        await store.leave("r2")
        assert await store.heartbeat("r1", now=T0 + 22 * SECOND, ttl=15) == 1

    async def test_a_v1a_endpoint_keeps_its_scheme_and_public_key_through_a_rotation(
        self, store: Store
    ) -> None:
        """The scheme and the public key are stored with the endpoint; the sealed private key
        signs; a rotation adds the new private key and makes the new public key current."""
        v1a = replace(
            endpoint("ep_1", ORG), signature_scheme=SignatureScheme.V1A, public_key="whpk_old"
        )
        await store.create_endpoint(v1a, "whsk_old", now=T0)
        await store.rotate_secret(
            "ep_1", "whsk_new", now=T0, old_expires_at=T0 + DAY, public_key="whpk_new"
        )
        stored = await store.get_endpoint("ep_1")
        assert stored is not None
        assert (stored.signature_scheme, stored.public_key) == (SignatureScheme.V1A, "whpk_new")
        secrets = await store.signing_secrets(["ep_1"], now=T0)
        assert secrets == {"ep_1": ("whsk_new", "whsk_old")}
        await add_endpoints(store, "ep_2")
        plain = await store.get_endpoint("ep_2")
        assert plain is not None
        assert (plain.signature_scheme, plain.public_key) == (SignatureScheme.V1, None)

    async def test_reencrypting_lets_the_old_encryption_key_be_dropped(
        self, store: Store, store_factory: StoreFactory, box: SecretBox
    ) -> None:
        """Rotation of WEBHOOKS_ENCRYPTION_KEY: with "new,old" configured, re-encryption
        seals every secret (current and grace-period ones) with the new key, once, in
        batches; then a store with the new key alone reads them all, the old key alone none."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.rotate_secret(
            "ep_1", "whsec_" + "B" * 43 + "=", now=T0, old_expires_at=T0 + DAY
        )
        before = await store.signing_secrets(["ep_1", "ep_2"], now=T0)
        new = SecretBox([bytes(range(100, 132))])
        both = SecretBox([bytes(range(100, 132)), bytes(range(32))])
        async with store_factory(both) as rotating:
            # batch by batch, each committed: an interrupted run resumes where it stopped
            assert await rotating.reencrypt_secrets(limit=2) == (2, 1)
            assert await rotating.reencrypt_secrets(limit=2) == (1, 0)
            assert await rotating.reencrypt_secrets(limit=2) == (0, 0)
        async with store_factory(new) as rotated:
            assert await rotated.signing_secrets(["ep_1", "ep_2"], now=T0) == before
        async with store_factory(box) as stale:
            with pytest.raises(DecryptionError, match="not among the configured keys"):
                await stale.signing_secrets(["ep_1"], now=T0)

    async def test_purge_deletes_old_events_with_their_deliveries(
        self, store: Store, clock: FakeClock
    ) -> None:
        """purge removes events received before the cutoff, with deliveries and attempts."""
        await add_endpoints(store, "ep_1")
        await store.ingest(
            IngestBatch(
                events=[event("evt_old")], deliveries=[delivery("dlv_old", "evt_old", "ep_1")]
            )
        )
        await claim(store)
        await complete(store, [result("dlv_old", "ep_1")])
        clock.now = T0 + 2 * DAY
        await store.ingest(
            IngestBatch(
                events=[event("evt_new")], deliveries=[delivery("dlv_new", "evt_new", "ep_1")]
            )
        )

        assert await store.purge(before=T0 + DAY) == Purged(events=1)

        assert await store.get_event("evt_old") is None
        assert await store.get_delivery("dlv_old") is None
        assert await store.list_attempts("dlv_old") == []
        assert await store.get_event("evt_new") is not None
        assert await store.get_delivery("dlv_new") is not None
        assert await store.purge(before=T0 + DAY) == Purged()

    async def test_purge_keeps_an_old_event_while_a_delivery_of_it_is_pending(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A 29-day-old delivery replayed just before the cutoff finishes its ladder: its
        event stays while the delivery is pending and goes at the first purge after."""
        await add_endpoints(store, "ep_1", "ep_2")
        await store.ingest(
            IngestBatch(
                events=[event("evt_old")],
                deliveries=[
                    delivery("dlv_1", "evt_old", "ep_1"),
                    delivery("dlv_2", "evt_old", "ep_2"),
                ],
            )
        )
        await claim(store)
        await complete(store, [result("dlv_2", "ep_2")])  # dlv_1 stays pending

        assert await store.purge(before=T0 + DAY) == Purged()
        assert await store.get_event("evt_old") is not None
        assert await store.get_delivery("dlv_2") is not None

        await complete(store, [result("dlv_1", "ep_1")])
        assert await store.purge(before=T0 + DAY) == Purged(events=1)
        assert await store.get_delivery("dlv_1") is None

    async def test_purge_deletes_old_dead_letters_and_finished_replay_jobs(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Dead letters and finished replay jobs are kept for WEBHOOKS_RETENTION too, then
        go; newer ones and active jobs stay."""
        await store.ingest(IngestBatch(dead_letters=[dead_letter("dl_old", offset=1)]))
        clock.now = T0 + 2 * DAY
        newer = replace(dead_letter("dl_new", offset=2), received_at=T0 + 2 * DAY)
        await store.ingest(IngestBatch(dead_letters=[newer]))
        await add_endpoints(store, "ep_1")
        clock.now = T0
        done, _ = await new_job(store, ReplayFilter(endpoint_id="ep_1", since=T0))
        assert done.finished_at == T0  # matched nothing: finished at once

        assert await store.purge(before=T0 + DAY) == Purged(dead_letters=1, replay_jobs=1)

        assert await store.get_dead_letter("dl_old") is None
        assert await store.get_dead_letter("dl_new") is not None
        assert await store.get_replay_job(done.id) is None
        assert await store.purge(before=T0 + DAY) == Purged()

    async def test_purge_works_through_more_than_one_chunk(self, store: Store) -> None:
        """A purge larger than one chunk still deletes every old event."""
        events = [event(f"evt_{i:05d}") for i in range(2_345)]
        await store.ingest(IngestBatch(events=events))

        assert await store.purge(before=T0 + SECOND) == Purged(events=2_345)
        assert await store.get_event("evt_00000") is None
