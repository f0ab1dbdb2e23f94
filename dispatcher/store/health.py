"""What both backends share about endpoint health (dispatcher.core.health): the rollup
table's latency columns, the statements' common text, and the mapping from the rows a health
read returns to `EndpointHealth`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dispatcher.core.breaker import BreakerState
from dispatcher.core.health import LATENCY_BINS, EndpointHealth, StatsBucket
from dispatcher.store.schema import Row, When

LATENCY_COLUMNS = tuple(f"l{i:02d}" for i in range(LATENCY_BINS))

# An endpoint is failing when its reported breaker is not closed, its latest recorded
# attempt failed (a run of failures is going on), or it was disabled for failing (410 Gone,
# or no success for WEBHOOKS_DISABLE_AFTER) — not when an operator disabled it by hand.
FAILING = """(
    e.breaker <> 'closed' OR e.consecutive_failures > 0
    OR (e.status = 'disabled' AND e.disabled_reason IN ('gone', 'failing'))
)"""

# The rollup upsert's conflict clause: every counter adds the batch's increment.
ADD_ON_CONFLICT = "ON CONFLICT (endpoint_id, bucket_start, writer) DO UPDATE SET " + ", ".join(
    f"{c} = endpoint_health.{c} + excluded.{c}" for c in ("succeeded", "failed", *LATENCY_COLUMNS)
)


# A health read's sums: the day's successes and failures (two columns of up to 289 buckets
# per writer), and the hour's with its latency bins (13 buckets per writer).
DAY_SUMS = "endpoint_id, sum(succeeded) AS succeeded_24h, sum(failed) AS failed_24h"
HOUR_SUMS = ", ".join(
    [
        "endpoint_id",
        "sum(succeeded) AS succeeded_1h",
        "sum(failed) AS failed_1h",
        *(f"sum({c}) AS {c}" for c in LATENCY_COLUMNS),
    ]
)


STATS_SUMS = ", ".join(f"sum({c}) AS {c}" for c in ("succeeded", "failed", *LATENCY_COLUMNS))


def health_from_rows(
    endpoint: Row, day: Row | None, hour: Row | None, when: When
) -> EndpointHealth:
    """An endpoint's health from its row (with `pending` and `failed` counts) and its
    window sums (None: no attempt in that window)."""
    breaker = BreakerState(endpoint["breaker"])
    probe = endpoint["breaker_probe_at"]
    return EndpointHealth(
        succeeded_1h=0 if hour is None else int(hour["succeeded_1h"]),
        failed_1h=0 if hour is None else int(hour["failed_1h"]),
        succeeded_24h=0 if day is None else int(day["succeeded_24h"]),
        failed_24h=0 if day is None else int(day["failed_24h"]),
        latency_1h=(
            (0,) * LATENCY_BINS if hour is None else tuple(int(hour[c]) for c in LATENCY_COLUMNS)
        ),
        last_success_at=_maybe(when, endpoint["last_success_at"]),
        last_failure_at=_maybe(when, endpoint["last_failure_at"]),
        consecutive_failures=endpoint["consecutive_failures"],
        breaker=breaker,
        next_probe_at=_maybe(when, probe) if breaker is BreakerState.OPEN else None,
        pending=endpoint["pending"],
        failed=endpoint["failed"],
    )


def stats_from_rows(rows: Iterable[Row], when: When) -> list[StatsBucket]:
    return [
        StatsBucket(
            start=when(row["bucket_start"]),
            succeeded=int(row["succeeded"]),
            failed=int(row["failed"]),
            latency=tuple(int(row[c]) for c in LATENCY_COLUMNS),
        )
        for row in rows
    ]


def _maybe(when: When, value: object) -> datetime | None:
    return None if value is None else when(value)
