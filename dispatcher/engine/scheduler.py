"""The scheduler: turns leased deliveries into attempts, isolated per endpoint.

Work arrives two ways: fresh deliveries straight from the consumer (no polling delay), and
due retries or orphaned work (a crashed replica's expired leases) claimed from the store by
the poller. Every delivery goes into its endpoint's lane:

  * a global cap (`max_in_flight`) and a per-endpoint cap bound concurrent attempts, so a
    slow or dead endpoint holds at most its own slots;
  * the endpoint's circuit breaker: while it is open, the lane's deliveries go back to the
    store due at the next probe time instead of each burning a connection and a timeout;
  * the endpoint's optional `rateLimit` (a token bucket) paces attempt starts;
  * a lane holds a bounded backlog; the overflow goes back to the store, due a little later.

The decisions are the pure `core.policy`; this module executes them. The poller
(`engine.poller`) claims due work into it and housekeeping (`engine.housekeeping`) disables
endpoints failing for too long through it. Outcomes are decided by the pure retry policy and
recorded in batches (`Store.complete`) by the recorder; a delivery stays leased until its
attempt is durably recorded, so a crash at any point replays the attempt rather than losing
it (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from dispatcher.clock import utcnow
from dispatcher.core.breaker import Breaker, BreakerState
from dispatcher.core.lanes import Job, Lane
from dispatcher.core.models import (
    AttemptOutcome,
    AttemptResult,
    Claim,
    DisabledReason,
    Endpoint,
    EndpointStatus,
    SuppressedReason,
    WaitingReason,
)
from dispatcher.core.policy import (
    Drop,
    HandBack,
    SchedulerConfig,
    Start,
    WaitForSlot,
    WakeAt,
    finish,
    plan_dispatch,
    shared,
)
from dispatcher.core.retry import next_step
from dispatcher.core.routing import attempt_suppression
from dispatcher.engine.delivery.client import DeliveryClient
from dispatcher.engine.directory import Directory
from dispatcher.engine.recorder import Recorder
from dispatcher.metrics import Metrics
from dispatcher.store import Store

log = logging.getLogger(__name__)

# The `webhooks_deliveries_released_total{cause}` label for each waiting reason.
_CAUSES = {
    WaitingReason.BREAKER_OPEN: "breaker",
    WaitingReason.ENDPOINT_BUSY: "backlog",
    WaitingReason.RATE_LIMITED: "rate_limit",
    WaitingReason.SHUTDOWN: "shutdown",
    WaitingReason.ATTEMPT_ERROR: "error",
}


# Called after an endpoint was disabled here (410, auto-disable): emits its disabled event.
EndpointDisabled = Callable[[Endpoint, DisabledReason], Awaitable[None]]


class Scheduler:
    def __init__(
        self,
        *,
        store: Store,
        client: DeliveryClient,
        directory: Directory,
        config: SchedulerConfig,
        metrics: Metrics,
        on_endpoint_disabled: EndpointDisabled | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
        replicas: Callable[[], int] = lambda: 1,
    ) -> None:
        self._store = store
        self._client = client
        self._directory = directory
        self._config = config
        self._metrics = metrics
        self._on_disabled = on_endpoint_disabled
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._clock = clock
        self._lanes: dict[str, Lane] = {}
        self._wakes: dict[str, asyncio.TimerHandle] = {}  # endpoint id → its lane's wake-up
        self._caps = config.caps
        self._replicas = replicas  # endpoints' caps and rate limits are shared by them
        self._breaker_counts = dict.fromkeys(BreakerState, 0)  # the gauge, kept exact
        self._ready: deque[Lane] = deque()
        self._in_flight = 0
        self._queued = 0
        self.recorder = Recorder(store, metrics, on_tick=self._update_gauges)
        self.poll_now = asyncio.Event()  # set by poke(); the poller waits on it
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = True

    # -- intake -------------------------------------------------------------------------

    @property
    def load(self) -> int:
        return self._queued + self._in_flight

    def has_room(self) -> bool:
        return self.load < self._config.capacity

    async def wait_for_room(self) -> None:
        """Back-pressure for the consumer: wait while this process holds a full load."""
        while not self.has_room():
            self._room.clear()
            await self._room.wait()

    def submit(self, claims: list[Claim]) -> None:
        """Take leased deliveries (fresh from the consumer, or claimed by the poller)."""
        deadline = time.monotonic() + self._config.lease
        touched: dict[str, Lane] = {}
        for claim in claims:
            lane = self._lane(claim.endpoint_id)
            lane.queue.append(Job(claim=claim, lease_deadline=deadline))
            self._queued += 1
            touched[lane.endpoint_id] = lane
        self._idle.clear()
        for lane in touched.values():
            self._dispatch(lane)

    def poke(self) -> None:
        """Look for due work now (after a replay, say) instead of at the next poll."""
        self.poll_now.set()

    @property
    def accepting(self) -> bool:
        """False once draining: nothing new is claimed or started."""
        return self._accepting

    def _lane(self, endpoint_id: str) -> Lane:
        lane = self._lanes.get(endpoint_id)
        if lane is None:
            lane = Lane(
                endpoint_id=endpoint_id,
                breaker=Breaker(
                    threshold=self._config.breaker_threshold,
                    cooldown=self._config.breaker_cooldown,
                ),
                created=time.monotonic(),
            )
            self._lanes[endpoint_id] = lane
            self._count_breaker(None, BreakerState.CLOSED)
        return lane

    def _count_breaker(self, before: BreakerState | None, after: BreakerState | None) -> None:
        """Move one breaker between the gauge's states (None: a lane created or removed)."""
        if before is after:
            return
        for state, step in ((before, -1), (after, 1)):
            if state is not None:
                self._breaker_counts[state] += step
                self._metrics.breakers.labels(state.value).set(self._breaker_counts[state])

    # -- dispatch -----------------------------------------------------------------------

    def _dispatch(self, lane: Lane) -> None:
        """Execute what the policy decides for the lane (see dispatcher.core.policy)."""
        if not self._accepting:
            return
        endpoint = self._directory.endpoint(lane.endpoint_id)
        replicas = max(1, self._replicas())
        before = lane.breaker.state
        actions = plan_dispatch(
            lane,
            in_flight=self._in_flight,
            caps=shared(self._caps, replicas),
            rate_limit=endpoint.rate_limit / replicas if endpoint and endpoint.rate_limit else None,
            now=time.monotonic(),
        )
        self._count_breaker(before, lane.breaker.state)
        self.recorder.breaker(lane.endpoint_id, before, lane.breaker, self._clock())
        loop = asyncio.get_running_loop()
        for action in actions:
            match action:
                case Start(job=job):
                    self._queued -= 1
                    self._in_flight += 1
                    task = loop.create_task(self._attempt(lane, job))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                case Drop():
                    # Held too long: the lease may already be another replica's. The poller
                    # re-claims it once the lease has expired.
                    self._queued -= 1
                case HandBack(jobs=jobs, due_in=due_in, reason=reason):
                    self._hand_back(list(jobs), due_in, cause=_CAUSES[reason], reason=reason)
                case WaitForSlot():
                    if not lane.ready:
                        lane.ready = True
                        self._ready.append(lane)
                case WakeAt(delay=delay):
                    lane.wake_at = time.monotonic() + delay
                    self._wakes[lane.endpoint_id] = loop.call_later(delay, self._wake, lane)
        if self.has_room():  # a hand-back or a drop may have made room too
            self._room.set()

    def _wake(self, lane: Lane) -> None:
        lane.wake_at = None
        self._wakes.pop(lane.endpoint_id, None)
        self._dispatch(lane)

    def _hand_back_lane(
        self, lane: Lane, delay: float, *, cause: str, reason: WaitingReason
    ) -> None:
        jobs = list(lane.queue)
        lane.queue.clear()
        self._hand_back(jobs, delay, cause=cause, reason=reason)

    def _hand_back(
        self, jobs: list[Job], delay: float, *, cause: str, reason: WaitingReason
    ) -> None:
        """Return leased deliveries to the store unattempted, due after `delay` seconds."""
        if not jobs:
            return
        self._queued -= len(jobs)
        due = self._clock() + timedelta(seconds=max(delay, 0.0))
        self.recorder.release(
            [(job.claim.delivery_id, job.claim.lease) for job in jobs], due, reason
        )
        self._metrics.deliveries_released.labels(cause).inc(len(jobs))

    def _slot_freed(self, lane: Lane, succeeded: bool | None) -> None:
        self._count_breaker(*(moved := finish(lane, succeeded=succeeded, now=time.monotonic())))
        self.recorder.breaker(lane.endpoint_id, moved[0], lane.breaker, self._clock())
        self._in_flight -= 1
        # Lanes already waiting for a global slot go first (round robin), so the lanes
        # holding slots cannot keep them while others starve.
        while self._ready and self._in_flight < self._config.max_in_flight:
            waiting = self._ready.popleft()
            waiting.ready = False
            self._dispatch(waiting)
        self._dispatch(lane)
        if self.has_room():
            self._room.set()
        if self.load == 0:
            self._idle.set()
        if lane.idle and self._lanes.pop(lane.endpoint_id, None) is not None:
            self._count_breaker(lane.breaker.state, None)

    # -- one attempt --------------------------------------------------------------------

    async def _attempt(self, lane: Lane, job: Job) -> None:
        claim = job.claim
        succeeded: bool | None = None  # None: the endpoint was not reached
        try:
            endpoint = self._directory.endpoint(claim.endpoint_id)
            refused = attempt_suppression(self._directory.table, claim.organization_id, endpoint)
            if refused is not None or endpoint is None:
                why = refused or SuppressedReason.ENDPOINT_DELETED
                self.recorder.suppress(claim.delivery_id, claim.lease, why.value)
                self._metrics.deliveries_finished.labels("suppressed").inc()
                return
            secrets = await self._directory.secrets(endpoint.id)
            started_at = self._clock()
            outcome = await self._client.send(
                url=endpoint.url,
                event_id=claim.event_id,
                body=claim.body,
                secrets=secrets,
                timestamp=int(started_at.timestamp()),
                claim=claim,
            )
            disable = self._record(claim, started_at, outcome)
            succeeded = outcome.succeeded
            if disable is not None:
                await self.disable(endpoint, disable)
        except Exception:
            if succeeded is None:  # not recorded: hand it back for another attempt
                log.exception(
                    "attempt crashed; handing the delivery back",
                    extra={"delivery_id": claim.delivery_id, "endpoint_id": claim.endpoint_id},
                )
                self._queued += 1  # _hand_back counts it out again
                self._hand_back(
                    [job],
                    self._config.poll_interval,
                    cause="error",
                    reason=WaitingReason.ATTEMPT_ERROR,
                )
            else:
                log.exception(
                    "disabling the endpoint failed", extra={"endpoint_id": lane.endpoint_id}
                )
        finally:
            self._slot_freed(lane, succeeded)

    def _record(
        self, claim: Claim, started_at: datetime, outcome: AttemptOutcome
    ) -> DisabledReason | None:
        attempt = claim.attempt
        now = self._clock()
        # The ladder restarts at a replay; the attempt number does not.
        step = next_step(self._config.policy, outcome, claim.ladder_position, now, self._rng)
        self.recorder.result(
            AttemptResult(
                delivery_id=claim.delivery_id,
                endpoint_id=claim.endpoint_id,
                attempt=attempt,
                started_at=started_at,
                outcome=outcome,
                status=step.status,
                next_attempt_at=step.next_attempt_at,
                lease=claim.lease,
            )
        )
        # The attempt's counters are added up by the recorder, per flush.
        log.debug(
            "attempt",
            extra={
                "delivery_id": claim.delivery_id,
                "endpoint_id": claim.endpoint_id,
                "attempt": attempt,
                "status_code": outcome.status_code,
                "failure": outcome.failure,
                "next_status": step.status.value,
            },
        )
        if outcome.failure is not None and claim.ladder_position == 1:
            log.info(
                "delivery attempt failed",
                extra={
                    "delivery_id": claim.delivery_id,
                    "endpoint_id": claim.endpoint_id,
                    "attempt": attempt,
                    "failure": outcome.failure,
                    "status_code": outcome.status_code,
                },
            )
        return step.disable_endpoint

    async def disable(self, endpoint: Endpoint, reason: DisabledReason) -> None:
        """Disable an endpoint (410 Gone or no success for too long) and announce it."""
        changed = await self._store.set_endpoint_status(
            endpoint.id, EndpointStatus.DISABLED, reason, now=self._clock()
        )
        if not changed:
            return
        self._directory.invalidate(endpoint.id)
        self._metrics.endpoints_disabled.labels(reason.value).inc()
        log.warning("endpoint disabled", extra={"endpoint_id": endpoint.id, "reason": reason.value})
        if self._on_disabled is not None:
            await self._on_disabled(endpoint, reason)

    # -- shutdown -----------------------------------------------------------------------

    async def drain(self, deadline: float) -> None:
        """Stop starting, wait for in-flight attempts until `deadline`, hand back, flush."""
        self._accepting = False
        for lane in list(self._lanes.values()):
            wake = self._wakes.pop(lane.endpoint_id, None)
            if wake is not None:
                wake.cancel()
                lane.wake_at = None
            self._hand_back_lane(lane, 0.0, cause="shutdown", reason=WaitingReason.SHUTDOWN)
        remaining = deadline - time.monotonic()
        if self._tasks and remaining > 0:
            await asyncio.wait(set(self._tasks), timeout=remaining)
        for task in list(self._tasks):
            task.cancel()  # past the deadline: their leases expire and they are replayed
        await self.recorder.flush()

    def _update_gauges(self) -> None:
        """Refreshed by the recorder's loop every flush interval, not per attempt."""
        self._metrics.queued.set(self._queued)
        self._metrics.in_flight.set(self._in_flight)
