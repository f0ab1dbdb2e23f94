"""A lane tells a busy but healthy endpoint from a congested one."""

from __future__ import annotations

from dispatcher.core.breaker import Breaker
from dispatcher.core.lanes import Job, Lane
from dispatcher.core.models import Claim, Lease


def lane(queued: int = 0) -> Lane:
    new = Lane(endpoint_id="ep_1", breaker=Breaker(threshold=10, cooldown=30.0), created=0.0)
    claim = Claim(
        delivery_id="dlv_1",
        event_id="evt_1",
        event_type="t",
        organization_id="org_1",
        endpoint_id="ep_1",
        attempts=0,
        body=b"{}",
        lease=Lease("w1", 1),
    )
    new.queue.extend(Job(claim=claim, lease_deadline=60.0) for _ in range(queued))
    return new


def test_a_lane_with_free_slots_is_never_congested() -> None:
    """Queued work with slots to spare is just work waiting for the dispatcher."""
    busy = lane(queued=500)
    busy.started(0.0)
    assert not busy.congested(10.0, slots=2, deadline=15.0)


def test_all_slots_taken_and_nothing_completing_for_a_window_is_congested() -> None:
    """A black hole: every slot busy since t=0 and no completion by t=1 s."""
    hole = lane(queued=10)
    hole.started(0.0)
    hole.started(0.0)
    assert not hole.congested(0.5, slots=2, deadline=15.0)
    assert hole.congested(1.0, slots=2, deadline=15.0)


def test_a_fast_endpoint_with_a_deep_queue_is_healthy() -> None:
    """Completing 200/s, 500 queued drain well within a 15 s deadline."""
    fast = lane(queued=500)
    for i in range(201):
        fast.started(i / 200)
        fast.started(i / 200)
        fast.completed(i / 200)
    assert fast.rate is not None
    assert fast.rate > 150
    assert not fast.congested(1.0, slots=1, deadline=15.0)


def test_a_slow_endpoint_that_cannot_drain_its_queue_in_time_is_congested() -> None:
    """Completing 2/s with 100 queued needs 50 s: more than the 15 s deadline."""
    slow = lane(queued=100)
    slow.started(0.0)
    for t in (0.5, 1.0):
        slow.started(t)
        slow.completed(t)
    assert slow.rate == 2.0
    assert slow.congested(1.2, slots=1, deadline=15.0)
