"""The retry ladder: what happens after an attempt. Pure: time and randomness are parameters.

`RetryPolicy` is built once from settings; the per-delivery state (how many attempts were
made, and how many of them before the latest replay restarted the ladder) lives in the store
row; `next_step` decides from the attempt's position on the ladder, not its number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from dispatcher.core.models import AttemptOutcome, DeliveryStatus, DisabledReason, FailureKind

# The status table, following Standard Webhooks, "Operational considerations → Delivery
# success and failure":
#   2xx            success.
#   3xx            failure: redirects are never followed (the URL should be updated instead).
#   410 Gone       the receiver wants no more webhooks: disable the endpoint, stop sending.
#   429, 502, 504  the receiver is under load: throttle; honour Retry-After ("some responses
#   (503 too)      may also include a Retry-After header (e.g. 503)") clamped to the ladder
#                  step .. 2x the step, so a receiver can slow us down but not stall or
#                  hammer the ladder.
#   anything else  failure, retried on the ladder.
GONE = 410
THROTTLING_STATUSES = frozenset({429, 502, 503, 504})

# Every failure kind is retried on the ladder: a blocked destination or a DNS failure may be
# fixed by the endpoint's owner (a DNS change, an allow-list change) before the ladder ends.
# Only 410 stops the ladder early. CIRCUIT_OPEN never reaches here: nothing was sent.
RETRYABLE: dict[FailureKind, bool] = {
    FailureKind.HTTP_STATUS: True,
    FailureKind.TIMEOUT: True,
    FailureKind.CONNECT: True,
    FailureKind.DNS: True,
    FailureKind.TLS: True,
    FailureKind.BLOCKED_DESTINATION: True,
    FailureKind.INVALID_RESPONSE: True,
    FailureKind.CIRCUIT_OPEN: True,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """The ladder: `delays[i]` is the wait after attempt i + 1. Attempt 1 is immediate."""

    delays: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.delays or any(d < 0 for d in self.delays):
            raise ValueError("a retry ladder needs at least one non-negative delay")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1


class Rng(Protocol):
    """Where jitter comes from: `random.Random` in the engine, a seeded one in tests."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """The decision after one attempt."""

    status: DeliveryStatus
    next_attempt_at: datetime | None = None
    disable_endpoint: DisabledReason | None = None


def retry_delay(policy: RetryPolicy, outcome: AttemptOutcome, attempt: int, rng: Rng) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based) on the ladder."""
    step = policy.delays[min(attempt, len(policy.delays)) - 1]
    if (
        outcome.retry_after is not None
        and outcome.status_code in THROTTLING_STATUSES
        and outcome.failure is FailureKind.HTTP_STATUS
    ):
        return min(max(outcome.retry_after, step), 2 * step)
    return step * rng.uniform(1.0 - policy.jitter, 1.0 + policy.jitter)


def next_step(
    policy: RetryPolicy,
    outcome: AttemptOutcome,
    attempt: int,
    now: datetime,
    rng: Rng,
) -> Step:
    """Decide what follows the attempt at position `attempt` (1-based) on the ladder — its
    number since the delivery's latest replay (`Claim.ladder_position`) — that ended in
    `outcome`."""
    if outcome.succeeded:
        return Step(status=DeliveryStatus.SUCCEEDED)
    if outcome.failure is FailureKind.HTTP_STATUS and outcome.status_code == GONE:
        return Step(status=DeliveryStatus.FAILED, disable_endpoint=DisabledReason.GONE)
    retryable = outcome.failure is None or RETRYABLE[outcome.failure]
    if not retryable or attempt >= policy.max_attempts:
        return Step(status=DeliveryStatus.FAILED)
    delay = retry_delay(policy, outcome, attempt, rng)
    return Step(status=DeliveryStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay))
