"""The scheduler's and the housekeeper's other statements on the PostgreSQL backend, outside
the batched hot path: putting leased deliveries back to wait (`release`) or suppressing them,
the next time a delivery falls due, one chunk of the retention purge of old events
(`purge_chunk`; the store runs one transaction per chunk), and `delete_deliveries`, the
chunked delete of deliveries with their attempts that the purge and endpoint deletion share.
Each is a function run on a connection `PostgresStore` lends it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from dispatcher.core.models import Lease, WaitingReason
from dispatcher.store.postgres.connection import count

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn

PURGE_CHUNK = 1000  # events per purge transaction


async def release(
    conn: Conn,
    leased: list[tuple[str, Lease]],
    *,
    next_attempt_at: datetime,
    now: datetime,
    reason: WaitingReason,
) -> int:
    return count(
        await conn.execute(
            """
            UPDATE deliveries AS d SET next_attempt_at = $4, waiting_reason = $6,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = $5
            FROM unnest($1::text[], $2::text[], $3::bigint[]) AS l (id, owner, epoch)
            WHERE d.id = l.id AND d.status = 'pending'
                AND d.lease_owner = l.owner AND d.lease_epoch = l.epoch
            """,
            *_fences(leased),
            next_attempt_at,
            now,
            reason.value,
        )
    )


async def suppress(
    conn: Conn, leased: list[tuple[str, Lease]], reason: str, *, now: datetime
) -> int:
    return count(
        await conn.execute(
            """
            UPDATE deliveries AS d SET status = 'suppressed', reason = $4, next_attempt_at = NULL,
                waiting_reason = NULL,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = $5
            FROM unnest($1::text[], $2::text[], $3::bigint[]) AS l (id, owner, epoch)
            WHERE d.id = l.id AND d.status = 'pending'
                AND d.lease_owner = l.owner AND d.lease_epoch = l.epoch
            """,
            *_fences(leased),
            reason,
            now,
        )
    )


def _fences(leased: list[tuple[str, Lease]]) -> tuple[list[str], list[str], list[int]]:
    return (
        [delivery_id for delivery_id, _ in leased],
        [lease.owner for _, lease in leased],
        [lease.epoch for _, lease in leased],
    )


async def next_due_at(conn: Conn) -> datetime | None:
    row = await conn.fetchrow("SELECT min(due_at) FROM deliveries WHERE status = 'pending'")
    return None if row is None else row[0]


async def purge_chunk(conn: Conn, *, table: str, before: datetime) -> int | None:
    """Run inside a transaction: delete up to PURGE_CHUNK rows of `table` ("events", with
    their deliveries and attempts; "dead_letters"; "replay_jobs", finished ones) older than
    `before`; return how many went, or None when another replica holds the purge."""
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", PURGE_LOCK):
        return None
    gone = await conn.fetch(_PURGES[table], before, PURGE_CHUNK)
    if table == "events":
        await delete_deliveries(conn, "event_id", [row[0] for row in gone])
    return len(gone)


PURGE_LOCK = 0x5745_4248_4F4F_4B53 >> 1  # one purger across replicas (any constant key)
PURGE_TABLES = ("events", "dead_letters", "replay_jobs")
# An event with a pending delivery (a replayed old one, mid-ladder) waits for it to finish.
_PURGES = {
    "events": """
        DELETE FROM events WHERE id IN (
            SELECT id FROM events AS e WHERE received_at < $1 AND NOT EXISTS (
                SELECT 1 FROM deliveries AS d WHERE d.event_id = e.id AND d.status = 'pending'
            ) LIMIT $2
        ) RETURNING id
    """,
    "dead_letters": """
        DELETE FROM dead_letters WHERE id IN
            (SELECT id FROM dead_letters WHERE received_at < $1 LIMIT $2) RETURNING id
    """,
    "replay_jobs": """
        DELETE FROM replay_jobs WHERE id IN
            (SELECT id FROM replay_jobs WHERE finished_at < $1 LIMIT $2) RETURNING id
    """,
}


async def delete_deliveries(conn: Conn, column: str, values: list[str]) -> None:
    """Delete the deliveries whose `column` (endpoint_id or event_id) is in `values`, with
    their attempts, in chunks; run inside a transaction. Attempts go in a later statement
    than their deliveries, so an attempt committed by a `complete` we waited for is seen."""
    delete = _DELETE_DELIVERIES_BY[column]
    while values:
        gone = [row[0] for row in await conn.fetch(delete, values, DELETE_CHUNK)]
        await conn.execute("DELETE FROM attempts WHERE delivery_id = ANY($1::text[])", gone)
        if len(gone) < DELETE_CHUNK:
            return


DELETE_CHUNK = 5000
_DELETE_DELIVERIES_BY = {
    column: f"""
        DELETE FROM deliveries WHERE id IN
            (SELECT id FROM deliveries WHERE {column} = ANY($1::text[]) LIMIT $2)
        RETURNING id
    """  # noqa: S608 - `column` is one of the two constants here
    for column in ("endpoint_id", "event_id")
}


async def heartbeat(conn: Conn, *, instance_id: str, now: datetime, ttl: float) -> int:
    """Run inside a transaction."""
    await conn.execute(
        "INSERT INTO replicas VALUES ($1, $2) "
        "ON CONFLICT (instance_id) DO UPDATE SET seen_at = excluded.seen_at",
        instance_id,
        now,
    )
    await conn.execute("DELETE FROM replicas WHERE seen_at < $1", now - timedelta(seconds=ttl))
    return int(await conn.fetchval("SELECT count(*) FROM replicas"))


async def leave(conn: Conn, *, instance_id: str) -> None:
    await conn.execute("DELETE FROM replicas WHERE instance_id = $1", instance_id)
