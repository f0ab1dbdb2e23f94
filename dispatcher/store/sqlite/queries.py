"""The SQLite backend's queries: value encoding, transactions, migrations' statements, the
batched hot path (`ingest`, `claim_due`, `complete` as plain functions the worker thread
runs inside `BEGIN IMMEDIATE … COMMIT`) and the SQL the API reads share.

Times are INTEGER microseconds since the Unix epoch (UTC); a collection parameter is a JSON
array read with `json_each` (SQLite's `= ANY($1)`).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from dispatcher.clock import new_id
from dispatcher.core.models import (
    AttemptResult,
    DeadLetter,
    DeliveryStatus,
    Endpoint,
    Event,
    NewDelivery,
    WaitingReason,
)
from dispatcher.store import schema
from dispatcher.store.records import IngestBatch, IngestResult, ReplayFilter, ReplayJobStatus

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def us(when: datetime) -> int:
    """An aware datetime as stored: microseconds since the epoch."""
    return (when - _EPOCH) // _MICROSECOND


def maybe_us(when: datetime | None) -> int | None:
    return None if when is None else us(when)


def dt(value: int) -> datetime:
    """A stored time back as an aware UTC datetime."""
    return _EPOCH + value * _MICROSECOND


def json_list(values: Collection[str]) -> str:
    """A parameter for `IN (SELECT value FROM json_each(?))`."""
    return orjson.dumps(list(values)).decode()


def statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (executescript would commit midway)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    leftover = [ln for ln in buffer.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise ValueError(f"migration ends with an incomplete statement: {leftover[0]!r}")


def transaction(conn: sqlite3.Connection, work: Work[T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def ingest(conn: sqlite3.Connection, *, batch: IngestBatch, now: int) -> IngestResult:
    # Deliveries routed to an endpoint deleted since are dropped, not an error.
    wanted = json_list({d.endpoint_id for d in batch.deliveries})
    live = {row[0] for row in conn.execute(_LIVE_ENDPOINTS, (wanted,))}
    deliveries = [d for d in batch.deliveries if d.endpoint_id in live]
    # New events are inserted already counting their deliveries; dedupe corrects it below.
    expected = Counter(d.event_id for d in deliveries)
    inserted_events = {
        event.id
        for event in batch.events
        if conn.execute(_INSERT_EVENT, _event_row(event, now, expected[event.id])).fetchone()
    }
    created = {
        d.id: d.event_id
        for d in deliveries
        if conn.execute(_INSERT_DELIVERY, _delivery_row(d, now)).fetchone()
    }
    changes = schema.delivery_count_changes(expected, inserted_events, created.values())
    conn.executemany(
        "UPDATE events SET delivery_count = delivery_count + ? WHERE id = ?",
        [(delta, event_id) for event_id, delta in changes],
    )
    conn.executemany(_INSERT_DEAD_LETTER, [_dead_letter_row(dl) for dl in batch.dead_letters])
    return IngestResult(
        created=frozenset(created),
        duplicate_events=len(batch.events) - len(inserted_events),
        duplicate_deliveries=len(deliveries) - len(created),
    )


def claim_due(
    conn: sqlite3.Connection, *, now: int, limit: int, lease: tuple[str, int, int]
) -> list[tuple[Any, ...]]:
    """Lease due deliveries; `lease` is (owner, expires at, updated at). One writer, so a
    select then an update inside the transaction cannot race another claimer."""
    rows = conn.execute(
        """
        SELECT d.id, d.event_id, e.type, d.endpoint_id, d.attempts, e.body
        FROM deliveries AS d JOIN events AS e ON e.id = d.event_id
        WHERE d.status = 'pending' AND d.due_at <= ?
        ORDER BY d.due_at LIMIT ?
        """,
        (now, limit),
    ).fetchall()
    conn.execute(
        """
        UPDATE deliveries SET lease_owner = ?, lease_expires_at = ?, updated_at = ?
        WHERE id IN (SELECT value FROM json_each(?))
        """,
        (*lease, json_list([row[0] for row in rows])),
    )
    return [tuple(row) for row in rows]


def complete(conn: sqlite3.Connection, *, results: Sequence[AttemptResult], now: int) -> None:
    # Endpoints first, then deliveries: the order a cascading delete takes them in.
    conn.executemany(
        _UPDATE_ENDPOINT_CLOCK,
        [
            {"id": c.endpoint_id, "ok": maybe_us(c.last_success), "fail": maybe_us(c.first_failure)}
            for c in schema.endpoint_clocks(results)
        ],
    )
    # A delivery deleted meanwhile (with its endpoint) just loses its attempt.
    ids = json_list([r.delivery_id for r in results])
    existing = {row[0] for row in conn.execute(_EXISTING_DELIVERIES, (ids,))}
    kept = [r for r in results if r.delivery_id in existing]
    conn.executemany(_UPDATE_DELIVERY, [_completed_row(r, now) for r in kept])
    conn.executemany(_INSERT_ATTEMPT, [_attempt_row(r) for r in kept])


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
        r.status.value,
        r.attempt,
        maybe_us(r.next_attempt_at),
        WaitingReason.RETRY_SCHEDULED.value if r.status is DeliveryStatus.PENDING else None,
        us(r.started_at),
        r.outcome.status_code,
        now,
        r.delivery_id,
    )


def _attempt_row(r: AttemptResult) -> tuple[Any, ...]:
    started = us(r.started_at)
    return (
        new_id("att", now_ms=started // 1000),
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

_EXISTING_DELIVERIES = "SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))"

_INSERT_EVENT = """
    INSERT INTO events (id, type, organization_id, created, received_at, body, delivery_count)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT DO NOTHING RETURNING id
"""

_INSERT_DELIVERY = """
    INSERT INTO deliveries (id, event_id, endpoint_id, status, reason, next_attempt_at,
        lease_owner, lease_expires_at, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT DO NOTHING RETURNING id
"""

_INSERT_DEAD_LETTER = """
    INSERT INTO dead_letters (id, topic, "partition", "offset", key, value, reason, detail,
        received_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT DO NOTHING
"""

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

_UPDATE_DELIVERY = """
    UPDATE deliveries SET status = ?, reason = NULL, attempts = ?, next_attempt_at = ?,
        waiting_reason = ?, lease_owner = NULL, lease_expires_at = NULL, last_attempt_at = ?,
        last_status_code = ?, updated_at = ?
    WHERE id = ?
"""

_INSERT_ATTEMPT = """
    INSERT INTO attempts (id, delivery_id, attempt, started_at, duration_ms, status_code,
        failure_kind, response_excerpt, detail)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

INSERT_CIPHERTEXT = (
    "INSERT INTO endpoint_secrets (endpoint_id, ciphertext, created_at) VALUES (?, ?, ?)"
)

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


def endpoint_config(endpoint: Endpoint, updated_at: int) -> tuple[Any, ...]:
    """The columns a PATCH may change, in the order `sqlite.py`'s endpoint statements list them."""
    return (
        endpoint.url,
        endpoint.scope.value,
        schema.dump_event_types(endpoint.event_types),
        endpoint.rate_limit,
        endpoint.description,
        schema.dump_metadata(endpoint.metadata),
        updated_at,
    )


def replay(
    conn: sqlite3.Connection,
    delivery_ids: Collection[str],
    *,
    actor: str,
    reason: str,
    at: int,
    job_id: str | None = None,
) -> int:
    """Reset deliveries to a fresh ladder and record the replay; return how many existed."""
    replayed = conn.execute(
        """
        UPDATE deliveries SET status = 'pending', reason = NULL, attempts = 0,
            next_attempt_at = ?1, waiting_reason = 'replay_queued', lease_owner = NULL,
            lease_expires_at = NULL,
            updated_at = ?1
        WHERE id IN (SELECT value FROM json_each(?2))
        RETURNING id
        """,
        (at, json_list(delivery_ids)),
    ).fetchall()
    conn.executemany(
        "INSERT INTO replays (delivery_id, actor, reason, at, job_id) VALUES (?, ?, ?, ?, ?)",
        [(row[0], actor, reason, at, job_id) for row in replayed],
    )
    return len(replayed)


def replay_filter_params(selection: ReplayFilter) -> dict[str, Any]:
    return delivery_filters(
        selection.endpoint_id,
        selection.statuses,
        selection.types,
        selection.since,
        selection.until,
    )


def create_replay_job(
    conn: sqlite3.Connection, *, row: dict[str, Any], selection: ReplayFilter
) -> tuple[sqlite3.Row, bool]:
    """Insert a job and snapshot its deliveries, unless an active job has the same filter.
    One writer at a time (BEGIN IMMEDIATE), so the check and the insert cannot race."""
    existing = conn.execute(_ACTIVE_JOB_BY_FILTER, (row["filter_key"],)).fetchone()
    if existing is not None:
        return existing, False
    conn.execute(_INSERT_REPLAY_JOB, row)
    total = conn.execute(
        "INSERT INTO replay_job_items (job_id, delivery_id) "  # noqa: S608 - constant text
        "SELECT :job_id, d.id FROM deliveries AS d JOIN events AS e ON e.id = d.event_id "
        + MATCHING_DELIVERIES,
        {**replay_filter_params(selection), "job_id": row["id"]},
    ).rowcount
    status = ReplayJobStatus.QUEUED if total else ReplayJobStatus.SUCCEEDED
    conn.execute(
        "UPDATE replay_jobs SET total = ?, status = ?, finished_at = ? WHERE id = ?",
        (total, status.value, None if total else row["created_at"], row["id"]),
    )
    job = conn.execute("SELECT * FROM replay_jobs WHERE id = ?", (row["id"],)).fetchone()
    return job, True


def advance_replay_job(
    conn: sqlite3.Connection, *, job_id: str, limit: int, now: int
) -> tuple[sqlite3.Row | None, int]:
    job = conn.execute("SELECT * FROM replay_jobs WHERE id = ?", (job_id,)).fetchone()
    if job is None or job["status"] not in (ReplayJobStatus.QUEUED, ReplayJobStatus.RUNNING):
        return job, 0
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT delivery_id FROM replay_job_items WHERE job_id = ? "
            "ORDER BY delivery_id LIMIT ?",
            (job_id, limit),
        )
    ]
    replay(conn, ids, actor=job["actor"], reason=job["reason"], at=now, job_id=job_id)
    conn.execute(
        "DELETE FROM replay_job_items WHERE job_id = ? "
        "AND delivery_id IN (SELECT value FROM json_each(?))",
        (job_id, json_list(ids)),
    )
    more = conn.execute(
        "SELECT 1 FROM replay_job_items WHERE job_id = ? LIMIT 1", (job_id,)
    ).fetchone()
    status = ReplayJobStatus.RUNNING if more else ReplayJobStatus.SUCCEEDED
    conn.execute(
        "UPDATE replay_jobs SET done = done + ?, status = ?, updated_at = ?, finished_at = ? "
        "WHERE id = ?",
        (len(ids), status.value, now, None if more else now, job_id),
    )
    job = conn.execute("SELECT * FROM replay_jobs WHERE id = ?", (job_id,)).fetchone()
    return job, len(ids)


_ACTIVE_JOB_BY_FILTER = (
    "SELECT * FROM replay_jobs WHERE filter_key = ? AND status IN ('queued', 'running')"
)

_INSERT_REPLAY_JOB = """
    INSERT INTO replay_jobs (id, organization_id, endpoint_id, filter_key, since, until,
        statuses, types, status, actor, reason, created_at, updated_at)
    VALUES (:id, :organization_id, :endpoint_id, :filter_key, :since, :until, :statuses,
        :types, 'queued', :actor, :reason, :created_at, :created_at)
"""
