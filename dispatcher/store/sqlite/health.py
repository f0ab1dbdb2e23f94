"""Endpoint health on the SQLite backend (dispatcher.core.health): `record`, which the
complete path runs inside its transaction to add a batch's attempts to the rollup buckets and
to the endpoints' runs of failures, and `HealthMethods`, mixed into `SQLiteStore`: breaker
transitions, health reads, chart buckets, the failing endpoints and the buckets' purge.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import cast

from dispatcher.core.health import (
    BreakerTransition,
    EndpointHealth,
    StatsBucket,
    hourly,
    rollup,
    streaks,
    windows,
)
from dispatcher.core.models import AttemptResult, Endpoint
from dispatcher.store import schema
from dispatcher.store.health import (
    ADD_HOURLY_ON_CONFLICT,
    ADD_ON_CONFLICT,
    DAY_SUMS,
    FAILING,
    HOUR_SUMS,
    LATENCY_COLUMNS,
    STATS_SUMS,
    health_from_rows,
    stats_from_rows,
)
from dispatcher.store.sqlite.encoding import dt, json_list, maybe_us, us
from dispatcher.store.sqlite.transactions import Runner


def record(conn: sqlite3.Connection, results: Sequence[AttemptResult]) -> None:
    """Run inside `complete`'s transaction: one upsert per (endpoint, bucket, writer), one per
    (endpoint, hour, writer), and one update per endpoint whose run of failures (or reported
    breaker) changes."""
    increments = rollup(results)
    conn.executemany(
        _ADD_TO_BUCKET,
        [
            (i.endpoint_id, us(i.bucket_start), i.writer, i.succeeded, i.failed, *i.latency)
            for i in increments
        ],
    )
    conn.executemany(
        _ADD_TO_HOUR,
        [
            (i.endpoint_id, us(i.bucket_start), i.writer, i.succeeded, i.failed)
            for i in hourly(increments)
        ],
    )
    conn.executemany(
        _UPDATE_STREAK,
        [
            {
                "id": s.endpoint_id,
                "ok": maybe_us(s.last_success),
                "fail": maybe_us(s.last_failure),
                "trailing": s.trailing_failures,
            }
            for s in streaks(results)
        ],
    )


class HealthMethods:
    """`Store`'s health methods on SQLite."""

    async def record_breakers(self, transitions: Sequence[BreakerTransition]) -> int:
        return await cast(Runner, self)._change_many(
            _RECORD_BREAKER,
            [
                (t.state.value, us(t.at), maybe_us(t.probe_at), t.endpoint_id, us(t.at))
                for t in transitions
            ],
        )

    async def endpoint_health(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, EndpointHealth]:
        if not endpoint_ids:
            return {}
        hour, day = windows(now)
        ids = json_list(sorted(set(endpoint_ids)))

        db = cast(Runner, self)
        rows = await db._all(_ENDPOINT_HEALTH, (ids,))
        days = {row[0]: row for row in await db._all(_DAY_SUMS, (ids, us(day)))}
        hours = {row[0]: row for row in await db._all(_HOUR_SUMS, (ids, us(hour)))}
        return {
            row["id"]: health_from_rows(row, days.get(row["id"]), hours.get(row["id"]), dt)
            for row in rows
        }

    async def endpoint_stats(
        self, endpoint_id: str, *, since: datetime, until: datetime
    ) -> list[StatsBucket]:
        rows = await cast(Runner, self)._all(_STATS, (endpoint_id, us(since), us(until)))
        return stats_from_rows(rows, dt)

    async def failing_endpoints(
        self, organization_id: str | None, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        rows = await cast(Runner, self)._all(
            _FAILING, {"org": organization_id, "after": after, "limit": limit}
        )
        return [schema.endpoint_from_row(row, dt) for row in rows]

    async def purge_health(self, *, before: datetime) -> int:
        def work(conn: sqlite3.Connection) -> int:
            cutoff = (us(before),)
            conn.execute("DELETE FROM endpoint_health_hourly WHERE bucket_start < ?", cutoff)
            return conn.execute(
                "DELETE FROM endpoint_health WHERE bucket_start < ?", cutoff
            ).rowcount

        return await cast(Runner, self)._write(work)


_ADD_TO_BUCKET = f"""
    INSERT INTO endpoint_health (endpoint_id, bucket_start, writer, succeeded, failed,
        {", ".join(LATENCY_COLUMNS)})
    VALUES (?, ?, ?, ?, ?, {", ".join("?" for _ in LATENCY_COLUMNS)})
    {ADD_ON_CONFLICT}
"""  # noqa: S608 - constant text

# A batch with a success restarts the run at its failures after that success — unless a
# failure later than that success is already recorded (another replica's), which keeps the
# run going. A success after the breaker's last reported transition reports it closed. A
# healthy endpoint (no failure in the batch, no run, breaker closed) is not written.
_UPDATE_STREAK = """
    UPDATE endpoints SET
        consecutive_failures = CASE
            WHEN :ok IS NULL OR :ok < coalesce(last_failure_at, :ok)
            THEN consecutive_failures + :trailing ELSE :trailing END,
        last_failure_at = max(coalesce(last_failure_at, :fail), coalesce(:fail, last_failure_at)),
        breaker = CASE WHEN :ok > coalesce(breaker_changed_at, :ok - 1) THEN 'closed'
            ELSE breaker END,
        breaker_probe_at = CASE WHEN :ok > coalesce(breaker_changed_at, :ok - 1) THEN NULL
            ELSE breaker_probe_at END,
        breaker_changed_at = CASE WHEN breaker <> 'closed'
            AND :ok > coalesce(breaker_changed_at, :ok - 1) THEN :ok
            ELSE breaker_changed_at END
    WHERE id = :id AND (:fail IS NOT NULL OR consecutive_failures > 0 OR breaker <> 'closed')
"""

# The latest transition wins (a late write of an older one changes nothing).
_RECORD_BREAKER = """
    UPDATE endpoints SET breaker = ?, breaker_changed_at = ?, breaker_probe_at = ?
    WHERE id = ? AND coalesce(breaker_changed_at, 0) <= ?
"""

_ENDPOINT_HEALTH = """
    SELECT e.id, e.last_success_at, e.last_failure_at, e.consecutive_failures, e.breaker,
        e.breaker_probe_at,
        (SELECT count(*) FROM deliveries AS d INDEXED BY deliveries_endpoint_pending
         WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending,
        (SELECT count(*) FROM deliveries AS d INDEXED BY deliveries_endpoint_failed
         WHERE d.endpoint_id = e.id AND d.status = 'failed') AS failed
    FROM endpoints AS e WHERE e.id IN (SELECT value FROM json_each(?))
"""

_DAY_SUMS, _HOUR_SUMS = (
    f"""
    SELECT {columns} FROM {table}
    WHERE endpoint_id IN (SELECT value FROM json_each(?)) AND bucket_start >= ?
    GROUP BY endpoint_id
    """  # noqa: S608 - constant text
    for columns, table in ((DAY_SUMS, "endpoint_health_hourly"), (HOUR_SUMS, "endpoint_health"))
)

_ADD_TO_HOUR = f"""
    INSERT INTO endpoint_health_hourly (endpoint_id, bucket_start, writer, succeeded, failed)
    VALUES (?, ?, ?, ?, ?)
    {ADD_HOURLY_ON_CONFLICT}
"""  # noqa: S608 - constant text

_STATS = f"""
    SELECT bucket_start, {STATS_SUMS} FROM endpoint_health
    WHERE endpoint_id = ? AND bucket_start >= ? AND bucket_start < ?
    GROUP BY bucket_start ORDER BY bucket_start
"""  # noqa: S608 - constant text

# Most recent failure first; `after` is the last id of the previous page.
_FAILING = f"""
    SELECT e.* FROM endpoints AS e
    WHERE (:org IS NULL OR e.organization_id = :org) AND {FAILING}
      AND (:after IS NULL OR (coalesce(e.last_failure_at, 0), e.id) < (
          SELECT coalesce(a.last_failure_at, 0), a.id FROM endpoints AS a WHERE a.id = :after))
    ORDER BY coalesce(e.last_failure_at, 0) DESC, e.id DESC
    LIMIT :limit
"""  # noqa: S608 - constant text
