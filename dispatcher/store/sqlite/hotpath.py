"""The SQLite backend's batched hot path: `ingest`, `claim_due` and `complete` as plain
functions the store's worker thread runs inside `BEGIN IMMEDIATE … COMMIT`, the rows they
write and the statements they run, and the claims `claim_due`'s rows become.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.core.ids import new_id
from dispatcher.core.models import (
    FRESH_EPOCH,
    AttemptResult,
    Claim,
    DeadLetter,
    DeliveryStatus,
    Event,
    Lease,
    NewDelivery,
    WaitingReason,
)
from dispatcher.store import schema
from dispatcher.store.records import IngestBatch, IngestResult
from dispatcher.store.sqlite import health
from dispatcher.store.sqlite.encoding import json_list, maybe_us, us


def ingest(conn: sqlite3.Connection, *, batch: IngestBatch, now: int) -> IngestResult:
    # Deliveries routed to an endpoint deleted since are dropped, not an error.
    wanted = json_list({d.endpoint_id for d in batch.deliveries})
    live = {row[0] for row in conn.execute(_LIVE_ENDPOINTS, (wanted,))}
    deliveries = [d for d in batch.deliveries if d.endpoint_id in live]
    # New events are inserted already counting their deliveries; dedupe corrects it below.
    expected = Counter(d.event_id for d in deliveries)
    inserted_events = {
        row[0]
        for row in values_statement(
            conn, _INSERT_EVENTS, [_event_row(e, now, expected[e.id]) for e in batch.events]
        )
    }
    created: dict[str, str] = dict(
        values_statement(conn, _INSERT_DELIVERIES, [_delivery_row(d, now) for d in deliveries])
    )
    changes = schema.delivery_count_changes(expected, inserted_events, created.values())
    conn.executemany(
        "UPDATE events SET delivery_count = delivery_count + ? WHERE id = ?",
        [(delta, event_id) for event_id, delta in changes],
    )
    new_dead_letters = {
        row[0]
        for row in values_statement(
            conn, _INSERT_DEAD_LETTERS, [_dead_letter_row(dl) for dl in batch.dead_letters]
        )
    }
    return IngestResult(
        created=frozenset(created),
        duplicate_events=len(batch.events) - len(inserted_events),
        duplicate_deliveries=len(deliveries) - len(created),
        new_events=frozenset(inserted_events),
        new_dead_letters=frozenset(new_dead_letters),
    )


def claim_due(
    conn: sqlite3.Connection, *, now: int, limit: int, lease: tuple[str, int, int]
) -> list[tuple[Any, ...]]:
    """Lease due deliveries; `lease` is (owner, expires at, updated at). One writer, so a
    select then an update inside the transaction cannot race another claimer."""
    rows = conn.execute(
        """
        SELECT d.id, d.event_id, e.type, e.organization_id, d.endpoint_id, d.attempts, e.body,
            d.ladder_start
        FROM deliveries AS d JOIN events AS e ON e.id = d.event_id
        WHERE d.status = 'pending' AND d.due_at <= ?
        ORDER BY d.due_at LIMIT ?
        """,
        (now, limit),
    ).fetchall()
    epochs = dict(
        conn.execute(
            """
            UPDATE deliveries SET lease_owner = ?, lease_expires_at = ?, updated_at = ?,
                lease_epoch = lease_epoch + 1
            WHERE id IN (SELECT value FROM json_each(?))
            RETURNING id, lease_epoch
            """,
            (*lease, json_list([row[0] for row in rows])),
        ).fetchall()
    )
    return [(*row, lease[0], epochs[row[0]]) for row in rows]


def claims(rows: list[tuple[Any, ...]]) -> list[Claim]:
    """The rows `claim_due` returns as claims (built on the event loop, not the worker)."""
    return [
        Claim(
            delivery_id=delivery_id,
            event_id=event_id,
            event_type=event_type,
            organization_id=organization_id,
            endpoint_id=endpoint_id,
            attempts=attempts,
            ladder_start=ladder_start,
            body=body,
            lease=Lease(owner, epoch),
        )
        for (
            delivery_id,
            event_id,
            event_type,
            organization_id,
            endpoint_id,
            attempts,
            body,
            ladder_start,
            owner,
            epoch,
        ) in rows
    ]


def complete(
    conn: sqlite3.Connection, *, results: Sequence[AttemptResult], now: int
) -> frozenset[str]:
    """Apply the results whose lease the delivery still carries (owner and epoch, checked by
    the UPDATE itself); return the stale ones' ids. One statement per table for the batch,
    and one entropy read for the attempts' ids."""
    if not results:
        return frozenset()
    # Endpoints first, then deliveries: the order a cascading delete takes them in. The
    # clocks take every result: a stale attempt still happened.
    conn.executemany(
        _UPDATE_ENDPOINT_CLOCK,
        [
            {"id": c.endpoint_id, "ok": maybe_us(c.last_success), "fail": maybe_us(c.first_failure)}
            for c in schema.endpoint_clocks(results)
        ],
    )
    health.record(conn, results)  # every result, as the clocks
    applied = {
        row[0]
        for row in values_statement(conn, _COMPLETE, [_completed_row(r, now) for r in results])
    }
    kept = [r for r in results if r.delivery_id in applied]
    # Not applied: the lease was taken over (stale: released, replayed, claimed by another
    # process), or the delivery was deleted meanwhile (with its endpoint), which just loses
    # its attempt.
    missed = [r.delivery_id for r in results if r.delivery_id not in applied]
    stale = (
        frozenset(row[0] for row in conn.execute(_STILL_THERE, (json_list(missed),)))
        if missed
        else frozenset()
    )
    entropy = os.urandom(10 * len(kept))
    values_statement(
        conn,
        _INSERT_ATTEMPTS,
        [_attempt_row(r, entropy[i * 10 : i * 10 + 10]) for i, r in enumerate(kept)],
    )
    return stale


# -- one statement per batch: multi-row VALUES ------------------------------------------------

# Rows per statement: SQLite binds at most 32,766 parameters (since 3.32); a fixed chunk also
# keeps the statement cache warm (only the last chunk of a batch has its own text).
_CHUNK_PARAMETERS = 32_000
_CHUNK_ROWS = 256


@dataclass(frozen=True, slots=True)
class _Values:
    """A statement around one multi-row `VALUES` list: `head` + `(?, …), …` + `tail`."""

    head: str
    columns: int
    tail: str

    @functools.lru_cache(maxsize=64)  # noqa: B019 - the instances are module constants
    def sql(self, rows: int) -> str:
        row = "(" + ", ".join("?" * self.columns) + ")"
        return f"{self.head} VALUES {', '.join([row] * rows)} {self.tail}"


def values_statement(
    conn: sqlite3.Connection, statement: _Values, rows: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Run `statement` over `rows` in as few statements as the parameter limit allows;
    return what it returns (RETURNING), in order."""
    returned: list[tuple[Any, ...]] = []
    step = min(_CHUNK_ROWS, _CHUNK_PARAMETERS // statement.columns)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        params = [value for row in chunk for value in row]
        returned += conn.execute(statement.sql(len(chunk)), params).fetchall()
    return returned


def _event_row(event: Event, now: int, delivery_count: int) -> tuple[Any, ...]:
    return (
        event.id,
        event.type,
        event.organization_id,
        us(event.created),
        now,
        event.body,
        delivery_count,
    )


def _delivery_row(d: NewDelivery, now: int) -> tuple[Any, ...]:
    pending = d.status is DeliveryStatus.PENDING
    return (
        d.id,
        d.event_id,
        d.endpoint_id,
        d.status.value,
        d.reason,
        us(d.next_attempt_at) if pending else None,
        d.lease_owner,
        maybe_us(d.lease_expires_at),
        now,
        now,
        0 if d.lease_owner is None else FRESH_EPOCH,
    )


def _dead_letter_row(dl: DeadLetter) -> tuple[Any, ...]:
    return (
        dl.id,
        dl.topic,
        dl.partition,
        dl.offset,
        dl.key,
        dl.value,
        dl.reason,
        dl.detail,
        us(dl.received_at),
    )


def _completed_row(r: AttemptResult, now: int) -> tuple[Any, ...]:
    return (
        r.delivery_id,
        r.lease.owner,
        r.lease.epoch,
        r.status.value,
        r.attempt,
        maybe_us(r.next_attempt_at),
        WaitingReason.RETRY_SCHEDULED.value if r.status is DeliveryStatus.PENDING else None,
        us(r.started_at),
        r.outcome.status_code,
        now,
    )


def _attempt_row(r: AttemptResult, entropy: bytes) -> tuple[Any, ...]:
    started = us(r.started_at)
    return (
        new_id("att", now_ms=started // 1000, entropy=entropy),
        r.delivery_id,
        r.attempt,
        started,
        r.outcome.duration_ms,
        r.outcome.status_code,
        r.outcome.failure,
        r.outcome.response_excerpt,
        r.outcome.detail,
    )


_LIVE_ENDPOINTS = "SELECT id FROM endpoints WHERE id IN (SELECT value FROM json_each(?))"

_STILL_THERE = "SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))"

_INSERT_EVENTS = _Values(
    "INSERT INTO events (id, type, organization_id, created, received_at, body, delivery_count)",
    7,
    "ON CONFLICT DO NOTHING RETURNING id",
)

_INSERT_DELIVERIES = _Values(
    """INSERT INTO deliveries (id, event_id, endpoint_id, status, reason, next_attempt_at,
        lease_owner, lease_expires_at, created_at, updated_at, lease_epoch)""",
    11,
    "ON CONFLICT DO NOTHING RETURNING id, event_id",
)

_INSERT_DEAD_LETTERS = _Values(
    """INSERT INTO dead_letters (id, topic, "partition", "offset", key, value, reason, detail,
        received_at)""",
    9,
    "ON CONFLICT DO NOTHING RETURNING id",
)

# The fence is in the WHERE: a row is updated only while it carries the result's lease.
_COMPLETE = _Values(
    """WITH u (id, owner, epoch, status, attempts, next_attempt_at, waiting_reason,
        last_attempt_at, last_status_code, updated_at) AS (""",
    10,
    """)
    UPDATE deliveries AS d SET status = u.status, reason = NULL, attempts = u.attempts,
        next_attempt_at = u.next_attempt_at, waiting_reason = u.waiting_reason,
        lease_owner = NULL, lease_expires_at = NULL, last_attempt_at = u.last_attempt_at,
        last_status_code = u.last_status_code, updated_at = u.updated_at
    FROM u WHERE d.id = u.id AND d.lease_owner = u.owner AND d.lease_epoch = u.epoch
    RETURNING id""",
)

_INSERT_ATTEMPTS = _Values(
    """INSERT INTO attempts (id, delivery_id, attempt, started_at, duration_ms, status_code,
        failure_kind, response_excerpt, detail)""",
    9,
    "",
)

# A success advances last_success_at and resets failing_since to the batch's first failure
# after it (NULL when none); failures alone start failing_since if it is not running. A row
# whose clock would move by less than a second is left alone (as on PostgreSQL, where this
# keeps replicas from serialising on a hot endpoint).
_UPDATE_ENDPOINT_CLOCK = """
    UPDATE endpoints
    SET last_success_at = max(coalesce(last_success_at, :ok), coalesce(:ok, last_success_at)),
        failing_since = :fail
    WHERE id = :id AND CASE
        WHEN :ok IS NULL THEN failing_since IS NULL AND :fail IS NOT NULL
        ELSE last_success_at IS NULL OR :ok >= last_success_at + 1000000
             OR failing_since IS NOT :fail
    END
"""
