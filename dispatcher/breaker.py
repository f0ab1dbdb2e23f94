"""Per-endpoint circuit breaker. Pure: the caller passes the monotonic time.

closed ──(threshold consecutive failures)──▶ open ──(cooldown passed)──▶ half-open
  ▲                                           ▲                              │
  └────────────── probe succeeded ────────────┴───── probe failed ───────────┘

While open, an endpoint's deliveries are not attempted: they go back to the store due at
the next probe time, instead of each burning a connection and a timeout. Each failed probe
doubles the cooldown, up to `max_cooldown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class Breaker:
    threshold: int
    cooldown: float
    max_cooldown: float = 600.0
    failures: int = 0
    opened_at: float | None = None
    current_cooldown: float = 0.0
    probing: bool = False

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if now >= self.opened_at + self.current_cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self, now: float) -> bool:
        """May an attempt start now? In half-open state exactly one probe is let through."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def retry_at(self, now: float) -> float:
        """When a refused attempt should be tried again: the next probe time. While a probe
        is out (half-open), that is one cooldown away — never "now", or the refused work
        would be handed back and claimed again in a tight loop until the probe answers."""
        if self.opened_at is None:
            return now
        probe = self.opened_at + self.current_cooldown
        return now + self.current_cooldown if now >= probe else probe

    def record(self, success: bool, now: float) -> None:
        if success:
            self.failures = 0
            self.opened_at = None
            self.current_cooldown = 0.0
            self.probing = False
            return
        self.failures += 1
        if self.probing:  # the probe failed: open again, for longer
            self.probing = False
            self.opened_at = now
            self.current_cooldown = min(self.current_cooldown * 2, self.max_cooldown)
        elif self.opened_at is None and self.failures >= self.threshold:
            self.opened_at = now
            self.current_cooldown = self.cooldown
