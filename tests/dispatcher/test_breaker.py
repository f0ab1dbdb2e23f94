"""The per-endpoint circuit breaker and the token bucket, driven with explicit times."""

from __future__ import annotations

import pytest

from dispatcher.breaker import Breaker, BreakerState
from dispatcher.ratelimit import TokenBucket


def test_consecutive_failures_open_the_breaker_and_a_success_resets_the_count() -> None:
    """The breaker opens on the threshold-th consecutive failure, not on scattered ones."""
    breaker = Breaker(threshold=3, cooldown=10.0)
    for success in (False, False, True, False, False):
        breaker.record(success, now=0.0)
    assert breaker.state(0.0) is BreakerState.CLOSED
    breaker.record(False, now=1.0)
    assert breaker.state(1.0) is BreakerState.OPEN
    assert not breaker.allow(5.0)
    assert breaker.retry_at(5.0) == 11.0


def test_half_open_lets_exactly_one_probe_through() -> None:
    """After the cooldown one probe may go; others wait until it reports."""
    breaker = Breaker(threshold=1, cooldown=10.0)
    breaker.record(False, now=0.0)
    assert breaker.state(10.0) is BreakerState.HALF_OPEN
    assert [breaker.allow(10.0), breaker.allow(10.0)] == [True, False]


def test_work_refused_while_a_probe_is_out_waits_a_cooldown() -> None:
    """In half-open state the refused deliveries are due one cooldown later, not at once."""
    breaker = Breaker(threshold=1, cooldown=10.0)
    breaker.record(False, now=0.0)
    assert breaker.allow(12.0)
    assert not breaker.allow(12.5)
    assert breaker.retry_at(12.5) == 22.5


def test_a_successful_probe_closes_the_breaker() -> None:
    """A probe that succeeds closes the breaker and lets everything through again."""
    breaker = Breaker(threshold=1, cooldown=10.0)
    breaker.record(False, now=0.0)
    assert breaker.allow(10.0)
    breaker.record(True, now=10.5)
    assert breaker.state(10.5) is BreakerState.CLOSED
    assert [breaker.allow(10.5), breaker.allow(10.5)] == [True, True]


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap() -> None:
    """Each failed probe doubles the cooldown, never past max_cooldown."""
    breaker = Breaker(threshold=1, cooldown=10.0, max_cooldown=30.0)
    breaker.record(False, now=0.0)
    cooldowns = []
    now = 0.0
    for _ in range(3):
        now = breaker.retry_at(now)
        assert breaker.allow(now)
        breaker.record(False, now=now)
        cooldowns.append(breaker.current_cooldown)
    assert cooldowns == [20.0, 30.0, 30.0]
    assert breaker.state(now + 29.0) is BreakerState.OPEN


def test_token_bucket_grants_the_burst_then_paces_at_the_rate() -> None:
    """A 2/s bucket with burst 2 grants two at once, then one every half second."""
    bucket = TokenBucket(rate=2.0, burst=2.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0


def test_token_bucket_refuses_nonsense_rates() -> None:
    """A zero rate or a burst below one token is a configuration error."""
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0.0, burst=1.0)
