"""PostgreSQL replays: resetting deliveries to a fresh retry ladder and recording why
(`replay`, behind single replays and bulk jobs), and bulk replay jobs (created once per
filter across replicas, stepped a chunk at a time under the job's row lock, read back),
each a function run on a connection `PostgresStore` lends it; plus `ReplayJobRaceError`,
which tells the store to retry a creation that lost a race with a finishing twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dispatcher.errors import ConflictError
from dispatcher.store import schema
from dispatcher.store.postgres.connection import same
from dispatcher.store.postgres.reads import MATCHING_DELIVERIES
from dispatcher.store.records import ReplayFilter, ReplayJobRecord, ReplayJobStatus

if TYPE_CHECKING:
    from asyncpg import Record

    from dispatcher.store.postgres.connection import Conn


async def replay(
    conn: Conn,
    delivery_ids: Sequence[str],
    *,
    actor: str,
    reason: str,
    now: datetime,
    job_id: str | None = None,
) -> int:
    """Restart deliveries' ladders (attempts keep counting) and record the replay; return
    how many existed."""
    replayed = await conn.fetch(
        """
        WITH replayed AS (
            UPDATE deliveries SET status = 'pending', reason = NULL, ladder_start = attempts,
                next_attempt_at = $2, waiting_reason = 'replay_queued', lease_owner = NULL,
                lease_expires_at = NULL,
                updated_at = $2
            WHERE id = ANY($1::text[])
            RETURNING id
        )
        INSERT INTO replays (delivery_id, actor, reason, at, job_id)
        SELECT id, $3, $4, $2, $5 FROM replayed
        RETURNING delivery_id
        """,
        list(delivery_ids),
        now,
        actor,
        reason,
        job_id,
    )
    return len(replayed)


def replay_filter_args(selection: ReplayFilter) -> tuple[Any, ...]:
    """$1..$5 of MATCHING_DELIVERIES for a bulk replay's filter."""
    return (
        selection.endpoint_id,
        sorted(s.value for s in selection.statuses),
        None if selection.types is None else sorted(selection.types),
        selection.since,
        selection.until,
    )


class ReplayJobRaceError(ConflictError):
    """An active twin blocked our insert, then finished before we could read it: retry."""


def job_row(
    job_id: str,
    organization_id: str,
    selection: ReplayFilter,
    filter_key: str,
    actor: str,
    reason: str,
    now: datetime,
) -> tuple[Any, ...]:
    """The values of a new job's row, in _INSERT_REPLAY_JOB's order."""
    return (
        job_id,
        organization_id,
        selection.endpoint_id,
        filter_key,
        selection.since,
        selection.until,
        schema.dump_scopes([s.value for s in selection.statuses]),
        schema.dump_event_types(selection.types),
        actor,
        reason,
        now,
    )


async def create_replay_job(
    conn: Conn, *, row: tuple[Any, ...], selection: ReplayFilter, filter_key: str
) -> tuple[Record, bool]:
    """Run inside a transaction. The partial unique index on active jobs' filter_key makes
    concurrent submissions of one filter (from any replica) insert one job."""
    job_id, created_at = row[0], row[-1]
    inserted = await conn.fetchrow(_INSERT_REPLAY_JOB, *row)
    if inserted is None:
        existing = await conn.fetchrow(_ACTIVE_JOB_BY_FILTER, filter_key)
        if existing is None:  # it finished between our insert and this read
            raise ReplayJobRaceError(filter_key)
        return existing, False
    status = await conn.execute(
        "INSERT INTO replay_job_items (job_id, delivery_id) "  # noqa: S608 - constant text
        "SELECT $6, d.id FROM deliveries AS d JOIN events AS e ON e.id = d.event_id "
        + MATCHING_DELIVERIES,
        *replay_filter_args(selection),
        job_id,
    )
    total = int(status.rpartition(" ")[2] or 0)
    state = ReplayJobStatus.QUEUED if total else ReplayJobStatus.SUCCEEDED
    job = await conn.fetchrow(
        "UPDATE replay_jobs SET total = $2, status = $3, finished_at = $4 WHERE id = $1 "
        "RETURNING *",
        job_id,
        total,
        state.value,
        None if total else created_at,
    )
    if job is None:  # inserted above, in this transaction
        raise ConflictError(f"replay job {job_id} vanished while it was created")
    return job, True


async def advance_replay_job(
    conn: Conn, *, job_id: str, limit: int, now: datetime
) -> tuple[Record | None, int]:
    """Run inside a transaction. The job's row lock serialises replicas stepping it."""
    job = await conn.fetchrow("SELECT * FROM replay_jobs WHERE id = $1 FOR UPDATE", job_id)
    if job is None or job["status"] not in (ReplayJobStatus.QUEUED, ReplayJobStatus.RUNNING):
        return job, 0
    taken = [
        row[0]
        for row in await conn.fetch(
            """
            DELETE FROM replay_job_items WHERE job_id = $1 AND delivery_id IN (
                SELECT delivery_id FROM replay_job_items WHERE job_id = $1
                ORDER BY delivery_id LIMIT $2)
            RETURNING delivery_id
            """,
            job_id,
            limit,
        )
    ]
    taken.sort()
    await replay(conn, taken, actor=job["actor"], reason=job["reason"], now=now, job_id=job_id)
    more = await conn.fetchval("SELECT 1 FROM replay_job_items WHERE job_id = $1 LIMIT 1", job_id)
    status = ReplayJobStatus.RUNNING if more else ReplayJobStatus.SUCCEEDED
    job = await conn.fetchrow(
        """
        UPDATE replay_jobs SET done = done + $2, status = $3, updated_at = $4,
            finished_at = $5
        WHERE id = $1 RETURNING *
        """,
        job_id,
        len(taken),
        status.value,
        now,
        None if more else now,
    )
    return job, len(taken)


async def get_replay_job(conn: Conn, job_id: str) -> ReplayJobRecord | None:
    row = await conn.fetchrow("SELECT * FROM replay_jobs WHERE id = $1", job_id)
    return None if row is None else schema.replay_job_from_row(row, same)


async def list_replay_jobs(
    conn: Conn, *, org: str | None, after: str | None, limit: int
) -> list[ReplayJobRecord]:
    rows = await conn.fetch(
        """
        SELECT * FROM replay_jobs
        WHERE ($1::text IS NULL OR organization_id = $1) AND ($2::text IS NULL OR id < $2)
        ORDER BY id DESC LIMIT $3
        """,
        org,
        after,
        limit,
    )
    return [schema.replay_job_from_row(row, same) for row in rows]


async def active_replay_jobs(conn: Conn) -> list[ReplayJobRecord]:
    rows = await conn.fetch(
        "SELECT * FROM replay_jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id"
    )
    return [schema.replay_job_from_row(row, same) for row in rows]


_ACTIVE_JOB_BY_FILTER = (
    "SELECT * FROM replay_jobs WHERE filter_key = $1 AND status IN ('queued', 'running')"
)

_INSERT_REPLAY_JOB = """
    INSERT INTO replay_jobs (id, organization_id, endpoint_id, filter_key, since, until,
        statuses, types, status, actor, reason, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, 'queued', $9, $10, $11, $11)
    ON CONFLICT DO NOTHING
    RETURNING id
"""
