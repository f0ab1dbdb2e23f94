"""The bulk replay runner: batch sizes, round robin over a real SQLite store's jobs, and the
pacing of `run()` (the module's `asyncio.sleep` recorded instead of waited)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatcher.clock import new_id
from dispatcher.core.models import DeliveryStatus, WaitingReason
from dispatcher.engine import replay as replay_module
from dispatcher.engine.replay import ReplayRunner, batch_size
from dispatcher.store import Store
from dispatcher.store.records import ReplayFilter, ReplayJobRecord, ReplayJobStatus
from tests.dispatcher.engine.support import (
    ORG,
    SECOND,
    T0,
    WAIT,
    Outage,
    eventually,
    gave_up,
    leased_deliveries,
)

REPLAYED_AT = T0 + timedelta(days=1)


def replay_clock() -> datetime:
    return REPLAYED_AT


async def failed_deliveries(store: Store, count: int, *, endpoint_id: str = "ep_1") -> list[str]:
    ids = await leased_deliveries(store, count, endpoint_id=endpoint_id)
    await store.complete([gave_up(d, number=8, endpoint_id=endpoint_id) for d in ids])
    return ids


async def replay_job(
    store: Store, endpoint_id: str = "ep_1", *, at: datetime = T0
) -> ReplayJobRecord:
    """A job over the endpoint's failed deliveries, created as POST …/replay creates one."""
    job, created = await store.create_replay_job(
        job_id=new_id("rpl"),
        organization_id=ORG,
        filter=ReplayFilter(endpoint_id=endpoint_id, since=datetime.now(UTC) - timedelta(hours=1)),
        actor="key_oncall",
        reason="endpoint fixed",
        now=at,
    )
    assert created
    return job


async def job_state(store: Store, job_id: str) -> tuple[ReplayJobStatus, int, int]:
    job = await store.get_replay_job(job_id)
    assert job is not None
    return (job.status, job.done, job.total)


class Replayed:
    """The on_replayed callback: the counts it was given, in order."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def __call__(self, count: int) -> None:
        self.counts.append(count)


class RecordedSleeps:
    """The replay module's `asyncio`: everything real except `sleep`, which only records the
    duration asked for (and yields once)."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.durations.append(delay)
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("rate", "size"),
    [(0.5, 1), (1, 1), (10, 1), (11, 2), (25, 3), (100, 10), (101, 11), (1000, 100)],
)
def test_batch_size_is_a_tenth_of_a_second_rounded_up_and_at_least_one(
    rate: float, size: int
) -> None:
    assert batch_size(rate) == size


@pytest.mark.parametrize("rate", [0, -1, -0.5])
async def test_a_rate_that_is_not_positive_is_refused(store: Store, rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayRunner(store, rate=rate, on_replayed=Replayed())


async def test_steps_take_at_most_a_batch_until_the_job_is_done(store: Store) -> None:
    """Rate 25 takes 3 per step: 3, 3, 1, then nothing; the job ends succeeded with 7 of 7,
    every delivery back on a fresh ladder with the job in its history."""
    ids = await failed_deliveries(store, 7)
    job = await replay_job(store)
    replayed = Replayed()
    runner = ReplayRunner(store, rate=25, on_replayed=replayed, clock=replay_clock)

    taken = [await runner.step()]
    assert await job_state(store, job.id) == (ReplayJobStatus.RUNNING, 3, 7)
    taken += [await runner.step() for _ in range(4)]

    assert taken == [3, 3, 1, 0, 0]
    assert replayed.counts == [3, 3, 1]
    finished = await store.get_replay_job(job.id)
    assert finished is not None
    assert (finished.status, finished.done, finished.total) == (ReplayJobStatus.SUCCEEDED, 7, 7)
    assert finished.finished_at == REPLAYED_AT
    assert await store.active_replay_jobs() == []
    for delivery_id in ids:
        delivery = await store.get_delivery(delivery_id)
        assert delivery is not None
        assert (delivery.status, delivery.attempts, delivery.waiting_reason) == (
            DeliveryStatus.PENDING,
            8,  # a replay restarts the ladder; the attempts made still count
            WaitingReason.REPLAY_QUEUED,
        )
        assert [(r.job_id, r.at) for r in await store.list_replays(delivery_id)] == [
            (job.id, REPLAYED_AT)
        ]


async def test_steps_take_active_jobs_in_turn(store: Store) -> None:
    """Two active jobs are served one batch each, alternately, oldest first."""
    await failed_deliveries(store, 4, endpoint_id="ep_a")
    await failed_deliveries(store, 4, endpoint_id="ep_b")
    first = await replay_job(store, "ep_a", at=T0)
    second = await replay_job(store, "ep_b", at=T0 + SECOND)
    replayed = Replayed()
    runner = ReplayRunner(store, rate=20, on_replayed=replayed, clock=replay_clock)

    progress = []
    for _ in range(4):
        assert await runner.step() == 2
        progress.append(
            ((await job_state(store, first.id))[1], (await job_state(store, second.id))[1])
        )

    assert progress == [(2, 0), (2, 2), (4, 2), (4, 4)]
    assert await runner.step() == 0
    assert replayed.counts == [2, 2, 2, 2]
    assert await job_state(store, first.id) == (ReplayJobStatus.SUCCEEDED, 4, 4)
    assert await job_state(store, second.id) == (ReplayJobStatus.SUCCEEDED, 4, 4)


async def test_a_step_without_jobs_does_nothing(store: Store) -> None:
    """No active job: 0, no callback, and only the look-up touches the store."""
    await failed_deliveries(store, 2)  # failed deliveries, but nobody asked for a replay
    spy = Outage(store)
    replayed = Replayed()
    runner = ReplayRunner(spy, rate=10, on_replayed=replayed)

    assert await runner.step() == 0

    assert replayed.counts == []
    assert spy.calls == ["active_replay_jobs"]


async def test_run_sleeps_what_it_took_divided_by_the_rate(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3, 3 and 1 deliveries at 25/s cost 0.12, 0.12 and 0.04 s; an idle round sleeps nothing
    (it waits for a wake-up instead)."""
    sleeps = RecordedSleeps()
    monkeypatch.setattr(replay_module, "asyncio", sleeps)
    await failed_deliveries(store, 7)
    job = await replay_job(store)
    spy = Outage(store)
    replayed = Replayed()
    runner = ReplayRunner(spy, rate=25, on_replayed=replayed, idle_interval=0.001)
    task = asyncio.create_task(runner.run())
    try:

        async def done() -> bool:
            return (await job_state(store, job.id))[0] is ReplayJobStatus.SUCCEEDED

        assert await eventually(done)
        idle_from = spy.returned.count("active_replay_jobs")

        async def idled() -> bool:  # three more rounds that found nothing
            return spy.returned.count("active_replay_jobs") >= idle_from + 3

        assert await eventually(idled)
        assert sleeps.durations == pytest.approx([0.12, 0.12, 0.04])
        assert replayed.counts == [3, 3, 1]
        assert not task.done()
    finally:
        task.cancel()


async def test_a_store_outage_does_not_end_run(store: Store) -> None:
    """StoreUnavailableError in a step is logged and retried: run() keeps going and finishes
    the job, counting only what was replayed."""
    await failed_deliveries(store, 5)
    job = await replay_job(store)
    outage = Outage(store, "advance_replay_job", failures=2)
    replayed = Replayed()
    runner = ReplayRunner(outage, rate=1000, on_replayed=replayed, idle_interval=0.001)
    task = asyncio.create_task(runner.run())
    try:

        async def done() -> bool:
            return (await job_state(store, job.id))[0] is ReplayJobStatus.SUCCEEDED

        assert await eventually(done)
        assert not task.done()
        assert outage.failures == 0
        assert outage.returned.count("advance_replay_job") == 3  # two refused, one took all
        assert replayed.counts == [5]
        assert await job_state(store, job.id) == (ReplayJobStatus.SUCCEEDED, 5, 5)
    finally:
        task.cancel()


async def test_wake_starts_a_new_job_without_waiting_for_the_idle_interval(
    store: Store,
) -> None:
    """An idle runner (an hour until it looks again) picks a job up at once when woken."""
    await failed_deliveries(store, 3)
    spy = Outage(store)
    replayed = Replayed()
    runner = ReplayRunner(spy, rate=100, on_replayed=replayed, idle_interval=3600)
    task = asyncio.create_task(runner.run())
    try:

        async def idle() -> bool:
            return "active_replay_jobs" in spy.returned

        assert await eventually(idle)  # it looked, found nothing, and now waits
        job = await replay_job(store)
        runner.wake()

        async def done() -> bool:
            return (await job_state(store, job.id))[0] is ReplayJobStatus.SUCCEEDED

        assert await eventually(done, within=WAIT)
        assert replayed.counts == [3]
    finally:
        task.cancel()
