"""Endpoint health's pure rules (dispatcher.core.health): bins, percentiles, buckets, the
rollup and runs of a batch, and the chart's resolution and points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.core.health import (
    LATENCY_BINS,
    MAX_STATS_BUCKETS,
    StatsBucket,
    bucket_start,
    hourly,
    latency_bin,
    percentile,
    rollup,
    stats_resolution,
    stats_series,
    streaks,
    success_rate,
    windows,
)
from dispatcher.core.models import (
    AttemptOutcome,
    AttemptResult,
    DeliveryStatus,
    FailureKind,
    Lease,
)

T0 = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def attempt(
    endpoint_id: str, at: datetime, *, ok: bool = True, ms: float = 10.0, owner: str = "w1"
) -> AttemptResult:
    return AttemptResult(
        delivery_id="dlv_1",
        endpoint_id=endpoint_id,
        attempt=1,
        started_at=at,
        outcome=AttemptOutcome(
            status_code=200 if ok else 503,
            failure=None if ok else FailureKind.HTTP_STATUS,
            duration_ms=ms,
        ),
        status=DeliveryStatus.SUCCEEDED if ok else DeliveryStatus.FAILED,
        next_attempt_at=None,
        lease=Lease(owner, 1),
    )


@pytest.mark.parametrize(
    ("ms", "index"),
    [(0.0, 0), (0.99, 0), (1.0, 1), (1.99, 1), (2.0, 2), (10.0, 4), (1000.0, 10), (65535.9, 16)],
)
def test_a_duration_falls_in_its_power_of_two_bin(ms: float, index: int) -> None:
    """Bin 0 holds under 1 ms; bin i holds [2^(i-1), 2^i) ms."""
    assert latency_bin(ms) == index


def test_the_last_bin_takes_everything_longer() -> None:
    """A timeout of minutes lands in the last bin, not past it."""
    assert latency_bin(65536.0) == latency_bin(10**7) == LATENCY_BINS - 1


def test_percentiles_interpolate_inside_the_bin_and_need_attempts() -> None:
    """The rank's bin is found by summing counts and the value is interpolated
    geometrically inside it; no attempts, no percentile."""
    counts = [0] * LATENCY_BINS
    assert percentile(counts, 0.5) is None
    counts[4] = 100  # [8, 16)
    assert percentile(counts, 0.5) == round(8 * 2**0.5)
    assert percentile(counts, 1.0) == 16
    counts[0] = 100  # [0, 1)
    assert percentile(counts, 0.25) == 0
    assert percentile(counts, 0.75) == round(8 * 2**0.5)


def test_success_rates_are_null_without_attempts() -> None:
    """A window with no attempts has no rate, not a rate of zero."""
    assert (success_rate(0, 0), success_rate(3, 1), success_rate(0, 2)) == (None, 0.75, 0.0)


def test_buckets_are_five_minutes_aligned_to_the_epoch() -> None:
    """Any moment falls in the bucket starting at the last multiple of five minutes."""
    assert bucket_start(T0 + 4 * MINUTE + timedelta(seconds=59)) == T0
    assert bucket_start(T0 + 5 * MINUTE) == T0 + 5 * MINUTE
    assert windows(T0 + 2 * MINUTE) == (T0 - timedelta(hours=1), T0 - timedelta(days=1))
    # The hour window starts at a five-minute bucket, the day window at an hour.
    later = T0 + 7 * MINUTE
    assert windows(later) == (T0 + 5 * MINUTE - timedelta(hours=1), T0 - timedelta(days=1))


def test_a_batch_rolls_up_by_endpoint_bucket_and_writer() -> None:
    """One increment per (endpoint, bucket, writer) in key order, counting outcomes and
    latency bins."""
    batch = [
        attempt("ep_b", T0),
        attempt("ep_a", T0 + MINUTE, ok=False, ms=1000.0),
        attempt("ep_a", T0 + 2 * MINUTE),
        attempt("ep_a", T0 + 2 * MINUTE, owner="w2"),
        attempt("ep_a", T0 + 6 * MINUTE),
    ]
    found = [
        (i.endpoint_id, i.bucket_start, i.writer, i.succeeded, i.failed) for i in rollup(batch)
    ]
    assert found == [
        ("ep_a", T0, "w1", 1, 1),
        ("ep_a", T0, "w2", 1, 0),
        ("ep_a", T0 + 5 * MINUTE, "w1", 1, 0),
        ("ep_b", T0, "w1", 1, 0),
    ]
    first = rollup(batch)[0].latency
    assert (first[latency_bin(10.0)], first[latency_bin(1000.0)], sum(first)) == (1, 1, 2)


def test_the_hourly_rollup_sums_a_batchs_buckets_per_hour() -> None:
    """Five-minute increments of one endpoint and writer within an hour become one hourly
    increment; another hour or writer stays apart."""
    batch = [
        attempt("ep_a", T0),
        attempt("ep_a", T0 + 10 * MINUTE, ok=False),
        attempt("ep_a", T0 + 10 * MINUTE, owner="w2"),
        attempt("ep_a", T0 + 61 * MINUTE),
    ]
    found = [
        (h.endpoint_id, h.bucket_start, h.writer, h.succeeded, h.failed)
        for h in hourly(rollup(batch))
    ]
    assert found == [
        ("ep_a", T0, "w1", 1, 1),
        ("ep_a", T0, "w2", 1, 0),
        ("ep_a", T0 + timedelta(hours=1), "w1", 1, 0),
    ]


def test_a_batch_tells_each_endpoints_run_in_start_order() -> None:
    """The run counts failures after the batch's latest success (by start time, whatever
    the order of completion), or all of them when none succeeded."""
    batch = [
        attempt("ep_a", T0 + 3 * MINUTE, ok=False),
        attempt("ep_a", T0 + MINUTE, ok=False),
        attempt("ep_a", T0 + 2 * MINUTE),
        attempt("ep_b", T0, ok=False),
        attempt("ep_b", T0 + MINUTE, ok=False),
    ]
    found = [
        (s.endpoint_id, s.last_success, s.last_failure, s.trailing_failures) for s in streaks(batch)
    ]
    assert found == [
        ("ep_a", T0 + 2 * MINUTE, T0 + 3 * MINUTE, 1),
        ("ep_b", None, T0 + MINUTE, 2),
    ]


@pytest.mark.parametrize(
    ("span", "width"),
    [
        (timedelta(hours=1), 300),
        (timedelta(days=1), 300),
        (timedelta(days=7), 2100),
        (timedelta(days=90), 26100),
    ],
)
def test_a_chart_never_has_more_than_its_bound_of_points(span: timedelta, width: int) -> None:
    """The width is the smallest multiple of five minutes keeping the points in bound."""
    since = T0 + timedelta(seconds=17)
    assert stats_resolution(since, since + span) == width
    points = stats_series([], since=since, until=since + span, width=width)
    assert 1 <= len(points) <= MAX_STATS_BUCKETS


def test_chart_points_sum_the_buckets_they_cover_and_empty_ones_are_zero() -> None:
    """Every point is present; stored buckets add into the point they start in."""
    bins = tuple(1 if i == 4 else 0 for i in range(LATENCY_BINS))
    stored = [
        StatsBucket(start=T0, succeeded=2, failed=1, latency=bins),
        StatsBucket(start=T0 + 5 * MINUTE, succeeded=1, failed=0, latency=bins),
        StatsBucket(start=T0 + 20 * MINUTE, succeeded=0, failed=4, latency=bins),
    ]
    points = stats_series(stored, since=T0 + MINUTE, until=T0 + 30 * MINUTE, width=600)
    assert [(p.start, p.succeeded, p.failed, sum(p.latency)) for p in points] == [
        (T0, 3, 1, 2),
        (T0 + 10 * MINUTE, 0, 0, 0),
        (T0 + 20 * MINUTE, 0, 4, 1),
    ]
