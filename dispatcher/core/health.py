"""Endpoint health from rolled-up counters (pure).

Every batch of attempt results the recorder stores also adds to per-endpoint time buckets
(`BUCKET_SECONDS` wide, keyed by endpoint, bucket start and the replica that wrote them):
successes, failures, and the attempts' durations as counts in fixed log-spaced latency bins.
A health read or a chart then sums at most a day's worth of buckets per replica — never the
attempts themselves — and percentiles come from the summed bins.

Latency bins (milliseconds): bin 0 holds [0, 1), bin i (1 ≤ i ≤ 16) holds [2^(i-1), 2^i),
the last bin everything from 65 536 ms. A percentile is interpolated geometrically inside
its bin, so it is within a factor of √2 of the true value (exact at bin edges).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from dispatcher.core.breaker import BreakerState
from dispatcher.core.models import AttemptResult

BUCKET_SECONDS = 300  # one rollup bucket: five minutes
HOUR_SECONDS = 3600  # one bucket of the hourly rollup (successes and failures only)
LATENCY_BINS = 18
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_STATS_BUCKETS = 300  # a chart never has more points than this (a day: 289)
MAX_STATS_RANGE = timedelta(days=90)
KEEP_AT_LEAST = timedelta(hours=48)  # buckets outlive WEBHOOKS_RETENTION when it is shorter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HealthFilter(StrEnum):
    """`GET /v1/webhooks?health=`."""

    FAILING = "failing"


def bucket_start(moment: datetime, seconds: int = BUCKET_SECONDS) -> datetime:
    """The start of the bucket `moment` falls in (buckets are aligned to the Unix epoch)."""
    elapsed = (moment - _EPOCH) // timedelta(seconds=seconds)
    return _EPOCH + timedelta(seconds=elapsed * seconds)


def latency_bin(duration_ms: float) -> int:
    """The bin an attempt of `duration_ms` is counted in."""
    if duration_ms < 1.0:
        return 0
    return min(math.floor(math.log2(duration_ms)) + 1, LATENCY_BINS - 1)


def _bin_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, 1.0
    low = float(2 ** (index - 1))
    return low, low * 2  # the last bin is open-ended: its upper bound is an estimate


def percentile(counts: Sequence[int], q: float) -> int | None:
    """The q-quantile (0 < q ≤ 1) in whole milliseconds of the attempts counted in `counts`
    (one count per latency bin), or None when there are none."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            low, high = _bin_bounds(index)
            fraction = max(0.0, min(1.0, (rank - seen) / count))
            if index == 0:
                return round(high * fraction)
            return round(low * float((high / low) ** fraction))
        seen += count
    return round(_bin_bounds(len(counts) - 1)[1])  # pragma: no cover - rank <= total


def success_rate(succeeded: int, failed: int) -> float | None:
    total = succeeded + failed
    return None if total == 0 else succeeded / total


@dataclass(frozen=True, slots=True, kw_only=True)
class Increment:
    """What one batch adds to one bucket of one endpoint, as one writer (replica)."""

    endpoint_id: str
    bucket_start: datetime
    writer: str
    succeeded: int
    failed: int
    latency: tuple[int, ...]  # LATENCY_BINS counts


def rollup(results: Iterable[AttemptResult]) -> list[Increment]:
    """A batch's attempts grouped by (endpoint, bucket, writer), in key order. An attempt
    counts in the bucket its start falls in; its writer is the replica whose lease it ran
    under, so replicas never add to the same row."""
    groups: dict[tuple[str, datetime, str], tuple[list[int], list[int]]] = {}
    for result in results:
        key = (result.endpoint_id, bucket_start(result.started_at), result.lease.owner)
        tally, bins = groups.setdefault(key, ([0, 0], [0] * LATENCY_BINS))
        tally[0 if result.outcome.succeeded else 1] += 1
        bins[latency_bin(result.outcome.duration_ms)] += 1
    return [
        Increment(
            endpoint_id=endpoint_id,
            bucket_start=start,
            writer=writer,
            succeeded=tally[0],
            failed=tally[1],
            latency=tuple(bins),
        )
        for (endpoint_id, start, writer), (tally, bins) in sorted(groups.items())
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Streak:
    """What a batch says about one endpoint's run of failures: its latest success and
    failure, and the failures after its latest success (all of them when none succeeded)."""

    endpoint_id: str
    last_success: datetime | None
    last_failure: datetime | None
    trailing_failures: int


def streaks(results: Iterable[AttemptResult]) -> list[Streak]:
    """Per endpoint (in id order), from the batch's attempts taken in start order."""
    ordered = sorted(results, key=lambda r: (r.endpoint_id, r.started_at))
    found: dict[str, Streak] = {}
    for r in ordered:
        before = found.get(r.endpoint_id) or Streak(
            endpoint_id=r.endpoint_id, last_success=None, last_failure=None, trailing_failures=0
        )
        if r.outcome.succeeded:
            found[r.endpoint_id] = Streak(
                endpoint_id=r.endpoint_id,
                last_success=r.started_at,
                last_failure=before.last_failure,
                trailing_failures=0,
            )
        else:
            found[r.endpoint_id] = Streak(
                endpoint_id=r.endpoint_id,
                last_success=before.last_success,
                last_failure=r.started_at,
                trailing_failures=before.trailing_failures + 1,
            )
    return list(found.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerTransition:
    """A replica's breaker for an endpoint changed state at `at` (wall time); `probe_at` is
    when it may next probe (None unless open)."""

    endpoint_id: str
    state: BreakerState
    at: datetime
    probe_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointHealth:
    """An endpoint's health as stored: window sums of its buckets and its row's columns."""

    succeeded_1h: int = 0
    failed_1h: int = 0
    succeeded_24h: int = 0
    failed_24h: int = 0
    latency_1h: tuple[int, ...] = (0,) * LATENCY_BINS
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    consecutive_failures: int = 0
    breaker: BreakerState = BreakerState.CLOSED
    next_probe_at: datetime | None = None
    pending: int = 0
    failed: int = 0


def hourly(increments: Iterable[Increment]) -> list[Increment]:
    """The same increments summed per hour (successes and failures; no latency bins): what
    the day window reads, 25 rows per writer instead of 289."""
    groups: dict[tuple[str, datetime, str], list[int]] = {}
    for i in increments:
        key = (i.endpoint_id, bucket_start(i.bucket_start, HOUR_SECONDS), i.writer)
        tally = groups.setdefault(key, [0, 0])
        tally[0] += i.succeeded
        tally[1] += i.failed
    return [
        Increment(
            endpoint_id=endpoint_id,
            bucket_start=start,
            writer=writer,
            succeeded=tally[0],
            failed=tally[1],
            latency=(),
        )
        for (endpoint_id, start, writer), tally in sorted(groups.items())
    ]


def windows(now: datetime) -> tuple[datetime, datetime]:
    """The first five-minute bucket of the last hour, and the first hourly bucket of the last
    day. The hour window is the current bucket and those starting up to an hour before its
    start (60 to 65 minutes); the day window is the hourly buckets from the one holding the
    moment a day before that start (24 to 25 hours)."""
    current = bucket_start(now)
    return current - HOUR, bucket_start(current - DAY, HOUR_SECONDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsBucket:
    """One point of a chart: the attempts that started in [start, start + width)."""

    start: datetime
    succeeded: int
    failed: int
    latency: tuple[int, ...]


def stats_resolution(since: datetime, until: datetime) -> int:
    """The width in seconds of a chart's buckets over [since, until): a multiple of
    BUCKET_SECONDS giving at most MAX_STATS_BUCKETS points."""
    span = (bucket_start(until - timedelta(microseconds=1)) - bucket_start(since)).total_seconds()
    base = int(span // BUCKET_SECONDS) + 1
    return BUCKET_SECONDS * max(1, math.ceil(base / MAX_STATS_BUCKETS))


def stats_series(
    stored: Iterable[StatsBucket], *, since: datetime, until: datetime, width: int
) -> list[StatsBucket]:
    """Every point from `since`'s bucket up to `until` (empty ones included), each summing
    the stored rollup buckets that start within it."""
    first = bucket_start(since)
    count = max(1, math.ceil((until - first).total_seconds() / width))
    sums = [([0, 0], [0] * LATENCY_BINS) for _ in range(count)]
    for row in stored:
        index = int((row.start - first).total_seconds() // width)
        if 0 <= index < count:
            tally, bins = sums[index]
            tally[0] += row.succeeded
            tally[1] += row.failed
            for i, n in enumerate(row.latency):
                bins[i] += n
    return [
        StatsBucket(
            start=first + timedelta(seconds=i * width),
            succeeded=tally[0],
            failed=tally[1],
            latency=tuple(bins),
        )
        for i, (tally, bins) in enumerate(sums)
    ]
