"""The per-endpoint circuit breaker and the token bucket, driven with explicit times."""

from __future__ import annotations

import pytest

from dispatcher.core.breaker import Breaker, BreakerState, Verdict
from dispatcher.core.ratelimit import TokenBucket


def state(breaker: Breaker) -> BreakerState:
    return breaker.state  # a call, so that mypy does not narrow the property between events


def test_consecutive_failures_open_the_breaker_and_a_success_resets_the_count() -> None:
    """The breaker opens on the threshold-th consecutive failure, not on scattered ones."""
    breaker = Breaker(threshold=3, cooldown=10.0)
    for success in (False, False, True, False, False):
        breaker.record(success, now=0.0)
    assert state(breaker) is BreakerState.CLOSED
    breaker.record(False, now=1.0)
    assert state(breaker) is BreakerState.OPEN
    assert breaker.verdict(5.0) is Verdict.REFUSE
    assert breaker.probe_at == 11.0


def test_the_probe_time_admits_exactly_one_probe_and_the_rest_wait_for_it() -> None:
    """At the probe time one attempt is the probe (half-open); others wait for its answer."""
    breaker = Breaker(threshold=1, cooldown=10.0)
    breaker.record(False, now=0.0)
    assert breaker.verdict(9.9) is Verdict.REFUSE
    assert breaker.verdict(10.0) is Verdict.PROBE
    breaker.probe_started()
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.verdict(10.0) is Verdict.WAIT_FOR_PROBE


def test_state_changes_only_on_events_never_by_time_alone() -> None:
    """An open breaker long past its probe time is still `open` until a probe starts."""
    breaker = Breaker(threshold=1, cooldown=3.0)
    breaker.record(False, now=0.0)
    assert state(breaker) is BreakerState.OPEN
    assert breaker.verdict(1080.0) is Verdict.PROBE
    assert state(breaker) is BreakerState.OPEN


def test_a_successful_probe_closes_the_breaker() -> None:
    """A probe that succeeds closes the breaker and lets everything through again."""
    breaker = Breaker(threshold=1, cooldown=10.0)
    breaker.record(False, now=0.0)
    breaker.probe_started()
    breaker.record(True, now=10.5)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.verdict(10.5) is Verdict.GO
    assert breaker.probe_at is None


def test_an_abandoned_probe_lets_the_next_attempt_probe() -> None:
    """A probe that never reached the endpoint (suppressed, crashed) frees the probe slot."""
    breaker = Breaker(threshold=1, cooldown=10.0)
    breaker.record(False, now=0.0)
    breaker.probe_started()
    breaker.probe_abandoned()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.verdict(10.0) is Verdict.PROBE


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap() -> None:
    """Each failed probe doubles the cooldown, never past max_cooldown."""
    breaker = Breaker(threshold=1, cooldown=10.0, max_cooldown=30.0)
    breaker.record(False, now=0.0)
    cooldowns = []
    for _ in range(3):
        now = breaker.probe_at
        assert now is not None
        assert breaker.verdict(now) is Verdict.PROBE
        breaker.probe_started()
        breaker.record(False, now=now)
        cooldowns.append(breaker.current_cooldown)
    assert cooldowns == [20.0, 30.0, 30.0]
    assert state(breaker) is BreakerState.OPEN


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
