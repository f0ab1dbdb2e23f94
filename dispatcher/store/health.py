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


def add_on_conflict(table: str, columns: tuple[str, ...]) -> str:
    """A rollup upsert's conflict clause: every counter adds the batch's increment."""
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)
    return f"ON CONFLICT (endpoint_id, bucket_start, writer) DO UPDATE SET {added}"


ADD_ON_CONFLICT = add_on_conflict("endpoint_health", ("succeeded", "failed", *LATENCY_COLUMNS))
ADD_HOURLY_ON_CONFLICT = add_on_conflict("endpoint_health_hourly", ("succeeded", "failed"))


# A health read's sums: the day's successes and failures (from the hourly rollup, 25 rows per
# writer), and the hour's with its latency bins (13 five-minute buckets per writer).
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
