"""The Store contract for endpoint health (dispatcher.core.health), mixed into each backend's
test class beside `StoreContract`: rollups added by `complete` (across two replicas), their
windows at the fake clock's edges, percentiles from the latency bins, runs of failures, the
reported breaker, failing endpoints, chart buckets, purge, and organizations by page."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta

from dispatcher.core.breaker import BreakerState
from dispatcher.core.health import (
    LATENCY_BINS,
    BreakerTransition,
    EndpointHealth,
    latency_bin,
    percentile,
)
from dispatcher.core.models import (
    AttemptOutcome,
    AttemptResult,
    DeliveryStatus,
    DisabledReason,
    EndpointStatus,
    Lease,
    Organization,
)
from dispatcher.store import IngestBatch, Store
from tests.dispatcher.store.contract import (
    DAY,
    HOUR,
    SECOND,
    T0,
    FakeClock,
    StoreFactory,
    add_endpoints,
    complete,
    delivery,
    event,
    failure,
    result,
)

MINUTE = timedelta(minutes=1)
_ids = itertools.count()


async def attempted(
    store: Store,
    endpoint_id: str,
    started: list[datetime],
    *,
    ok: bool | list[bool] = True,
    owner: str = "w1",
    duration_ms: float = 12.5,
    retry: bool = False,
) -> list[str]:
    """Deliveries of `endpoint_id` leased to `owner`, each attempted once at a `started`
    time (succeeding where `ok` says so, else failing: retried or final), recorded in one
    `complete`."""
    oks = ok if isinstance(ok, list) else [ok] * len(started)
    ids = [f"h{next(_ids)}" for _ in started]
    await store.ingest(
        IngestBatch(
            events=[event(f"evt_{i}") for i in ids],
            deliveries=[
                delivery(
                    f"dlv_{i}",
                    f"evt_{i}",
                    endpoint_id,
                    lease_owner=owner,
                    lease_expires_at=T0 + DAY,
                )
                for i in ids
            ],
        )
    )
    made = [
        result(f"dlv_{i}", endpoint_id, started_at=at)
        if success
        else failure(f"dlv_{i}", endpoint_id, at, next_attempt_at=at + HOUR if retry else None)
        for i, at, success in zip(ids, started, oks, strict=True)
    ]
    timed = [
        replace(r, outcome=replace(r.outcome, duration_ms=duration_ms), lease=Lease(owner, 1))
        for r in made
    ]
    await complete(store, timed)
    return [f"dlv_{i}" for i in ids]


def window(h: EndpointHealth) -> tuple[int, int, int, int]:
    return (h.succeeded_1h, h.failed_1h, h.succeeded_24h, h.failed_24h)


class HealthContract:
    """Health behaviour every Store backend must show."""

    async def test_rollups_add_up_across_two_replicas(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        """Two replicas recording attempts of one endpoint in the same bucket both count: the
        read sums their rows."""
        await add_endpoints(store, "ep_1")
        async with store_factory() as other:
            await attempted(store, "ep_1", [T0 - MINUTE] * 3, owner="w1")
            await attempted(other, "ep_1", [T0 - MINUTE] * 2, ok=False, owner="w2")
            await attempted(other, "ep_1", [T0 - 2 * MINUTE], owner="w2")
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert window(health) == (4, 2, 4, 2)
        assert sum(health.latency_1h) == 6

    async def test_windows_end_at_bucket_edges(self, store: Store) -> None:
        """The hour window starts with the bucket an hour before the current one's start and
        the day window a day before it; older attempts count in neither."""
        await add_endpoints(store, "ep_1")
        now = T0 + 2 * MINUTE  # in the bucket starting at T0
        await attempted(store, "ep_1", [T0 - HOUR, T0 - HOUR + MINUTE])  # first hour bucket
        await attempted(store, "ep_1", [T0 - HOUR - SECOND], ok=False)  # day only
        await attempted(store, "ep_1", [T0 - DAY])  # first day bucket
        await attempted(store, "ep_1", [T0 - DAY - SECOND], ok=False)  # neither
        health = (await store.endpoint_health(["ep_1"], now=now))["ep_1"]
        assert window(health) == (2, 0, 3, 1)

    async def test_the_day_window_is_whole_hours(self, store: Store) -> None:
        """The day sums come from hourly buckets: from the hour holding the moment a day
        before the current five-minute bucket, so 24 to 25 hours."""
        await add_endpoints(store, "ep_1")
        now = T0 + 7 * MINUTE  # current bucket T0 + 5 min; the day starts at T0 - DAY
        await attempted(store, "ep_1", [T0 - DAY, T0 - DAY + 4 * MINUTE, T0 + 6 * MINUTE])
        await attempted(store, "ep_1", [T0 - DAY - SECOND], ok=False)
        health = (await store.endpoint_health(["ep_1"], now=now))["ep_1"]
        assert (health.succeeded_24h, health.failed_24h) == (3, 0)
        assert (health.succeeded_1h, health.failed_1h) == (1, 0)

    async def test_percentiles_come_from_the_latency_bins(self, store: Store) -> None:
        """Durations are counted in their log-spaced bins; p50 and p99 fall in the bins of the
        50th and 99th attempts."""
        await add_endpoints(store, "ep_1")
        await attempted(store, "ep_1", [T0] * 90, duration_ms=10.0)
        await attempted(store, "ep_1", [T0] * 10, duration_ms=1000.0)
        bins = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"].latency_1h
        expected = [0] * LATENCY_BINS
        expected[latency_bin(10.0)] = 90
        expected[latency_bin(1000.0)] = 10
        assert list(bins) == expected
        # p50: the 50th of 90 in [8, 16) ms; p99: the 9th of 10 in [512, 1024) ms.
        assert (percentile(bins, 0.5), percentile(bins, 0.99)) == (12, 955)

    async def test_a_run_of_failures_counts_from_the_latest_success(self, store: Store) -> None:
        """Failures add to the run and set the last failure; a success restarts the run at the
        failures after it, even within one batch; a failure recorded later than a success in a
        later batch keeps the run going."""
        await add_endpoints(store, "ep_1")
        await attempted(store, "ep_1", [T0, T0 + SECOND], ok=False, retry=True)
        await attempted(store, "ep_1", [T0 + 2 * SECOND], ok=False)
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert (health.consecutive_failures, health.last_failure_at) == (3, T0 + 2 * SECOND)
        # One batch: a success at +3 s, a failure at +4 s.
        await attempted(store, "ep_1", [T0 + 3 * SECOND, T0 + 4 * SECOND], ok=[True, False])
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert health.consecutive_failures == 1
        # A success older than the recorded failure (a slow attempt) does not end the run.
        await attempted(store, "ep_1", [T0 + 3 * SECOND + SECOND / 2])
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert health.consecutive_failures == 1
        await attempted(store, "ep_1", [T0 + 5 * SECOND])
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert (health.consecutive_failures, health.last_success_at) == (0, T0 + 5 * SECOND)

    async def test_the_latest_breaker_transition_wins(self, store: Store) -> None:
        """A reported transition shows with its probe time; an older one arriving late
        changes nothing; a success recorded after the transition reports the breaker closed."""
        await add_endpoints(store, "ep_1")
        opened = BreakerTransition(
            endpoint_id="ep_1", state=BreakerState.OPEN, at=T0, probe_at=T0 + 30 * SECOND
        )
        assert await store.record_breakers([opened]) == 1
        late = BreakerTransition(
            endpoint_id="ep_1", state=BreakerState.CLOSED, at=T0 - SECOND, probe_at=None
        )
        assert await store.record_breakers([late]) == 0
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert (health.breaker, health.next_probe_at) == (BreakerState.OPEN, T0 + 30 * SECOND)
        await attempted(store, "ep_1", [T0 - MINUTE])  # started before it opened
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert health.breaker is BreakerState.OPEN
        await attempted(store, "ep_1", [T0 + MINUTE])
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert (health.breaker, health.next_probe_at) == (BreakerState.CLOSED, None)

    async def test_pending_and_failed_deliveries_are_counted(self, store: Store) -> None:
        """`pending` and `failed` count the endpoint's deliveries in those states."""
        await add_endpoints(store, "ep_1", "ep_2")
        await attempted(store, "ep_1", [T0] * 2, ok=False, retry=True)
        await attempted(store, "ep_1", [T0] * 3, ok=False)
        await attempted(store, "ep_1", [T0])
        await attempted(store, "ep_2", [T0] * 4, ok=False)
        found = await store.endpoint_health(["ep_1", "ep_2", "ep_gone"], now=T0)
        assert sorted(found) == ["ep_1", "ep_2"]
        assert (found["ep_1"].pending, found["ep_1"].failed) == (2, 3)
        assert (found["ep_2"].pending, found["ep_2"].failed) == (0, 4)

    async def test_an_endpoint_without_attempts_reads_empty(self, store: Store) -> None:
        """A fresh endpoint has no rates' inputs, no run and a closed breaker."""
        await add_endpoints(store, "ep_1")
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert window(health) == (0, 0, 0, 0)
        assert (health.consecutive_failures, health.breaker, health.last_success_at) == (
            0,
            BreakerState.CLOSED,
            None,
        )

    async def test_failing_endpoints_most_recent_failure_first(self, store: Store) -> None:
        """Failing endpoints (a run of failures, an open breaker, disabled for failing) of one
        organization or of all, most recent failure first, by pages; a healthy endpoint and one
        disabled by hand are not failing."""
        await add_endpoints(store, "ep_a1", "ep_a2", "ep_a3", "ep_a4", "ep_ok")
        await add_endpoints(store, "ep_b1", org="org_other")
        await attempted(store, "ep_a1", [T0], ok=False)
        await attempted(store, "ep_b1", [T0 + MINUTE], ok=False)
        await attempted(store, "ep_a2", [T0 - MINUTE], ok=False)
        await attempted(store, "ep_ok", [T0])
        opened = BreakerTransition(
            endpoint_id="ep_a3", state=BreakerState.OPEN, at=T0, probe_at=T0 + MINUTE
        )
        await store.record_breakers([opened])
        await store.set_endpoint_status(
            "ep_a4", EndpointStatus.DISABLED, DisabledReason.MANUAL, now=T0
        )
        await store.set_endpoint_status(
            "ep_ok", EndpointStatus.DISABLED, DisabledReason.MANUAL, now=T0
        )
        everywhere = [e.id for e in await store.failing_endpoints(None)]
        assert everywhere == ["ep_b1", "ep_a1", "ep_a2", "ep_a3"]
        ours = [e.id for e in await store.failing_endpoints("org_acme")]
        assert ours == ["ep_a1", "ep_a2", "ep_a3"]
        first = await store.failing_endpoints(None, limit=2)
        rest = await store.failing_endpoints(None, after=first[-1].id, limit=10)
        assert [e.id for e in first + rest] == everywhere
        await store.set_endpoint_status("ep_a4", EndpointStatus.ENABLED, None, now=T0)
        await store.set_endpoint_status(
            "ep_a4", EndpointStatus.DISABLED, DisabledReason.FAILING, now=T0
        )
        assert "ep_a4" in [e.id for e in await store.failing_endpoints("org_acme")]

    async def test_stats_sum_writers_per_bucket_within_the_range(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        """Chart buckets start within [since, until), each summing every replica's row."""
        await add_endpoints(store, "ep_1")
        async with store_factory() as other:
            await attempted(store, "ep_1", [T0, T0 + MINUTE], owner="w1")
            await attempted(other, "ep_1", [T0 + 2 * MINUTE], ok=False, owner="w2")
            await attempted(other, "ep_1", [T0 + 5 * MINUTE], owner="w2")
            await attempted(other, "ep_1", [T0 + 10 * MINUTE], owner="w2")
        rows = await store.endpoint_stats("ep_1", since=T0, until=T0 + 10 * MINUTE)
        assert [(r.start, r.succeeded, r.failed) for r in rows] == [
            (T0, 2, 1),
            (T0 + 5 * MINUTE, 1, 0),
        ]
        assert sum(rows[0].latency) == 3

    async def test_purge_health_drops_old_buckets_only(self, store: Store) -> None:
        """Buckets starting before the cutoff go; later ones stay."""
        await add_endpoints(store, "ep_1")
        await attempted(store, "ep_1", [T0 - 3 * DAY, T0 - 2 * DAY, T0])
        assert await store.purge_health(before=T0 - 2 * DAY) == 1  # five-minute buckets
        rows = await store.endpoint_stats("ep_1", since=T0 - 4 * DAY, until=T0 + DAY)
        assert [r.start for r in rows] == [T0 - 2 * DAY, T0]

    async def test_deleting_an_endpoint_deletes_its_buckets(self, store: Store) -> None:
        """An endpoint deleted and registered again under its id starts with no history."""
        await add_endpoints(store, "ep_1")
        await attempted(store, "ep_1", [T0])
        await store.delete_endpoint("ep_1")
        await add_endpoints(store, "ep_1")
        assert await store.endpoint_stats("ep_1", since=T0 - DAY, until=T0 + DAY) == []
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert window(health) == (0, 0, 0, 0)

    async def test_organizations_come_by_pages(self, store: Store, clock: FakeClock) -> None:
        """`list_organizations` pages by id after a cursor; without a limit it lists all."""
        for org_id in ("org_c", "org_a", "org_b"):
            await store.put_organization(Organization(id=org_id))
        page = await store.list_organizations(limit=2)
        assert [o.id for o in page] == ["org_a", "org_b"]
        assert [o.id for o in await store.list_organizations(after="org_b", limit=2)] == ["org_c"]
        assert len(await store.list_organizations()) == 3

    async def test_a_stale_result_still_counts_in_the_rollup(self, store: Store) -> None:
        """An attempt whose lease was taken over is not stored, but it happened: its outcome
        counts in the buckets, as it does in the endpoint's clocks."""
        await add_endpoints(store, "ep_1")
        await store.ingest(
            IngestBatch(
                events=[event("evt_s")],
                deliveries=[
                    delivery("dlv_s", "evt_s", "ep_1", lease_owner="w1", lease_expires_at=T0)
                ],
            )
        )
        outcome = AttemptOutcome(status_code=200, failure=None, duration_ms=5.0)
        stale = AttemptResult(
            delivery_id="dlv_s",
            endpoint_id="ep_1",
            attempt=1,
            started_at=T0,
            outcome=outcome,
            status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            lease=Lease("w1", 99),
        )
        assert await store.complete([stale]) == frozenset({"dlv_s"})
        health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
        assert window(health) == (1, 0, 1, 0)
