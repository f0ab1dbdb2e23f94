"""The recorder: attempt results, hand-backs and suppressions written in batches, over a real
SQLite store (an outage is the real store refusing the first calls of one method)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.core.breaker import Breaker, BreakerState
from dispatcher.core.models import DeliveryStatus, Lease, WaitingReason
from dispatcher.engine import recorder as recorder_module
from dispatcher.engine.recorder import Recorder
from dispatcher.metrics import Metrics
from dispatcher.store import DeliveryRecord, Store
from tests.dispatcher.engine.support import (
    LEASE,
    OWNER,
    SECOND,
    T0,
    WAIT,
    Outage,
    attempt,
    eventually,
    leased_deliveries,
    retry_at,
    sample,
)

STORE_ERRORS = "webhooks_store_errors_total"
STALE = "webhooks_stale_results_total"
RECORD = {"operation": "record"}


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_module, "RETRY_PAUSE", 0)


async def delivery(store: Store, delivery_id: str) -> DeliveryRecord:
    found = await store.get_delivery(delivery_id)
    assert found is not None
    return found


async def state(
    store: Store, delivery_id: str
) -> tuple[DeliveryStatus, int, datetime | None, WaitingReason | None, str | None]:
    """(status, attempts, next attempt, waiting reason, lease owner) as stored."""
    d = await delivery(store, delivery_id)
    return (d.status, d.attempts, d.next_attempt_at, d.waiting_reason, d.lease_owner)


UNTOUCHED = (DeliveryStatus.PENDING, 0, T0, None, OWNER)


async def test_flush_writes_results_releases_and_suppressions(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """One flush records every buffered kind; the leases go; the buffer is then empty."""
    ok, retried, released, suppressed = await leased_deliveries(store, 4)
    spy = Outage(store)
    recorder = Recorder(spy, metrics)
    recorder.result(attempt(ok))
    recorder.result(retry_at(retried, T0 + 60 * SECOND))
    recorder.release([(released, LEASE)], T0 + 120 * SECOND, WaitingReason.BREAKER_OPEN)
    recorder.suppress(suppressed, LEASE, "endpoint_disabled")

    assert await recorder.flush() is True

    assert await state(store, ok) == (DeliveryStatus.SUCCEEDED, 1, None, None, None)
    assert await state(store, retried) == (
        DeliveryStatus.PENDING,
        1,
        T0 + 60 * SECOND,
        WaitingReason.RETRY_SCHEDULED,
        None,
    )
    assert await state(store, released) == (
        DeliveryStatus.PENDING,
        0,
        T0 + 120 * SECOND,
        WaitingReason.BREAKER_OPEN,
        None,
    )
    assert await state(store, suppressed) == (DeliveryStatus.SUPPRESSED, 0, None, None, None)
    assert (await delivery(store, suppressed)).reason == "endpoint_disabled"
    assert [len(await store.list_attempts(d)) for d in (ok, retried, released, suppressed)] == [
        1,
        1,
        0,
        0,
    ]
    assert sorted(spy.calls) == ["complete", "release", "suppress"]
    assert sample(registry, STORE_ERRORS, RECORD) == 0

    spy.calls.clear()
    assert await recorder.flush() is True  # nothing left: nothing written twice
    assert spy.calls == []


async def test_releases_are_grouped_by_due_time_and_reason(store: Store, metrics: Metrics) -> None:
    """One store call per distinct (due, reason); each delivery gets its own group's values."""
    d = await leased_deliveries(store, 5)
    soon, later = T0 + 5 * SECOND, T0 + 90 * SECOND
    spy = Outage(store)
    recorder = Recorder(spy, metrics)
    recorder.release([(d[0], LEASE), (d[1], LEASE)], soon, WaitingReason.RATE_LIMITED)
    recorder.release([(d[2], LEASE)], soon, WaitingReason.BREAKER_OPEN)  # same time, other reason
    recorder.release([(d[3], LEASE)], later, WaitingReason.RATE_LIMITED)  # same reason, other time
    recorder.release([(d[4], LEASE)], soon, WaitingReason.RATE_LIMITED)  # joins the first group

    assert await recorder.flush() is True

    assert spy.calls.count("release") == 3
    expected = [
        (soon, WaitingReason.RATE_LIMITED),
        (soon, WaitingReason.RATE_LIMITED),
        (soon, WaitingReason.BREAKER_OPEN),
        (later, WaitingReason.RATE_LIMITED),
        (soon, WaitingReason.RATE_LIMITED),
    ]
    stored = [await delivery(store, i) for i in d]
    assert [(r.next_attempt_at, r.waiting_reason) for r in stored] == expected
    assert {(r.status, r.attempts, r.lease_owner) for r in stored} == {
        (DeliveryStatus.PENDING, 0, None)
    }


async def test_the_last_release_of_a_delivery_before_a_flush_wins(
    store: Store, metrics: Metrics
) -> None:
    """Releasing a delivery twice keeps only the later due time and reason."""
    [d] = await leased_deliveries(store, 1)
    spy = Outage(store)
    recorder = Recorder(spy, metrics)
    recorder.release([(d, LEASE)], T0 + 5 * SECOND, WaitingReason.RATE_LIMITED)
    recorder.release([(d, LEASE)], T0 + 9 * SECOND, WaitingReason.SHUTDOWN)

    assert await recorder.flush() is True

    assert spy.calls.count("release") == 1
    assert await state(store, d) == (
        DeliveryStatus.PENDING,
        0,
        T0 + 9 * SECOND,
        WaitingReason.SHUTDOWN,
        None,
    )


async def test_suppressions_are_grouped_by_reason(store: Store, metrics: Metrics) -> None:
    """One store call per distinct reason, each delivery keeping its own reason."""
    d = await leased_deliveries(store, 3)
    spy = Outage(store)
    recorder = Recorder(spy, metrics)
    recorder.suppress(d[0], LEASE, "endpoint_disabled")
    recorder.suppress(d[1], LEASE, "org_suspended")
    recorder.suppress(d[2], LEASE, "endpoint_disabled")

    assert await recorder.flush() is True

    assert spy.calls.count("suppress") == 2
    stored = [await delivery(store, i) for i in d]
    assert [(r.status, r.reason) for r in stored] == [
        (DeliveryStatus.SUPPRESSED, "endpoint_disabled"),
        (DeliveryStatus.SUPPRESSED, "org_suspended"),
        (DeliveryStatus.SUPPRESSED, "endpoint_disabled"),
    ]


async def test_a_flush_during_an_outage_keeps_everything_and_a_later_one_writes_it_once(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The failed flush writes nothing and counts one record error; the next writes all of it,
    each attempt exactly once, and counts nothing more."""
    ok, released, suppressed = await leased_deliveries(store, 3)
    outage = Outage(store, "complete", failures=1)
    recorder = Recorder(outage, metrics)
    recorder.result(attempt(ok))
    recorder.release([(released, LEASE)], T0 + 7 * SECOND, WaitingReason.ENDPOINT_BUSY)
    recorder.suppress(suppressed, LEASE, "org_archived")

    assert await recorder.flush() is False

    assert sample(registry, STORE_ERRORS, RECORD) == 1
    assert sample(registry, STORE_ERRORS, {"operation": "ingest"}) == 0
    for delivery_id in (ok, released, suppressed):
        assert await state(store, delivery_id) == UNTOUCHED
    assert await store.list_attempts(ok) == []

    assert await recorder.flush() is True

    assert await state(store, ok) == (DeliveryStatus.SUCCEEDED, 1, None, None, None)
    assert len(await store.list_attempts(ok)) == 1
    assert await state(store, released) == (
        DeliveryStatus.PENDING,
        0,
        T0 + 7 * SECOND,
        WaitingReason.ENDPOINT_BUSY,
        None,
    )
    assert (await delivery(store, suppressed)).status is DeliveryStatus.SUPPRESSED
    assert sample(registry, STORE_ERRORS, RECORD) == 1
    assert outage.calls.count("complete") == 2  # the refused call and the one that wrote


async def test_what_a_failed_flush_already_wrote_is_not_written_again(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Results are stored before the release fails: the retry writes the rest, not them."""
    ok, released, suppressed = await leased_deliveries(store, 3)
    outage = Outage(store, "release", failures=1)
    recorder = Recorder(outage, metrics)
    recorder.result(attempt(ok))
    recorder.release([(released, LEASE)], T0 + 3 * SECOND, WaitingReason.SHUTDOWN)
    recorder.suppress(suppressed, LEASE, "endpoint_disabled")

    assert await recorder.flush() is False
    assert (await delivery(store, ok)).status is DeliveryStatus.SUCCEEDED
    assert await state(store, released) == UNTOUCHED
    assert await state(store, suppressed) == UNTOUCHED  # never reached

    assert await recorder.flush() is True

    assert outage.calls.count("complete") == 1
    assert len(await store.list_attempts(ok)) == 1
    assert (await delivery(store, released)).waiting_reason is WaitingReason.SHUTDOWN
    assert (await delivery(store, suppressed)).status is DeliveryStatus.SUPPRESSED
    assert sample(registry, STORE_ERRORS, RECORD) == 1


async def test_what_arrives_during_a_failed_flush_is_kept_after_what_was_buffered_first(
    store: Store, metrics: Metrics
) -> None:
    """Results recorded while a flush fails are written after the ones it kept, in one
    batch; a release arriving meanwhile for the same delivery supersedes the older one."""
    d = await leased_deliveries(store, 4)
    recorder: Recorder

    async def meanwhile() -> None:
        recorder.result(attempt(d[2]))
        recorder.result(retry_at(d[1], T0 + 30 * SECOND))
        recorder.release([(d[3], LEASE)], T0 + 9 * SECOND, WaitingReason.SHUTDOWN)

    outage = Outage(store, "complete", failures=1, during=meanwhile)
    recorder = Recorder(outage, metrics)
    recorder.result(attempt(d[0]))
    recorder.release([(d[3], LEASE)], T0 + 5 * SECOND, WaitingReason.BREAKER_OPEN)

    assert await recorder.flush() is False
    assert await recorder.flush() is True

    completes = [args for name, args, _ in outage.arguments if name == "complete"]
    assert [[r.delivery_id for r in results] for (results,) in completes] == [
        [d[0]],  # the refused call
        [d[0], d[2], d[1]],  # kept first, then what arrived, in arrival order
    ]
    assert await state(store, d[0]) == (DeliveryStatus.SUCCEEDED, 1, None, None, None)
    assert await state(store, d[1]) == (
        DeliveryStatus.PENDING,
        1,
        T0 + 30 * SECOND,
        WaitingReason.RETRY_SCHEDULED,
        None,
    )
    assert await state(store, d[2]) == (DeliveryStatus.SUCCEEDED, 1, None, None, None)
    assert await state(store, d[3]) == (
        DeliveryStatus.PENDING,
        0,
        T0 + 9 * SECOND,
        WaitingReason.SHUTDOWN,
        None,
    )
    assert outage.calls.count("release") == 1


async def test_writes_under_a_lease_taken_over_are_dropped_and_counted(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """A result, hand-back or suppression under a lease the delivery no longer carries
    changes nothing and is counted stale by operation; the writes under the current lease
    in the same flush are applied and not counted."""
    d = await leased_deliveries(store, 6)
    taken_over = Lease("replica-2", LEASE.epoch)  # not whom the rows are leased to
    older = Lease(OWNER, LEASE.epoch + 1)  # not the epoch the rows carry
    recorder = Recorder(store, metrics)
    recorder.result(attempt(d[0], lease=taken_over))
    recorder.result(attempt(d[1]))
    recorder.release([(d[2], older), (d[3], LEASE)], T0 + 5 * SECOND, WaitingReason.SHUTDOWN)
    recorder.suppress(d[4], taken_over, "endpoint_disabled")
    recorder.suppress(d[5], LEASE, "endpoint_disabled")

    assert await recorder.flush() is True

    assert await state(store, d[0]) == UNTOUCHED
    assert await store.list_attempts(d[0]) == []
    assert (await delivery(store, d[1])).status is DeliveryStatus.SUCCEEDED
    assert await state(store, d[2]) == UNTOUCHED
    assert (await delivery(store, d[3])).waiting_reason is WaitingReason.SHUTDOWN
    assert await state(store, d[4]) == UNTOUCHED
    assert (await delivery(store, d[5])).status is DeliveryStatus.SUPPRESSED
    for operation in ("complete", "release", "suppress"):
        assert sample(registry, STALE, {"operation": operation}) == 1
    assert sample(registry, STORE_ERRORS, RECORD) == 0

    assert await recorder.flush() is True  # dropped, not kept for another try
    assert sample(registry, STALE, {"operation": "complete"}) == 1


async def test_an_empty_flush_is_true_and_touches_no_store(
    store: Store, metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Nothing buffered: no store call at all, so even a store that is down is not hit."""
    outage = Outage(store, "complete", failures=1)
    recorder = Recorder(outage, metrics)

    assert await recorder.flush() is True

    assert outage.calls == []
    assert outage.failures == 1
    assert sample(registry, STORE_ERRORS, RECORD) == 0


async def test_a_final_flush_waits_for_the_flush_in_progress(
    store: Store, metrics: Metrics
) -> None:
    """A second flush started while one is writing waits for it, then writes what it kept
    (it never finds an empty buffer and returns while the data is still in flight)."""
    [d] = await leased_deliveries(store, 1)
    entered, gate = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        entered.set()
        await gate.wait()

    recorder = Recorder(Outage(store, "complete", failures=1, during=hold), metrics)
    recorder.result(attempt(d))
    first = asyncio.create_task(recorder.flush())
    await asyncio.wait_for(entered.wait(), WAIT)
    final = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0.02)
    assert not final.done()

    gate.set()

    assert await asyncio.wait_for(first, WAIT) is False
    assert await asyncio.wait_for(final, WAIT) is True
    assert (await delivery(store, d)).status is DeliveryStatus.SUCCEEDED


async def test_a_full_batch_wakes_run_at_once(
    store: Store, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the periodic flush an hour away, FLUSH_BATCH buffered writes (results and
    suppressions alike) still get flushed by run(); one fewer does not."""
    monkeypatch.setattr(recorder_module, "FLUSH_INTERVAL", 3600.0)
    monkeypatch.setattr(recorder_module, "FLUSH_BATCH", 4)
    d = await leased_deliveries(store, 4)
    spy = Outage(store)
    recorder = Recorder(spy, metrics)
    task = asyncio.create_task(recorder.run())
    try:
        recorder.result(attempt(d[0]))
        recorder.suppress(d[1], LEASE, "endpoint_disabled")
        recorder.result(attempt(d[2]))
        await asyncio.sleep(0.05)
        assert spy.calls == []  # three of four: run() still waits

        recorder.result(attempt(d[3]))

        async def all_written() -> bool:
            stored = [await delivery(store, i) for i in d]
            return [r.status for r in stored] == [
                DeliveryStatus.SUCCEEDED,
                DeliveryStatus.SUPPRESSED,
                DeliveryStatus.SUCCEEDED,
                DeliveryStatus.SUCCEEDED,
            ]

        assert await eventually(all_written)
        assert sorted(spy.calls) == ["complete", "suppress"]
    finally:
        task.cancel()


async def test_a_release_wakes_run_at_once(
    store: Store, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-back is flushed without waiting for the interval (or a full batch)."""
    monkeypatch.setattr(recorder_module, "FLUSH_INTERVAL", 3600.0)
    [d] = await leased_deliveries(store, 1)
    recorder = Recorder(store, metrics)
    task = asyncio.create_task(recorder.run())
    try:
        recorder.release([(d, LEASE)], T0 + 4 * SECOND, WaitingReason.RATE_LIMITED)

        async def released() -> bool:
            return (await delivery(store, d)).waiting_reason is WaitingReason.RATE_LIMITED

        assert await eventually(released)
    finally:
        task.cancel()


async def test_run_retries_a_failed_flush_until_it_is_written(
    store: Store, metrics: Metrics, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run() survives an outage: the kept buffer is written by a later round, once."""
    monkeypatch.setattr(recorder_module, "FLUSH_INTERVAL", 0.005)
    [d] = await leased_deliveries(store, 1)
    outage = Outage(store, "complete", failures=2)
    recorder = Recorder(outage, metrics)
    task = asyncio.create_task(recorder.run())
    try:
        recorder.result(attempt(d))

        async def written() -> bool:
            return (await delivery(store, d)).status is DeliveryStatus.SUCCEEDED

        assert await eventually(written)
        assert not task.done()
        assert len(await store.list_attempts(d)) == 1
        assert sample(registry, STORE_ERRORS, RECORD) == 2
    finally:
        task.cancel()


class _Broken:
    """The real store, except that the first `release` raises a bug (not an outage)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.broken = True

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if name != "release":
            return real

        async def release(*args: Any, **kwargs: Any) -> Any:
            if self.broken:
                self.broken = False
                raise RuntimeError("a bug in the store")
            return await real(*args, **kwargs)

        return release


async def test_a_flush_that_fails_for_a_bug_keeps_what_it_did_not_write(
    store: Store, metrics: Metrics
) -> None:
    """An error that is not an outage propagates, but the hand-back it did not write stays
    buffered: the next flush (the shutdown's final one, say) writes it; the result written
    before the error is not written twice."""
    ok, released, _ = await leased_deliveries(store, 3)
    broken = _Broken(store)
    recorder = Recorder(broken, metrics)
    recorder.result(attempt(ok))
    recorder.release([(released, LEASE)], T0 + 7 * SECOND, WaitingReason.SHUTDOWN)

    with pytest.raises(RuntimeError, match="a bug"):
        await recorder.flush()
    assert await recorder.flush() is True

    assert len(await store.list_attempts(ok)) == 1
    record = await delivery(store, released)
    assert (record.waiting_reason, record.lease_owner) == (WaitingReason.SHUTDOWN, None)


async def test_a_breaker_transition_is_written_latest_first_and_kept_across_an_outage(
    store: Store, metrics: Metrics
) -> None:
    """A breaker that moved is reported on its endpoint's row with its probe time (the
    latest of several moves before a flush); one that did not move writes nothing; a store
    outage keeps the transition for the next flush."""
    await leased_deliveries(store, 1)
    outage = Outage(store, "record_breakers", failures=1)
    recorder = Recorder(outage, metrics)
    breaker = Breaker(threshold=1, cooldown=30.0)
    recorder.breaker("ep_1", breaker.state, breaker, T0)  # closed → closed: nothing
    assert await recorder.flush()
    assert "record_breakers" not in outage.calls
    breaker.record(False, now=time.monotonic())
    recorder.breaker("ep_1", BreakerState.CLOSED, breaker, T0)
    breaker.probe_started()
    recorder.breaker("ep_1", BreakerState.OPEN, breaker, T0 + SECOND)
    breaker.record(False, now=time.monotonic())
    recorder.breaker("ep_1", BreakerState.HALF_OPEN, breaker, T0 + 2 * SECOND)
    assert not await recorder.flush()  # the outage
    assert await recorder.flush()
    health = (await store.endpoint_health(["ep_1"], now=T0))["ep_1"]
    assert health.breaker is BreakerState.OPEN
    assert health.next_probe_at is not None
    assert T0 + 2 * SECOND < health.next_probe_at <= T0 + 2 * SECOND + 60 * SECOND
    assert outage.calls.count("record_breakers") == 2
