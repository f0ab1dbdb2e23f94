"""The scheduler's and the housekeeper's single-statement calls on the SQLite backend, outside
the batched hot path: putting leased deliveries back to wait (`release`) or suppressing them,
the next time a delivery falls due, and the retention purge of old events (in chunks, one
transaction each). The bodies of those `SQLiteStore` methods, as functions of the store's
worker helpers (`Runner`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from dispatcher.core.models import Lease, WaitingReason
from dispatcher.store.records import Purged
from dispatcher.store.sqlite.encoding import dt, us
from dispatcher.store.sqlite.transactions import Runner

PURGE_CHUNK = 1000  # events per purge transaction


async def release(
    db: Runner,
    leased: Sequence[tuple[str, Lease]],
    *,
    next_attempt_at: datetime,
    reason: WaitingReason,
    updated_at: datetime,
) -> int:
    return await db._change_many(
        """
        UPDATE deliveries SET next_attempt_at = ?, waiting_reason = ?, lease_owner = NULL,
            lease_expires_at = NULL, updated_at = ?
        WHERE id = ? AND status = 'pending' AND lease_owner = ? AND lease_epoch = ?
        """,
        [
            (us(next_attempt_at), reason.value, us(updated_at), delivery_id, *lease_key(lease))
            for delivery_id, lease in leased
        ],
    )


async def suppress(
    db: Runner, leased: Sequence[tuple[str, Lease]], reason: str, *, updated_at: datetime
) -> int:
    return await db._change_many(
        """
        UPDATE deliveries SET status = 'suppressed', reason = ?, next_attempt_at = NULL,
            waiting_reason = NULL,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
        WHERE id = ? AND status = 'pending' AND lease_owner = ? AND lease_epoch = ?
        """,
        [(reason, us(updated_at), delivery_id, *lease_key(lease)) for delivery_id, lease in leased],
    )


def lease_key(lease: Lease) -> tuple[str, int]:
    return lease.owner, lease.epoch


async def next_due_at(db: Runner) -> datetime | None:
    row = await db._one("SELECT min(due_at) FROM deliveries WHERE status = 'pending'")
    return None if row is None or row[0] is None else dt(row[0])


async def purge(db: Runner, *, before: datetime) -> Purged:
    cutoff = us(before)
    counts = [await _purge_table(db, statement, cutoff) for statement in _PURGES]
    return Purged(events=counts[0], dead_letters=counts[1], replay_jobs=counts[2])


async def _purge_table(db: Runner, statement: str, cutoff: int) -> int:
    total = 0
    while True:  # in chunks, one transaction each
        deleted = await db._change(statement, (cutoff, PURGE_CHUNK))
        total += deleted
        if deleted < PURGE_CHUNK:
            return total


# Deliveries, attempts, replay history and job items go with their rows (ON DELETE CASCADE).
_PURGES = (
    """
    DELETE FROM events WHERE id IN (
        SELECT id FROM events AS e WHERE received_at < ? AND NOT EXISTS (
            SELECT 1 FROM deliveries AS d WHERE d.event_id = e.id AND d.status = 'pending'
        ) LIMIT ?
    )
    """,
    "DELETE FROM dead_letters WHERE id IN "
    "(SELECT id FROM dead_letters WHERE received_at < ? LIMIT ?)",
    "DELETE FROM replay_jobs WHERE id IN "
    "(SELECT id FROM replay_jobs WHERE finished_at < ? LIMIT ?)",
)


class Heartbeats:
    """The replica registry (`Store.heartbeat`, `Store.leave`), mixed into `SQLiteStore`."""

    async def heartbeat(self, instance_id: str, *, now: datetime, ttl: float) -> int:
        db = cast(Runner, self)
        at, cutoff = us(now), us(now - timedelta(seconds=ttl))

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT INTO replicas VALUES (?, ?) "
                "ON CONFLICT (instance_id) DO UPDATE SET seen_at = excluded.seen_at",
                (instance_id, at),
            )
            conn.execute("DELETE FROM replicas WHERE seen_at < ?", (cutoff,))
            return int(conn.execute("SELECT count(*) FROM replicas").fetchone()[0])

        return await db._write(work)

    async def leave(self, instance_id: str) -> None:
        await cast(Runner, self)._change(
            "DELETE FROM replicas WHERE instance_id = ?", (instance_id,)
        )
