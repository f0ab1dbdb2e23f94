"""What the HTTP API reads from the SQLite backend: deliveries (one, a filtered page, a count),
their attempts and replays, events and their deliveries, and the dead letters (listing,
fetching, marking one retried). The bodies of `SQLiteStore`'s read methods, as functions of
the store's worker helpers (`Runner`); also the delivery filters the bulk replay jobs share.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from dispatcher.core.models import DeliveryStatus
from dispatcher.store import schema
from dispatcher.store.records import (
    AttemptRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    ReplayRecord,
)
from dispatcher.store.sqlite.encoding import dt, json_list, maybe_us, us
from dispatcher.store.sqlite.transactions import Runner

SELECT_DELIVERIES = (
    f"SELECT {schema.DELIVERY_COLUMNS} FROM deliveries AS d "  # noqa: S608 - constant text
    "JOIN events AS e ON e.id = d.event_id"
)

# The filters of list_deliveries and count_deliveries (named parameters, see `delivery_filters`).
MATCHING_DELIVERIES = """
    WHERE d.endpoint_id = :endpoint_id
      AND (:statuses IS NULL OR d.status IN (SELECT value FROM json_each(:statuses)))
      AND (:types IS NULL OR e.type IN (SELECT value FROM json_each(:types)))
      AND (:since IS NULL OR d.created_at >= :since)
      AND (:until IS NULL OR d.created_at < :until)
"""


COUNT_DELIVERIES = (
    "SELECT count(*) FROM deliveries AS d JOIN events AS e ON e.id = d.event_id "  # noqa: S608
    + MATCHING_DELIVERIES
)


def delivery_filters(
    endpoint_id: str,
    statuses: Collection[DeliveryStatus] | None,
    types: Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "statuses": None if statuses is None else json_list([s.value for s in statuses]),
        "types": None if types is None else json_list(types),
        "since": maybe_us(since),
        "until": maybe_us(until),
    }


# -- deliveries, attempts, replays ----------------------------------------------------------


async def get_delivery(db: Runner, delivery_id: str) -> DeliveryRecord | None:
    row = await db._one(f"{SELECT_DELIVERIES} WHERE d.id = ?", (delivery_id,))
    return None if row is None else schema.delivery_from_row(row, dt)


async def list_deliveries(
    db: Runner,
    endpoint_id: str,
    *,
    statuses: Collection[DeliveryStatus] | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
    limit: int,
) -> list[DeliveryRecord]:
    params = delivery_filters(
        endpoint_id,
        statuses,
        None if event_type is None else [event_type],
        since,
        until,
    )
    rows = await db._all(
        f"{SELECT_DELIVERIES} {MATCHING_DELIVERIES} AND (:after IS NULL OR d.id < :after) "
        "ORDER BY d.id DESC LIMIT :limit",
        {**params, "after": after, "limit": limit},
    )
    return [schema.delivery_from_row(row, dt) for row in rows]


async def count_deliveries(
    db: Runner,
    endpoint_id: str,
    *,
    statuses: Collection[DeliveryStatus] | None,
    types: Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> int:
    row = await db._one(
        COUNT_DELIVERIES, delivery_filters(endpoint_id, statuses, types, since, until)
    )
    return 0 if row is None else int(row[0])


async def list_attempts(db: Runner, delivery_id: str) -> list[AttemptRecord]:
    rows = await db._all(
        "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY started_at, id", (delivery_id,)
    )
    return [schema.attempt_from_row(row, dt) for row in rows]


async def list_replays(db: Runner, delivery_id: str) -> list[ReplayRecord]:
    rows = await db._all("SELECT * FROM replays WHERE delivery_id = ? ORDER BY id", (delivery_id,))
    return [schema.replay_from_row(row, dt) for row in rows]


# -- events ---------------------------------------------------------------------------------


async def get_event(db: Runner, event_id: str) -> EventRecord | None:
    row = await db._one("SELECT * FROM events WHERE id = ?", (event_id,))
    return None if row is None else schema.event_from_row(row, dt)


async def list_event_deliveries(db: Runner, event_id: str) -> list[DeliveryRecord]:
    rows = await db._all(f"{SELECT_DELIVERIES} WHERE d.event_id = ? ORDER BY d.id", (event_id,))
    return [schema.delivery_from_row(row, dt) for row in rows]


# -- dead letters ---------------------------------------------------------------------------


async def list_dead_letters(
    db: Runner, *, reason: str | None, after: str | None, limit: int
) -> list[DeadLetterRecord]:
    rows = await db._all(
        """
        SELECT * FROM dead_letters
        WHERE (?1 IS NULL OR reason = ?1) AND (?2 IS NULL OR id < ?2)
        ORDER BY id DESC LIMIT ?3
        """,
        (reason, after, limit),
    )
    return [schema.dead_letter_from_row(row, dt) for row in rows]


async def get_dead_letter(db: Runner, dead_letter_id: str) -> DeadLetterRecord | None:
    row = await db._one("SELECT * FROM dead_letters WHERE id = ?", (dead_letter_id,))
    return None if row is None else schema.dead_letter_from_row(row, dt)


async def mark_dead_letter_retried(db: Runner, dead_letter_id: str, *, now: datetime) -> bool:
    changed = await db._change(
        "UPDATE dead_letters SET retried_at = ? WHERE id = ?", (us(now), dead_letter_id)
    )
    return changed > 0
