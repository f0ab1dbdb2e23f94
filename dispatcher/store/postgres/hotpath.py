"""The PostgreSQL backend's batched hot path: `ingest`, `claim_due` and `complete`, the
functions `PostgresStore` runs on a pooled connection inside one transaction each, and the
statements they run.

Each table gets one multi-row statement per batch, its rows passed as parallel arrays and
expanded by `unnest`, so a batch of 500 deliveries costs a handful of round trips rather than
500. Replicas claim disjoint due deliveries with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from dispatcher.clock import new_id
from dispatcher.core.models import FRESH_EPOCH, AttemptResult, Claim, DeliveryStatus, Lease
from dispatcher.errors import IntegrityViolationError
from dispatcher.store import schema
from dispatcher.store.postgres import health
from dispatcher.store.records import IngestBatch, IngestResult

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn


async def ingest(
    conn: Conn, batch: IngestBatch, now: datetime, database_clock: bool = True
) -> IngestResult:
    """Run inside a transaction. With `database_clock`, a fresh delivery's lease runs from
    the database's time for as long as the caller asked (its expiry minus its due time)."""
    await conn.execute(KEYED_PLANS)
    deliveries = batch.deliveries
    if deliveries:
        # Deliveries routed to an endpoint deleted since are dropped, not an error. The key
        # share lock keeps the endpoints we insert for from being deleted until we commit.
        wanted = sorted({d.endpoint_id for d in deliveries})
        live = {row[0] for row in await conn.fetch(_LOCK_LIVE_ENDPOINTS, wanted)}
        deliveries = [d for d in deliveries if d.endpoint_id in live]
    # New events are inserted already counting their deliveries; dedupe corrects it below.
    expected = Counter(d.event_id for d in deliveries)
    inserted_events: set[str] = set()
    if batch.events:
        events = batch.events
        rows = await conn.fetch(
            _INSERT_EVENTS,
            [e.id for e in events],
            [e.type for e in events],
            [e.organization_id for e in events],
            [e.created for e in events],
            [e.body for e in events],
            [expected[e.id] for e in events],
            now,
        )
        inserted_events = {row[0] for row in rows}
    created: dict[str, str] = {}
    if deliveries:
        await _lock_stored_events({d.event_id for d in deliveries} - inserted_events, conn)
        rows = await conn.fetch(
            _INSERT_DELIVERIES,
            [d.id for d in deliveries],
            [d.event_id for d in deliveries],
            [d.endpoint_id for d in deliveries],
            [d.status.value for d in deliveries],
            [d.reason for d in deliveries],
            [d.next_attempt_at if d.status is DeliveryStatus.PENDING else None for d in deliveries],
            [d.lease_owner for d in deliveries],
            [d.lease_expires_at for d in deliveries],
            now,
            FRESH_EPOCH,
            database_clock,
        )
        created = {row[0]: row[1] for row in rows}
    changes = schema.delivery_count_changes(expected, inserted_events, created.values())
    if changes:
        await conn.execute(
            """
            UPDATE events AS e SET delivery_count = e.delivery_count + c.delta
            FROM unnest($1::text[], $2::int[]) AS c (id, delta) WHERE e.id = c.id
            """,
            [event_id for event_id, _ in changes],
            [delta for _, delta in changes],
        )
    new_dead_letters: set[str] = set()
    if batch.dead_letters:
        letters = batch.dead_letters
        inserted = await conn.fetch(
            _INSERT_DEAD_LETTERS,
            [dl.id for dl in letters],
            [dl.topic for dl in letters],
            [dl.partition for dl in letters],
            [dl.offset for dl in letters],
            [dl.key for dl in letters],
            [dl.value for dl in letters],
            [dl.reason for dl in letters],
            [dl.detail for dl in letters],
            [dl.received_at for dl in letters],
        )
        new_dead_letters = {row[0] for row in inserted}
    return IngestResult(
        created=frozenset(created),
        duplicate_events=len(batch.events) - len(inserted_events),
        duplicate_deliveries=len(deliveries) - len(created),
        new_events=frozenset(inserted_events),
        new_dead_letters=frozenset(new_dead_letters),
    )


async def _lock_stored_events(event_ids: set[str], conn: Conn) -> None:
    """Deliveries may reference events stored by an earlier batch: they must exist, and stay
    until we commit (a purge waits). There are no foreign keys to do this (see 0001)."""
    if not event_ids:
        return
    found = {row[0] for row in await conn.fetch(_LOCK_STORED_EVENTS, sorted(event_ids))}
    if missing := event_ids - found:
        raise IntegrityViolationError(
            f"integrity violation: deliveries of unknown events {sorted(missing)}"
        )


async def claim_due(
    conn: Conn,
    *,
    now: datetime,
    limit: int,
    lease_owner: str,
    lease_expires_at: datetime,
    stamp: datetime,
    database_clock: bool = True,
) -> list[Claim]:
    """Run inside a transaction. SKIP LOCKED makes concurrent claimers take disjoint rows,
    and the re-check after locking drops a row another claimer leased meanwhile. Each
    event's type and body are fetched once, however many of its deliveries were claimed.

    With `database_clock` (the default) a lease is judged and set by the database's time —
    expired when `lease_expires_at <= statement_timestamp()`, and running for
    `lease_expires_at - now` from it — so replicas with skewed clocks agree on it; the due
    time of a retry stays the caller's."""
    await conn.execute(KEYED_PLANS)
    if database_clock:
        seconds = (lease_expires_at - now).total_seconds()
        leased = await conn.fetch(_CLAIM_BY_DATABASE_TIME, now, limit, lease_owner, seconds, stamp)
    else:
        leased = await conn.fetch(_CLAIM, now, limit, lease_owner, lease_expires_at, stamp)
    if not leased:
        return []
    events = {
        row["id"]: (row["type"], row["body"], row["organization_id"])
        for row in await conn.fetch(_CLAIMED_EVENTS, list({row["event_id"] for row in leased}))
    }
    leased.sort(key=lambda row: (row["next_attempt_at"], row["id"]))
    return [
        Claim(
            delivery_id=row["id"],
            event_id=row["event_id"],
            event_type=events[row["event_id"]][0],
            organization_id=events[row["event_id"]][2],
            endpoint_id=row["endpoint_id"],
            attempts=row["attempts"],
            ladder_start=row["ladder_start"],
            body=events[row["event_id"]][1],
            lease=Lease(lease_owner, row["lease_epoch"]),
        )
        for row in leased
    ]


async def complete(conn: Conn, results: Sequence[AttemptResult], now: datetime) -> frozenset[str]:
    """Run inside a transaction. Each result applies only where the delivery still carries
    its lease (owner and epoch); returns the ids of the stale ones. The endpoint clocks take
    every result: a stale attempt still happened, and says how the endpoint answered."""
    await conn.execute(KEYED_PLANS)
    # Endpoints first (in id order), then deliveries: the order a cascading delete locks
    # them in, so the two cannot deadlock.
    clocks = schema.endpoint_clocks(results)
    await conn.execute(
        _UPDATE_ENDPOINT_CLOCKS,
        [c.endpoint_id for c in clocks],
        [c.last_success for c in clocks],
        [c.first_failure for c in clocks],
    )
    await health.record(conn, results)  # every result, as the clocks
    updated = await conn.fetch(
        _UPDATE_DELIVERIES,
        [r.delivery_id for r in results],
        [r.status.value for r in results],
        [r.attempt for r in results],
        [r.next_attempt_at for r in results],
        [r.started_at for r in results],
        [r.outcome.status_code for r in results],
        now,
        [r.lease.owner for r in results],
        [r.lease.epoch for r in results],
    )
    applied = {row[0] for row in updated}
    kept = [r for r in results if r.delivery_id in applied]
    missed = [r.delivery_id for r in results if r.delivery_id not in applied]
    # Not applied: the lease was taken over (stale), or the delivery was deleted meanwhile
    # (with its endpoint), which just loses its attempt.
    stale = (
        frozenset(row[0] for row in await conn.fetch(_STILL_THERE, missed))
        if missed
        else frozenset()
    )
    await conn.execute(
        _INSERT_ATTEMPTS,
        [new_id("att", now_ms=int(r.started_at.timestamp() * 1000)) for r in kept],
        [r.delivery_id for r in kept],
        [r.attempt for r in kept],
        [r.started_at for r in kept],
        [r.outcome.duration_ms for r in kept],
        [r.outcome.status_code for r in kept],
        [r.outcome.failure for r in kept],
        [r.outcome.response_excerpt for r in kept],
        [r.outcome.detail for r in kept],
    )
    return stale


# The hot path's statements touch a few hundred rows by key. Planner statistics lag behind a
# fast-changing queue (a fresh table, a sudden backlog), and with them the planner was seen
# sorting every due row to claim 500, and hash-joining a whole table to update 500 rows by
# id. Inside these transactions only, it must use the indexes.
KEYED_PLANS = """
    SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
    SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
    SET LOCAL enable_sort = off
"""

_LOCK_LIVE_ENDPOINTS = """
    SELECT id FROM endpoints WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE
"""

_INSERT_EVENTS = """
    INSERT INTO events (id, type, organization_id, created, body, delivery_count, received_at)
    SELECT e.*, $7::timestamptz
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bytea[], $6::int[])
        AS e (id, type, organization_id, created, body, delivery_count)
    ON CONFLICT DO NOTHING
    RETURNING id
"""

_INSERT_DELIVERIES = """
    INSERT INTO deliveries (id, event_id, endpoint_id, status, reason, next_attempt_at,
        lease_owner, lease_expires_at, created_at, updated_at, lease_epoch)
    SELECT d.id, d.event_id, d.endpoint_id, d.status, d.reason, d.next_attempt_at,
        d.lease_owner,
        CASE WHEN d.lease_owner IS NULL OR NOT $11::boolean THEN d.lease_expires_at
             ELSE statement_timestamp() + (d.lease_expires_at - d.next_attempt_at) END,
        $9::timestamptz, $9::timestamptz,
        CASE WHEN d.lease_owner IS NULL THEN 0 ELSE $10::bigint END
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                $6::timestamptz[], $7::text[], $8::timestamptz[])
        AS d (id, event_id, endpoint_id, status, reason, next_attempt_at, lease_owner,
              lease_expires_at)
    ON CONFLICT DO NOTHING
    RETURNING id, event_id
"""

_INSERT_DEAD_LETTERS = """
    INSERT INTO dead_letters (id, topic, "partition", "offset", key, value, reason, detail,
        received_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bytea[],
                         $6::bytea[], $7::text[], $8::text[], $9::timestamptz[])
    ON CONFLICT DO NOTHING
    RETURNING id
"""

_LOCK_STORED_EVENTS = """
    SELECT id FROM events WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE
"""

_CLAIM = """
    WITH due AS (
        SELECT id FROM deliveries
        WHERE status = 'pending' AND due_at <= $1
        ORDER BY due_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries AS d
    SET lease_owner = $3, lease_expires_at = $4, updated_at = $5, lease_epoch = d.lease_epoch + 1
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.event_id, d.endpoint_id, d.attempts, d.ladder_start, d.next_attempt_at,
        d.lease_epoch
"""

_CLAIM_BY_DATABASE_TIME = """
    WITH due AS (
        SELECT id FROM deliveries
        WHERE status = 'pending' AND due_at <= GREATEST($1, statement_timestamp())
            AND next_attempt_at <= $1
            AND (lease_expires_at IS NULL OR lease_expires_at <= statement_timestamp())
        ORDER BY due_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries AS d
    SET lease_owner = $3, lease_expires_at = statement_timestamp() + make_interval(secs => $4),
        updated_at = $5, lease_epoch = d.lease_epoch + 1
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.event_id, d.endpoint_id, d.attempts, d.ladder_start, d.next_attempt_at,
        d.lease_epoch
"""

_CLAIMED_EVENTS = "SELECT id, type, body, organization_id FROM events WHERE id = ANY($1::text[])"

_STILL_THERE = "SELECT id FROM deliveries WHERE id = ANY($1::text[])"

# A success advances last_success_at and resets failing_since to the batch's first failure
# after it (NULL when none); failures alone start failing_since if it is not running. A row
# whose clock would move by less than a second is neither rewritten nor locked, so a hot
# endpoint is not serialised across replicas on every batch. Everything reads `e` in the
# UPDATE itself, so the re-check after a concurrent change sees the latest row.
_UPDATE_ENDPOINT_CLOCKS = """
    UPDATE endpoints AS e
    SET last_success_at = GREATEST(e.last_success_at, c.ok), failing_since = c.fail
    FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS c (id, ok, fail)
    WHERE e.id = c.id AND CASE
        WHEN c.ok IS NULL THEN e.failing_since IS NULL AND c.fail IS NOT NULL
        ELSE e.last_success_at IS NULL OR c.ok >= e.last_success_at + interval '1 second'
             OR e.failing_since IS DISTINCT FROM c.fail
    END
"""

_UPDATE_DELIVERIES = """
    UPDATE deliveries AS d
    SET status = u.status, reason = NULL, attempts = u.attempt,
        next_attempt_at = u.next_attempt_at,
        waiting_reason = CASE WHEN u.status = 'pending' THEN 'retry_scheduled' END,
        lease_owner = NULL, lease_expires_at = NULL,
        last_attempt_at = u.started_at, last_status_code = u.status_code, updated_at = $7
    FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[],
                $6::int[], $8::text[], $9::bigint[])
        AS u (id, status, attempt, next_attempt_at, started_at, status_code, owner, epoch)
    WHERE d.id = u.id AND d.lease_owner = u.owner AND d.lease_epoch = u.epoch
    RETURNING d.id
"""

_INSERT_ATTEMPTS = """
    INSERT INTO attempts (id, delivery_id, attempt, started_at, duration_ms, status_code,
        failure_kind, response_excerpt, detail)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[],
                         $5::float8[], $6::int[], $7::text[], $8::bytea[], $9::text[])
"""
