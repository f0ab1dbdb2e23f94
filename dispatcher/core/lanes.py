"""Lanes: one per endpoint with work in this process — its queue, slots, breaker and pace.

A lane measures how its endpoint keeps up, so the scheduler can tell a busy but healthy
endpoint (a deep queue that drains in moments: keep it) from a congested one — all slots
taken and nothing completing for a while (a black hole), or completing too slowly to drain
the queue within an attempt deadline — whose overflow goes back to the store for later.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from dispatcher.core.breaker import Breaker
from dispatcher.core.models import Claim
from dispatcher.core.ratelimit import TokenBucket

RATE_WINDOW = 1.0  # seconds over which a lane's completion rate is measured


@dataclass(slots=True)
class Job:
    claim: Claim
    lease_deadline: float  # monotonic time after which another replica may take it


@dataclass(slots=True)
class Lane:
    endpoint_id: str
    breaker: Breaker
    created: float  # monotonic
    queue: deque[Job] = field(default_factory=deque)
    in_flight: int = 0
    bucket: TokenBucket | None = None
    wake_at: float | None = None  # a wake-up is scheduled for then (monotonic)
    ready: bool = False  # waiting in the scheduler's ready list for a global slot
    rate: float | None = None  # completions per second over the last full window
    last_progress: float = 0.0  # last completion, or when the lane went from idle to busy
    _window_start: float = 0.0
    _window_count: int = 0

    def __post_init__(self) -> None:
        self._window_start = self.last_progress = self.created

    def started(self, now: float) -> None:
        if self.in_flight == 0:
            self.last_progress = now
        self.in_flight += 1

    def completed(self, now: float) -> None:
        """One attempt finished (success or failure)."""
        self.in_flight -= 1
        self.last_progress = now
        self._window_count += 1
        elapsed = now - self._window_start
        if elapsed >= RATE_WINDOW:
            self.rate = self._window_count / elapsed
            self._window_start = now
            self._window_count = 0

    def congested(self, now: float, *, slots: int, deadline: float) -> bool:
        """All `slots` busy and either nothing completed for a window, or the measured pace
        cannot drain the queue within `deadline` seconds."""
        if self.in_flight < slots:
            return False
        if now - self.last_progress >= RATE_WINDOW:
            return True
        return self.rate is not None and len(self.queue) > self.rate * deadline

    @property
    def idle(self) -> bool:
        """Nothing queued or running and no state worth keeping: the lane can go."""
        return (
            not self.queue
            and self.in_flight == 0
            and self.breaker.failures == 0
            and self.bucket is None
            and self.wake_at is None
        )
