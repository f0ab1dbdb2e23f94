"""The dispatch policy: what the scheduler does with a lane, decided without doing it.

Given the time and a lane's state (its queue, slots, breaker, rate bucket), `plan_dispatch`
returns actions; the engine executes them and reports back (an attempt finished: `finish`).
No event loop, no clock, no I/O: every rule is a row in a table test (as h11's
`Connection` decides and the caller does the I/O).

    Start(job)                  attempt now (the lane's slot is taken already)
    HandBack(jobs, due_in, why) return leased deliveries to the store, due `due_in` s from now
    Drop(job)                   forget it: its lease is too near its end to finish an attempt;
                                the poller re-claims it once the lease has expired
    WaitForSlot()               every global slot is taken: queue the lane for the next one
    WakeAt(delay)               look at the lane again in `delay` s (rate limit, stalled lane)

The rules, in order, for the head of the lane's queue:
  1. per-endpoint cap reached → stop (a finished attempt dispatches again);
  2. global cap reached → WaitForSlot;
  3. breaker open before its probe time → HandBack(everything, due at the probe time,
     `breaker_open`); a probe in flight → the rest wait in memory for its answer;
  4. no rate-limit token → WakeAt(when one is due);
  5. the lease ends before an attempt could → Drop; else Start (the probe, if it is due).
Then the backlog is bounded: a congested lane keeps `lane_backlog`, a busy healthy one
`busy_lane_backlog`, a lane paced by its `rateLimit` at most what that rate sends before the
oldest lease ends; the overflow is handed back — `rate_limited` (due when the kept backlog
has been sent) when paced by the rate, else `endpoint_busy`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from dispatcher.core.breaker import BreakerState, Verdict
from dispatcher.core.lanes import RATE_WINDOW, Job, Lane
from dispatcher.core.models import WaitingReason
from dispatcher.core.ratelimit import TokenBucket
from dispatcher.core.retry import RetryPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Caps:
    """The limits the policy enforces (from `SchedulerConfig`)."""

    max_in_flight: int
    max_in_flight_per_endpoint: int
    delivery_timeout: float
    poll_interval: float
    lane_backlog: int
    busy_lane_backlog: int


@functools.lru_cache(maxsize=16)  # called at every dispatch; the answers are few
def shared(caps: Caps, replicas: int) -> Caps:
    """This replica's share of the caps that must hold across `replicas` replicas: the
    per-endpoint in-flight cap divided (at least 1 each); the global cap is per process."""
    if replicas <= 1:
        return caps
    per_endpoint = max(1, caps.max_in_flight_per_endpoint // replicas)
    return replace(caps, max_in_flight_per_endpoint=per_endpoint)


@dataclass(frozen=True, slots=True)
class Start:
    job: Job
    probe: bool = False


@dataclass(frozen=True, slots=True)
class HandBack:
    jobs: tuple[Job, ...]
    due_in: float
    reason: WaitingReason


@dataclass(frozen=True, slots=True)
class Drop:
    job: Job


@dataclass(frozen=True, slots=True)
class WaitForSlot:
    pass


@dataclass(frozen=True, slots=True)
class WakeAt:
    delay: float


Action = Start | HandBack | Drop | WaitForSlot | WakeAt


def plan_dispatch(
    lane: Lane,
    *,
    in_flight: int,
    caps: Caps,
    rate_limit: float | None,
    now: float,
) -> list[Action]:
    """Start what the lane's caps, breaker and rate allow; bound what it keeps."""
    actions: list[Action] = []
    started = 0
    while lane.queue:
        if lane.in_flight >= caps.max_in_flight_per_endpoint:
            break
        if in_flight + started >= caps.max_in_flight:
            actions.append(WaitForSlot())
            break
        verdict = lane.breaker.verdict(now)
        if verdict is Verdict.REFUSE:
            probe_at = lane.breaker.probe_at
            due_in = 0.0 if probe_at is None else max(probe_at - now, 0.0)
            actions.append(HandBack(tuple(lane.queue), due_in, WaitingReason.BREAKER_OPEN))
            lane.queue.clear()
            break
        if verdict is Verdict.WAIT_FOR_PROBE:
            break
        wait = _take_token(lane, rate_limit, now)
        if wait > 0.0:
            if lane.wake_at is None:
                actions.append(WakeAt(wait))
            break
        job = lane.queue.popleft()
        if now + caps.delivery_timeout >= job.lease_deadline:
            actions.append(Drop(job))
            continue
        probe = verdict is Verdict.PROBE
        if probe:
            lane.breaker.probe_started()
        lane.started(now)
        started += 1
        actions.append(Start(job, probe=probe))
    actions.extend(plan_trim(lane, caps=caps, now=now))
    return actions


def _take_token(lane: Lane, rate_limit: float | None, now: float) -> float:
    if rate_limit is None:
        lane.bucket = None
        return 0.0
    if lane.bucket is None or lane.bucket.rate != rate_limit:
        lane.bucket = TokenBucket(rate=rate_limit, burst=max(1.0, rate_limit))
    return lane.bucket.take(now)


def plan_trim(lane: Lane, *, caps: Caps, now: float) -> list[Action]:
    """Bound what one lane holds so a stuck endpoint cannot fill this process.

    A busy but healthy lane keeps a deep queue (a burst drains in moments). A congested one
    keeps a short queue; the rest goes back to the store due after one attempt deadline, and
    a busy lane is looked at again a window later in case it stalled with nothing to wake it.
    """
    congested = lane.congested(
        now, slots=caps.max_in_flight_per_endpoint, deadline=caps.delivery_timeout
    )
    limit = caps.lane_backlog if congested else caps.busy_lane_backlog
    actions: list[Action] = []
    bucket = lane.bucket
    paced = bucket is not None and bucket.tokens < 1.0 and not congested
    if paced and bucket is not None and lane.queue:
        # Paced by its rateLimit, not by its slots: keep what the rate can send before the
        # oldest lease runs out (the rest would only be dropped), and hand back the rest
        # due when what it keeps has been sent.
        window = max(lane.queue[0].lease_deadline - now - caps.delivery_timeout, 0.0)
        limit = max(1, min(limit, int(bucket.rate * window)))
    overflow = len(lane.queue) - limit
    if overflow > 0:
        jobs = tuple(lane.queue.pop() for _ in range(overflow))
        if paced and bucket is not None:
            due_in = max(caps.poll_interval, limit / bucket.rate)
            actions.append(HandBack(jobs, due_in, WaitingReason.RATE_LIMITED))
        else:
            due_in = caps.delivery_timeout if congested else caps.poll_interval
            actions.append(HandBack(jobs, due_in, WaitingReason.ENDPOINT_BUSY))
    if (
        not congested
        and len(lane.queue) > caps.lane_backlog
        and lane.in_flight >= caps.max_in_flight_per_endpoint
        and lane.wake_at is None
    ):
        actions.append(WakeAt(RATE_WINDOW))
    return actions


def finish(lane: Lane, *, succeeded: bool | None, now: float) -> tuple[BreakerState, BreakerState]:
    """An attempt of `lane` ended: free its slot and feed the breaker.

    `succeeded` is None when the attempt never reached the endpoint (suppressed, or it
    crashed here): a probe that did not happen lets the next one go. Returns the breaker's
    state before and after, for the gauge."""
    before = lane.breaker.state
    lane.completed(now)
    if succeeded is None:
        lane.breaker.probe_abandoned()
    else:
        lane.breaker.record(succeeded, now)
    return before, lane.breaker.state


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerConfig:
    policy: RetryPolicy
    lease: float
    poll_interval: float
    delivery_timeout: float
    max_in_flight: int
    max_in_flight_per_endpoint: int
    breaker_threshold: int
    breaker_cooldown: float
    instance_id: str
    disable_after: float
    retention: float
    housekeeping_interval: float = 30.0

    @property
    def lane_backlog(self) -> int:
        """Deliveries a congested lane may hold beyond its in-flight slots."""
        return max(4 * self.max_in_flight_per_endpoint, 64)

    @property
    def busy_lane_backlog(self) -> int:
        """Deliveries a busy but healthy lane may hold (a burst to one endpoint)."""
        return max(self.capacity // 4, self.lane_backlog)

    @property
    def capacity(self) -> int:
        """Deliveries this process holds in memory (queued + in flight) at most."""
        return 4 * self.max_in_flight

    @property
    def caps(self) -> Caps:
        return Caps(
            max_in_flight=self.max_in_flight,
            max_in_flight_per_endpoint=self.max_in_flight_per_endpoint,
            delivery_timeout=self.delivery_timeout,
            poll_interval=self.poll_interval,
            lane_backlog=self.lane_backlog,
            busy_lane_backlog=self.busy_lane_backlog,
        )
