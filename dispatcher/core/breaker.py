"""Per-endpoint circuit breaker. Pure: the caller passes the monotonic time.

closed ──(threshold consecutive failures)──▶ open ──(probe time reached, one attempt)──▶ half-open
  ▲                                            ▲                                            │
  └────────────────── probe succeeded ─────────┴────────────── probe failed ────────────────┘

The states are what the gauge `webhooks_breakers{state}` shows, and each changes only on an
event (never by time alone): `open` from the failure that opened it until a probe starts,
`half_open` exactly while the one probe is in flight.

The cooldown rule: the first cooldown is `cooldown`; each failed probe doubles it, up to
`max_cooldown`; a successful probe closes the breaker and resets it. While open, an endpoint's
deliveries are not attempted: they go back to the store due at the probe time
(`probe_at`). While the probe is out, the others wait for its answer; once it succeeds they
all go at once (within the endpoint's caps and rate limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Verdict(StrEnum):
    """What the breaker says about starting an attempt now."""

    GO = "go"  # closed: attempt
    PROBE = "probe"  # open and the probe time has come: this attempt is the probe
    WAIT_FOR_PROBE = "wait_for_probe"  # a probe is out: its answer decides
    REFUSE = "refuse"  # open: not before `probe_at`


@dataclass(slots=True)
class Breaker:
    threshold: int
    cooldown: float
    max_cooldown: float = 600.0
    failures: int = 0
    opened_at: float | None = None
    current_cooldown: float = 0.0
    probing: bool = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        return BreakerState.HALF_OPEN if self.probing else BreakerState.OPEN

    @property
    def probe_at(self) -> float | None:
        """When the next probe may start (monotonic), or None while closed."""
        if self.opened_at is None:
            return None
        return self.opened_at + self.current_cooldown

    def verdict(self, now: float) -> Verdict:
        """May an attempt start now? (Asks only: `probe_started` commits a probe.)"""
        probe_at = self.probe_at
        if probe_at is None:
            return Verdict.GO
        if self.probing:
            return Verdict.WAIT_FOR_PROBE
        return Verdict.PROBE if now >= probe_at else Verdict.REFUSE

    def probe_started(self) -> None:
        self.probing = True

    def probe_abandoned(self) -> None:
        """The probe never reached the endpoint (suppressed, crashed): another may go."""
        self.probing = False

    def record(self, success: bool, now: float) -> None:
        """An attempt's outcome. A failed probe reopens for twice as long."""
        if success:
            self.failures = 0
            self.opened_at = None
            self.current_cooldown = 0.0
            self.probing = False
            return
        self.failures += 1
        if self.probing:
            self.probing = False
            self.opened_at = now
            self.current_cooldown = min(self.current_cooldown * 2, self.max_cooldown)
        elif self.opened_at is None and self.failures >= self.threshold:
            self.opened_at = now
            self.current_cooldown = min(self.cooldown, self.max_cooldown)
