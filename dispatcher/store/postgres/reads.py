"""The PostgreSQL reads behind the HTTP API: deliveries (one, an endpoint's filtered listing
and count, an event's), their attempts and replays, events, and dead letters (listing, one,
marking one retried), each a function run on a connection `PostgresStore` lends it; plus the
delivery SQL they share with bulk replays (`SELECT_DELIVERIES`, `MATCHING_DELIVERIES`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING

from dispatcher.core.models import DeliveryStatus
from dispatcher.store import schema
from dispatcher.store.postgres.connection import count, same
from dispatcher.store.records import (
    AttemptRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    ReplayRecord,
)

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn

SELECT_DELIVERIES = (
    f"SELECT {schema.DELIVERY_COLUMNS} FROM deliveries AS d "  # noqa: S608 - constant text
    "JOIN events AS e ON e.id = d.event_id"
)

# The filters of list_deliveries and count_deliveries: $1 endpoint, $2 statuses, $3 types,
# $4 since (inclusive), $5 until (exclusive); NULL means "any".
MATCHING_DELIVERIES = """
    WHERE d.endpoint_id = $1
      AND ($2::text[] IS NULL OR d.status = ANY($2))
      AND ($3::text[] IS NULL OR e.type = ANY($3))
      AND ($4::timestamptz IS NULL OR d.created_at >= $4)
      AND ($5::timestamptz IS NULL OR d.created_at < $5)
"""

COUNT_DELIVERIES = (
    "SELECT count(*) FROM deliveries AS d JOIN events AS e ON e.id = d.event_id "  # noqa: S608
    + MATCHING_DELIVERIES
)


async def get_delivery(conn: Conn, delivery_id: str) -> DeliveryRecord | None:
    row = await conn.fetchrow(f"{SELECT_DELIVERIES} WHERE d.id = $1", delivery_id)
    return None if row is None else schema.delivery_from_row(row, same)


async def list_deliveries(
    conn: Conn,
    endpoint_id: str,
    *,
    statuses: Collection[DeliveryStatus] | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
    limit: int,
) -> list[DeliveryRecord]:
    rows = await conn.fetch(
        f"{SELECT_DELIVERIES} {MATCHING_DELIVERIES} AND ($6::text IS NULL OR d.id < $6) "
        "ORDER BY d.id DESC LIMIT $7",
        endpoint_id,
        None if statuses is None else [s.value for s in statuses],
        None if event_type is None else [event_type],
        since,
        until,
        after,
        limit,
    )
    return [schema.delivery_from_row(row, same) for row in rows]


async def count_deliveries(
    conn: Conn,
    endpoint_id: str,
    *,
    statuses: Collection[DeliveryStatus] | None,
    types: Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> int:
    row = await conn.fetchrow(
        COUNT_DELIVERIES,
        endpoint_id,
        None if statuses is None else [s.value for s in statuses],
        None if types is None else list(types),
        since,
        until,
    )
    return 0 if row is None else int(row[0])


async def list_attempts(conn: Conn, delivery_id: str) -> list[AttemptRecord]:
    rows = await conn.fetch(
        "SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY started_at, id", delivery_id
    )
    return [schema.attempt_from_row(row, same) for row in rows]


async def list_replays(conn: Conn, delivery_id: str) -> list[ReplayRecord]:
    rows = await conn.fetch("SELECT * FROM replays WHERE delivery_id = $1 ORDER BY id", delivery_id)
    return [schema.replay_from_row(row, same) for row in rows]


async def get_event(conn: Conn, event_id: str) -> EventRecord | None:
    row = await conn.fetchrow("SELECT * FROM events WHERE id = $1", event_id)
    return None if row is None else schema.event_from_row(row, same)


async def list_event_deliveries(conn: Conn, event_id: str) -> list[DeliveryRecord]:
    rows = await conn.fetch(f"{SELECT_DELIVERIES} WHERE d.event_id = $1 ORDER BY d.id", event_id)
    return [schema.delivery_from_row(row, same) for row in rows]


async def list_dead_letters(
    conn: Conn, *, reason: str | None, after: str | None, limit: int
) -> list[DeadLetterRecord]:
    rows = await conn.fetch(
        """
        SELECT * FROM dead_letters
        WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR id < $2)
        ORDER BY id DESC LIMIT $3
        """,
        reason,
        after,
        limit,
    )
    return [schema.dead_letter_from_row(row, same) for row in rows]


async def get_dead_letter(conn: Conn, dead_letter_id: str) -> DeadLetterRecord | None:
    row = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", dead_letter_id)
    return None if row is None else schema.dead_letter_from_row(row, same)


async def mark_dead_letter_retried(conn: Conn, dead_letter_id: str, *, now: datetime) -> bool:
    changed = count(
        await conn.execute(
            "UPDATE dead_letters SET retried_at = $2 WHERE id = $1", dead_letter_id, now
        )
    )
    return changed > 0
