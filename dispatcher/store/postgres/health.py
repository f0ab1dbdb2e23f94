"""Endpoint health on the PostgreSQL backend (dispatcher.core.health): `record`, which the
complete path runs inside its transaction — one statement adding a batch's attempts to the
rollup buckets and updating the endpoints whose run of failures (or reported breaker)
changes — and the statements behind `PostgresStore`'s health methods (breaker transitions,
health reads, chart buckets, failing endpoints, the buckets' purge).

Each replica writes its own bucket rows (keyed by writer), so replicas delivering to the same
endpoint never wait for each other's bucket row; a read sums across them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

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
from dispatcher.store.postgres.connection import count, same

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn

T = TypeVar("T")


async def record(conn: Conn, results: Sequence[AttemptResult]) -> None:
    """Run inside `complete`'s transaction, after the endpoint clocks (endpoints are locked
    in id order there and here, then deliveries): one statement, one round trip."""
    increments = rollup(results)
    found = streaks(results)
    if not increments:
        return
    latency = [[i.latency[b] for i in increments] for b in range(len(LATENCY_COLUMNS))]
    hours = hourly(increments)
    await conn.execute(
        _RECORD,
        [i.endpoint_id for i in increments],
        [i.bucket_start for i in increments],
        [i.writer for i in increments],
        [i.succeeded for i in increments],
        [i.failed for i in increments],
        *latency,
        [s.endpoint_id for s in found],
        [s.last_success for s in found],
        [s.last_failure for s in found],
        [s.trailing_failures for s in found],
        [h.endpoint_id for h in hours],
        [h.bucket_start for h in hours],
        [h.writer for h in hours],
        [h.succeeded for h in hours],
        [h.failed for h in hours],
    )


class _Runner(Protocol):
    async def _run(
        self, work: Callable[[Conn], Awaitable[T]], *, transaction: bool = False
    ) -> T: ...


class HealthMethods:
    """`Store`'s health methods on PostgreSQL, mixed into `PostgresStore`."""

    async def record_breakers(self, transitions: Sequence[BreakerTransition]) -> int:
        if not transitions:
            return 0
        work = partial(record_breakers, transitions=transitions)
        return await cast(_Runner, self)._run(work)

    async def endpoint_health(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, EndpointHealth]:
        if not endpoint_ids:
            return {}
        work = partial(endpoint_health, endpoint_ids=sorted(set(endpoint_ids)), now=now)
        return await cast(_Runner, self)._run(work)

    async def endpoint_stats(
        self, endpoint_id: str, *, since: datetime, until: datetime
    ) -> list[StatsBucket]:
        work = partial(endpoint_stats, endpoint_id=endpoint_id, since=since, until=until)
        return await cast(_Runner, self)._run(work)

    async def failing_endpoints(
        self, organization_id: str | None, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        work = partial(failing_endpoints, organization_id=organization_id, after=after, limit=limit)
        return await cast(_Runner, self)._run(work)

    async def purge_health(self, *, before: datetime) -> int:
        return await cast(_Runner, self)._run(partial(purge_health, before=before))


async def record_breakers(conn: Conn, transitions: Sequence[BreakerTransition]) -> int:
    ordered = sorted(transitions, key=lambda t: (t.endpoint_id, t.at))
    return count(
        await conn.execute(
            _RECORD_BREAKERS,
            [t.endpoint_id for t in ordered],
            [t.state.value for t in ordered],
            [t.at for t in ordered],
            [t.probe_at for t in ordered],
        )
    )


async def endpoint_health(
    conn: Conn, endpoint_ids: list[str], *, now: datetime
) -> dict[str, EndpointHealth]:
    hour, day = windows(now)
    rows = await conn.fetch(_ENDPOINT_HEALTH, endpoint_ids)
    days = {row[0]: row for row in await conn.fetch(_DAY_SUMS, endpoint_ids, day)}
    hours = {row[0]: row for row in await conn.fetch(_HOUR_SUMS, endpoint_ids, hour)}
    return {
        row["id"]: health_from_rows(row, days.get(row["id"]), hours.get(row["id"]), same)
        for row in rows
    }


async def endpoint_stats(
    conn: Conn, endpoint_id: str, *, since: datetime, until: datetime
) -> list[StatsBucket]:
    return stats_from_rows(await conn.fetch(_STATS, endpoint_id, since, until), same)


async def failing_endpoints(
    conn: Conn, organization_id: str | None, *, after: str | None, limit: int
) -> list[Endpoint]:
    rows = await conn.fetch(_FAILING, organization_id, after, limit)
    return [schema.endpoint_from_row(row, same) for row in rows]


async def purge_health(conn: Conn, *, before: datetime) -> int:
    await conn.execute("DELETE FROM endpoint_health_hourly WHERE bucket_start < $1", before)
    return count(await conn.execute("DELETE FROM endpoint_health WHERE bucket_start < $1", before))


_LATENCY_ARRAYS = ", ".join(f"${6 + b}::int[]" for b in range(len(LATENCY_COLUMNS)))
_STREAK = 6 + len(LATENCY_COLUMNS)  # the first of the runs' four arrays
_HOURS = _STREAK + 4  # the first of the hourly rollup's five arrays

# The buckets' upserts (five-minute and hourly) run as data-modifying WITHs (executed in full
# though unread) beside the runs' update. A batch with a success restarts an endpoint's run
# at its failures after that success — unless a failure later than that success is already
# recorded (another replica's), which keeps the run going. A success after the breaker's
# last reported transition reports it closed. A healthy endpoint (no failure in the batch,
# no run, breaker closed) is neither written nor locked, so a hot healthy endpoint does not
# serialise replicas.
_RECORD = f"""
    WITH buckets AS (
        INSERT INTO endpoint_health (endpoint_id, bucket_start, writer, succeeded, failed,
            {", ".join(LATENCY_COLUMNS)})
        SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::int[], $5::int[],
                             {_LATENCY_ARRAYS})
        {ADD_ON_CONFLICT}
    ), hours AS (
        INSERT INTO endpoint_health_hourly (endpoint_id, bucket_start, writer, succeeded, failed)
        SELECT * FROM unnest(${_HOURS}::text[], ${_HOURS + 1}::timestamptz[],
                             ${_HOURS + 2}::text[], ${_HOURS + 3}::int[], ${_HOURS + 4}::int[])
        {ADD_HOURLY_ON_CONFLICT}
    )
    UPDATE endpoints AS e SET
        consecutive_failures = CASE
            WHEN c.ok IS NULL OR c.ok < e.last_failure_at
            THEN e.consecutive_failures + c.run ELSE c.run END,
        last_failure_at = GREATEST(e.last_failure_at, c.fail),
        breaker = CASE WHEN c.ok > coalesce(e.breaker_changed_at, '-infinity') THEN 'closed'
            ELSE e.breaker END,
        breaker_probe_at = CASE WHEN c.ok > coalesce(e.breaker_changed_at, '-infinity')
            THEN NULL ELSE e.breaker_probe_at END,
        breaker_changed_at = CASE WHEN e.breaker <> 'closed' AND c.ok > e.breaker_changed_at
            THEN c.ok ELSE e.breaker_changed_at END
    FROM unnest(${_STREAK}::text[], ${_STREAK + 1}::timestamptz[],
                ${_STREAK + 2}::timestamptz[], ${_STREAK + 3}::int[]) AS c (id, ok, fail, run)
    WHERE e.id = c.id
      AND (c.fail IS NOT NULL OR e.consecutive_failures > 0 OR e.breaker <> 'closed')
"""  # noqa: S608 - constant text

# The latest transition wins (a late write of an older one changes nothing).
_RECORD_BREAKERS = """
    UPDATE endpoints AS e
    SET breaker = t.state, breaker_changed_at = t.at, breaker_probe_at = t.probe_at
    FROM (
        SELECT DISTINCT ON (id) * FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                                              $4::timestamptz[]) AS t (id, state, at, probe_at)
        ORDER BY id, at DESC
    ) AS t
    WHERE e.id = t.id AND (e.breaker_changed_at IS NULL OR e.breaker_changed_at <= t.at)
"""

_ENDPOINT_HEALTH = """
    SELECT e.id, e.last_success_at, e.last_failure_at, e.consecutive_failures, e.breaker,
        e.breaker_probe_at,
        (SELECT count(*) FROM deliveries AS d
         WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending,
        (SELECT count(*) FROM deliveries AS d
         WHERE d.endpoint_id = e.id AND d.status = 'failed') AS failed
    FROM endpoints AS e WHERE e.id = ANY($1::text[])
"""

_DAY_SUMS, _HOUR_SUMS = (
    f"""
    SELECT {columns} FROM {table}
    WHERE endpoint_id = ANY($1::text[]) AND bucket_start >= $2
    GROUP BY endpoint_id
    """  # noqa: S608 - constant text
    for columns, table in ((DAY_SUMS, "endpoint_health_hourly"), (HOUR_SUMS, "endpoint_health"))
)

_STATS = f"""
    SELECT bucket_start, {STATS_SUMS} FROM endpoint_health
    WHERE endpoint_id = $1 AND bucket_start >= $2 AND bucket_start < $3
    GROUP BY bucket_start ORDER BY bucket_start
"""  # noqa: S608 - constant text

# Most recent failure first; $2 (`after`) is the last id of the previous page.
_FAILING = f"""
    SELECT e.* FROM endpoints AS e
    WHERE ($1::text IS NULL OR e.organization_id = $1) AND {FAILING}
      AND ($2::text IS NULL OR (coalesce(e.last_failure_at, '-infinity'), e.id) < (
          SELECT coalesce(a.last_failure_at, '-infinity'), a.id FROM endpoints AS a
          WHERE a.id = $2))
    ORDER BY coalesce(e.last_failure_at, '-infinity') DESC, e.id DESC
    LIMIT $3
"""  # noqa: S608 - constant text
