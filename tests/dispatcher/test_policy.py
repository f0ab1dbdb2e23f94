"""The dispatch policy as a specification: situations in, actions out, no event loop.

Each breaker row is one of the things a new user saw go wrong (an endpoint failing, then
recovering, with threshold 3 and a 3 s cooldown), written as the situation first.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dispatcher.core.breaker import Breaker, BreakerState
from dispatcher.core.lanes import RATE_WINDOW, Job, Lane
from dispatcher.core.models import Claim, Lease, WaitingReason
from dispatcher.core.policy import (
    Action,
    Caps,
    Drop,
    HandBack,
    Start,
    WaitForSlot,
    WakeAt,
    finish,
    plan_dispatch,
    shared,
)

CAPS = Caps(
    max_in_flight=100,
    max_in_flight_per_endpoint=4,
    delivery_timeout=15.0,
    poll_interval=1.0,
    lane_backlog=8,
    busy_lane_backlog=25,
)
LEASE = 60.0


def job(n: int, *, lease_left: float = LEASE, now: float = 0.0) -> Job:
    claim = Claim(
        delivery_id=f"dlv_{n}",
        event_id=f"evt_{n}",
        event_type="content.generated",
        organization_id="org_1",
        endpoint_id="ep_1",
        attempts=0,
        body=b"{}",
        lease=Lease("w1", 1),
    )
    return Job(claim=claim, lease_deadline=now + lease_left)


def lane(jobs: int, *, now: float = 0.0, threshold: int = 3, cooldown: float = 3.0) -> Lane:
    fresh = Lane(
        endpoint_id="ep_1", breaker=Breaker(threshold=threshold, cooldown=cooldown), created=now
    )
    fresh.queue.extend(job(n, now=now) for n in range(jobs))
    return fresh


def opened(jobs: int, *, at: float = 0.0) -> Lane:
    """A lane whose breaker opened at `at` (three failures, 3 s cooldown)."""
    opened_lane = lane(jobs, now=at)
    for _ in range(3):
        opened_lane.breaker.record(False, at)
    return opened_lane


def ids(actions: list[Action], kind: type[Start | Drop]) -> list[str]:
    return [a.job.claim.delivery_id for a in actions if isinstance(a, kind)]


def plan(
    the_lane: Lane, now: float, *, in_flight: int = 0, rate: float | None = None
) -> list[Action]:
    return plan_dispatch(the_lane, in_flight=in_flight, caps=CAPS, rate_limit=rate, now=now)


# -- caps --------------------------------------------------------------------------------


def test_a_healthy_lane_starts_up_to_its_endpoint_cap() -> None:
    """Six queued, cap 4: four start now, two wait in the lane for a slot."""
    the_lane = lane(6)
    actions = plan(the_lane, 0.0)
    assert ids(actions, Start) == ["dlv_0", "dlv_1", "dlv_2", "dlv_3"]
    assert (the_lane.in_flight, len(the_lane.queue)) == (4, 2)


def test_a_full_process_queues_the_lane_for_the_next_global_slot() -> None:
    """With 99 of 100 slots taken one attempt starts and the lane waits for a slot."""
    actions = plan(lane(3), 0.0, in_flight=99)
    assert ids(actions, Start) == ["dlv_0"]
    assert actions[-1] == WaitForSlot()


def test_a_lease_too_near_its_end_is_dropped_not_attempted() -> None:
    """A job whose lease ends within one attempt deadline is dropped (the poller re-claims
    it after expiry); the next one starts."""
    the_lane = lane(0)
    the_lane.queue.extend([job(0, lease_left=10.0), job(1)])
    actions = plan(the_lane, 0.0)
    assert ids(actions, Drop) == ["dlv_0"]
    assert ids(actions, Start) == ["dlv_1"]


def test_a_rate_limited_lane_starts_its_burst_then_wakes_when_a_token_is_due() -> None:
    """rateLimit 2/s: two start at once, the third waits half a second (`WakeAt(0.5)`)."""
    the_lane = lane(3)
    actions = plan(the_lane, 0.0, rate=2.0)
    assert ids(actions, Start) == ["dlv_0", "dlv_1"]
    assert WakeAt(pytest.approx(0.5)) in actions  # type: ignore[arg-type]
    the_lane.wake_at = 0.5
    assert not any(isinstance(a, WakeAt) for a in plan(the_lane, 0.1, rate=2.0))


def test_a_congested_lane_hands_its_overflow_back_as_endpoint_busy() -> None:
    """All slots busy and nothing completing for a window: the queue is cut to the short
    backlog, the rest due one attempt deadline later."""
    the_lane = lane(20)
    plan(the_lane, 0.0)
    actions = plan(the_lane, RATE_WINDOW + 0.1)
    [back] = [a for a in actions if isinstance(a, HandBack)]
    assert (len(back.jobs), back.due_in, back.reason) == (
        16 - CAPS.lane_backlog,
        CAPS.delivery_timeout,
        WaitingReason.ENDPOINT_BUSY,
    )
    assert len(the_lane.queue) == CAPS.lane_backlog


def test_a_rate_paced_lane_hands_its_overflow_back_as_rate_limited() -> None:
    """rateLimit 2/s and 40 queued: two start, the lane keeps its busy backlog (25) and the
    rest goes back `rate_limited`, due when those 25 have been sent at 2/s (12.5 s)."""
    the_lane = lane(40)
    actions = plan(the_lane, 0.0, rate=2.0)
    assert ids(actions, Start) == ["dlv_0", "dlv_1"]
    [back] = [a for a in actions if isinstance(a, HandBack)]
    assert (len(back.jobs), back.reason) == (
        40 - 2 - CAPS.busy_lane_backlog,
        WaitingReason.RATE_LIMITED,
    )
    assert back.due_in == pytest.approx(CAPS.busy_lane_backlog / 2.0)
    assert len(the_lane.queue) == CAPS.busy_lane_backlog


def test_a_rate_paced_lane_keeps_only_what_it_can_send_within_the_lease() -> None:
    """rateLimit 2/s with 5 s of lease left after an attempt's deadline: it keeps 10 (what 2/s
    sends in 5 s), not its busy backlog — the rest would be dropped when the lease ends —
    and hands back the rest due in 5 s."""
    the_lane = lane(0)
    the_lane.queue.extend(job(n, lease_left=CAPS.delivery_timeout + 5.0) for n in range(40))
    actions = plan(the_lane, 0.0, rate=2.0)
    [back] = [a for a in actions if isinstance(a, HandBack)]
    assert (len(the_lane.queue), len(back.jobs), back.reason) == (
        10,
        40 - 2 - 10,
        WaitingReason.RATE_LIMITED,
    )
    assert back.due_in == pytest.approx(5.0)


# -- the breaker (issue: "the circuit breaker, made right") ----------------------------


def test_an_open_breaker_hands_everything_back_due_exactly_at_the_probe_time() -> None:
    """Opened at 100 s with a 3 s cooldown, at 101 s: every queued delivery goes back due in
    2 s — the probe time, not a cooldown from now — marked `breaker_open`."""
    the_lane = opened(5, at=100.0)
    actions = plan(the_lane, 101.0)
    assert actions == [
        HandBack(tuple(job(n, now=100.0) for n in range(5)), 2.0, WaitingReason.BREAKER_OPEN)
    ]
    assert not the_lane.queue


def test_at_the_probe_time_one_probe_starts_and_the_others_wait_in_memory() -> None:
    """Nothing is handed back while the probe is out: its answer decides for the rest."""
    the_lane = opened(5)
    actions = plan(the_lane, 3.0)
    assert actions == [Start(job(0), probe=True)]
    assert the_lane.breaker.state is BreakerState.HALF_OPEN
    assert len(the_lane.queue) == 4
    assert plan(the_lane, 3.5) == []


def test_after_a_successful_probe_the_parked_deliveries_go_out_at_once_within_caps() -> None:
    """The probe succeeds at 3.2 s: the four parked deliveries start at 3.2 s (cap 4), not a
    cooldown later (they used to wait 96 s)."""
    the_lane = opened(5)
    plan(the_lane, 3.0)
    assert finish(the_lane, succeeded=True, now=3.2) == (
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    )
    actions = plan(the_lane, 3.2)
    assert ids(actions, Start) == ["dlv_1", "dlv_2", "dlv_3", "dlv_4"]
    assert not any(isinstance(a, HandBack) for a in actions)


def test_after_a_failed_probe_the_parked_deliveries_are_due_at_the_next_probe() -> None:
    """The probe fails at 3.5 s: the cooldown doubles to 6 s, so the rest are due at 9.5 s."""
    the_lane = opened(5)
    plan(the_lane, 3.0)
    assert finish(the_lane, succeeded=False, now=3.5) == (
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
    )
    [back] = plan(the_lane, 3.5)
    assert isinstance(back, HandBack)
    assert (len(back.jobs), back.due_in, back.reason) == (4, 6.0, WaitingReason.BREAKER_OPEN)


def test_a_probe_that_never_reached_the_endpoint_lets_the_next_one_probe() -> None:
    """A suppressed or crashed probe is no answer: the next queued delivery probes."""
    the_lane = opened(3)
    plan(the_lane, 3.0)
    assert finish(the_lane, succeeded=None, now=3.1) == (BreakerState.HALF_OPEN, BreakerState.OPEN)
    assert plan(the_lane, 3.1) == [Start(job(1), probe=True)]


def test_the_breaker_gauge_states_follow_the_events() -> None:
    """closed → open on the third failure, half_open only while the probe is in flight, and
    closed again the moment it succeeds (it stayed half_open for 18 minutes)."""
    the_lane = lane(1)
    plan(the_lane, 0.0)
    states = []
    for n in range(3):
        _, after = finish(the_lane, succeeded=False, now=float(n))
        states.append(after)
        the_lane.queue.append(job(n + 1))
        the_lane.started(float(n))
    assert states == [BreakerState.CLOSED, BreakerState.CLOSED, BreakerState.OPEN]
    the_lane.in_flight = 0
    plan(the_lane, 5.0)
    assert the_lane.breaker.state is BreakerState.HALF_OPEN
    assert finish(the_lane, succeeded=True, now=5.1)[1] is BreakerState.CLOSED


@dataclass(frozen=True)
class Row:
    situation: str
    queued: int
    in_flight: int
    expected_starts: int


@pytest.mark.parametrize(
    "row",
    [
        Row("an empty lane", 0, 0, 0),
        Row("a lane under its cap", 2, 0, 2),
        Row("a lane at its cap", 4, 4, 0),
        Row("the process at its global cap", 4, 100, 0),
    ],
    ids=lambda row: row.situation,
)
def test_starts_by_situation(row: Row) -> None:
    """How many attempts start for each situation of a closed lane."""
    the_lane = lane(row.queued)
    the_lane.in_flight = min(row.in_flight, CAPS.max_in_flight_per_endpoint)
    actions = plan(the_lane, 0.0, in_flight=row.in_flight)
    assert len(ids(actions, Start)) == row.expected_starts


@pytest.mark.parametrize(
    ("replicas", "per_endpoint"), [(1, 4), (2, 2), (3, 1), (8, 1)], ids=["1", "2", "3", "8"]
)
def test_replicas_share_the_per_endpoint_cap(replicas: int, per_endpoint: int) -> None:
    """Cap 4 across N replicas: each takes 4 // N slots, at least one; the global cap is
    per process and stays."""
    caps = shared(CAPS, replicas)
    assert (caps.max_in_flight_per_endpoint, caps.max_in_flight) == (per_endpoint, 100)
    assert ids(plan_dispatch(lane(6), in_flight=0, caps=caps, rate_limit=None, now=0.0), Start) == [
        f"dlv_{n}" for n in range(per_endpoint)
    ]
