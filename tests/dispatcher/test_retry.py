"""The retry ladder and the status table, table-driven."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.core.models import AttemptOutcome, DeliveryStatus, DisabledReason, FailureKind
from dispatcher.core.retry import RetryPolicy, next_step

NOW = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
LADDER = RetryPolicy(delays=(5, 300, 1800, 7200, 18000, 36000, 36000), jitter=0.0)


def http(status: int, retry_after: float | None = None) -> AttemptOutcome:
    failure = None if 200 <= status < 300 else FailureKind.HTTP_STATUS
    return AttemptOutcome(
        status_code=status, failure=failure, duration_ms=1.0, retry_after=retry_after
    )


def broken(kind: FailureKind) -> AttemptOutcome:
    return AttemptOutcome(status_code=None, failure=kind, duration_ms=1.0)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_succeeds(status: int) -> None:
    """Every 2xx answer ends the delivery as succeeded, with no next attempt."""
    step = next_step(LADDER, http(status), 1, NOW, random.Random(0))
    assert (step.status, step.next_attempt_at, step.disable_endpoint) == (
        DeliveryStatus.SUCCEEDED,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("outcome", "attempt", "delay"),
    [
        (http(500), 1, 5),
        (http(301), 1, 5),
        (http(404), 2, 300),
        (broken(FailureKind.TIMEOUT), 3, 1800),
        (broken(FailureKind.CONNECT), 4, 7200),
        (broken(FailureKind.DNS), 5, 18000),
        (broken(FailureKind.TLS), 6, 36000),
        (broken(FailureKind.BLOCKED_DESTINATION), 7, 36000),
    ],
)
def test_failures_wait_the_ladder_step(outcome: AttemptOutcome, attempt: int, delay: int) -> None:
    """A failed attempt N (3xx included) is retried after the Nth delay of the ladder."""
    step = next_step(LADDER, outcome, attempt, NOW, random.Random(0))
    assert step.status is DeliveryStatus.PENDING
    assert step.next_attempt_at == NOW + timedelta(seconds=delay)


def test_the_default_ladder_makes_eight_attempts_over_about_27_and_a_half_hours() -> None:
    """Attempt 1 is immediate and seven delays follow: 8 attempts, 27h35m05s in total."""
    policy = RetryPolicy()
    assert policy.max_attempts == 8
    assert sum(policy.delays) == 27 * 3600 + 35 * 60 + 5


def test_the_eighth_failure_is_final() -> None:
    """After the last attempt of the ladder the delivery is failed and waits for a replay."""
    step = next_step(LADDER, http(500), 8, NOW, random.Random(0))
    assert (step.status, step.next_attempt_at) == (DeliveryStatus.FAILED, None)


def test_410_gone_fails_at_once_and_disables_the_endpoint() -> None:
    """410 Gone stops the ladder on the first attempt and asks to disable the endpoint."""
    step = next_step(LADDER, http(410), 1, NOW, random.Random(0))
    assert step.status is DeliveryStatus.FAILED
    assert step.disable_endpoint is DisabledReason.GONE


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "delay"),
    [
        (429, 7, 1, 7),  # within [5, 10]
        (503, 1, 1, 5),  # below the step: clamped up
        (502, 3600, 1, 10),  # above 2x the step: clamped down
        (504, 400, 2, 400),
        (429, 0, 2, 300),
    ],
)
def test_retry_after_is_honoured_for_throttling_statuses_within_step_and_twice_the_step(
    status: int, retry_after: float, attempt: int, delay: int
) -> None:
    """429/502/503/504 Retry-After sets the delay, clamped to [step, 2x step], unjittered."""
    policy = RetryPolicy(delays=LADDER.delays, jitter=0.2)
    step = next_step(policy, http(status, retry_after), attempt, NOW, random.Random(0))
    assert step.next_attempt_at == NOW + timedelta(seconds=delay)


def test_retry_after_on_other_statuses_is_ignored() -> None:
    """A Retry-After on a 500 does not change the ladder step."""
    step = next_step(LADDER, http(500, retry_after=9999), 1, NOW, random.Random(0))
    assert step.next_attempt_at == NOW + timedelta(seconds=5)


def test_jitter_stays_within_twenty_percent_and_varies() -> None:
    """With ±20 % jitter every delay lies in [0.8, 1.2] x step, and they are not all equal."""
    policy = RetryPolicy(delays=(100.0,), jitter=0.2)
    rng = random.Random(42)
    delays = {
        (next_step(policy, http(500), 1, NOW, rng).next_attempt_at - NOW).total_seconds()  # type: ignore[operator]
        for _ in range(200)
    }
    assert min(delays) >= 80.0
    assert max(delays) <= 120.0
    assert len(delays) > 100


@pytest.mark.parametrize(
    ("delays", "jitter"), [((), 0.2), ((5.0, -1.0), 0.2), ((5.0,), 1.0), ((5.0,), -0.1)]
)
def test_invalid_policies_are_refused(delays: tuple[float, ...], jitter: float) -> None:
    """An empty ladder, a negative delay or jitter outside [0, 1) is a configuration error."""
    with pytest.raises(ValueError, match=r"ladder|jitter"):
        RetryPolicy(delays=delays, jitter=jitter)
