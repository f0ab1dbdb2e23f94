"""What both backends share: the versioned migrations, and the mapping between domain
values and rows that does not depend on the database (JSON columns, the secret's associated
data, the endpoints' success/failure clocks computed from a batch of attempts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal, Protocol

import orjson

from dispatcher.core.models import (
    ApiKeyRecord,
    AttemptResult,
    DeliveryStatus,
    DisabledReason,
    Endpoint,
    EndpointScope,
    EndpointStatus,
    FailureKind,
    Organization,
    OrgStatus,
    SignatureScheme,
    WaitingReason,
)
from dispatcher.core.portal import PortalSession
from dispatcher.store.records import (
    AttemptRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    ReplayFilter,
    ReplayJobRecord,
    ReplayJobStatus,
    ReplayRecord,
)
from dispatcher.store.secretbox import SecretBox

Dialect = Literal["sqlite", "postgres"]
Clock = Callable[[], datetime]

MIGRATIONS_TABLE = "schema_migrations"


def system_clock() -> datetime:
    """The store's default clock for bookkeeping stamps (received_at, updated_at)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Migration:
    version: str  # the file name without `.sql`, e.g. "0001_initial"
    sql: str


def migrations(dialect: Dialect) -> list[Migration]:
    """The dialect's migrations in the order they apply (by file name)."""
    folder = resources.files(f"dispatcher.store.{dialect}").joinpath("migrations")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [Migration(entry.name.removesuffix(".sql"), entry.read_text("utf-8")) for entry in files]


def secret_aad(endpoint_id: str) -> bytes:
    """Associated data binding a sealed secret to its endpoint (rows cannot be swapped)."""
    return b"endpoint-secret:" + endpoint_id.encode("utf-8")


def resealed(
    box: SecretBox, rows: Iterable[tuple[Any, str, bytes]], *, limit: int
) -> tuple[list[tuple[bytes, Any]], int]:
    """Re-encryption of stored secrets (row id, endpoint id, ciphertext): up to `limit` of
    those the box's first key did not seal, as (new ciphertext, row id), and how many such
    remain after them."""
    stale = [row for row in rows if not box.is_current(row[2], aad=secret_aad(row[1]))]
    updates = [
        (box.reseal(blob, aad=secret_aad(endpoint_id)), row_id)
        for row_id, endpoint_id, blob in stale[:limit]
    ]
    return updates, len(stale) - len(updates)


def dump_event_types(event_types: frozenset[str] | None) -> str | None:
    return None if event_types is None else orjson.dumps(sorted(event_types)).decode()


def dump_metadata(metadata: Mapping[str, str]) -> str:
    return orjson.dumps(dict(metadata)).decode()


class Row(Protocol):
    """A result row addressable by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


# Converts a backend's stored time (SQLite: microseconds; PostgreSQL: datetime) to UTC.
When = Callable[[Any], datetime]


def _maybe(when: When, value: Any) -> datetime | None:
    return None if value is None else when(value)


def endpoint_from_row(row: Row, when: When) -> Endpoint:
    types = row["event_types"]
    reason = row["disabled_reason"]
    return Endpoint(
        id=row["id"],
        organization_id=row["organization_id"],
        url=row["url"],
        scope=EndpointScope(row["scope"]),
        event_types=None if types is None else frozenset(orjson.loads(types)),
        status=EndpointStatus(row["status"]),
        disabled_reason=None if reason is None else DisabledReason(reason),
        rate_limit=row["rate_limit"],
        signature_scheme=SignatureScheme(row["signature_scheme"]),
        public_key=row["public_key"],
        description=row["description"],
        metadata=orjson.loads(row["metadata"]),
        created_by_key_id=row["created_by_key_id"],
        created_at=when(row["created_at"]),
        updated_at=when(row["updated_at"]),
    )


def organization_from_row(row: Row) -> Organization:
    return Organization(
        id=row["id"],
        parent_id=row["parent_id"],
        status=OrgStatus(row["status"]),
        portal_origins=tuple(orjson.loads(row["portal_origins"])),
    )


def portal_session_from_row(row: Row, when: When) -> PortalSession:
    return PortalSession(
        id=row["id"],
        organization_id=row["organization_id"],
        key_id=row["key_id"],
        scopes=frozenset(orjson.loads(row["scopes"])),
        created_at=when(row["created_at"]),
        link_expires_at=when(row["link_expires_at"]),
        expires_at=when(row["expires_at"]),
        exchanged_at=_maybe(when, row["exchanged_at"]),
    )


# The columns `delivery_from_row` reads, for a `deliveries d JOIN events e` query.
DELIVERY_COLUMNS = """
    d.id, d.event_id, e.type AS event_type, d.endpoint_id, d.status, d.reason, d.attempts,
    d.next_attempt_at, d.waiting_reason, d.lease_owner, d.lease_expires_at, d.last_attempt_at,
    d.last_status_code, d.created_at, d.updated_at, d.lease_epoch
"""


def delivery_from_row(row: Row, when: When) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        endpoint_id=row["endpoint_id"],
        status=DeliveryStatus(row["status"]),
        reason=row["reason"],
        attempts=row["attempts"],
        next_attempt_at=_maybe(when, row["next_attempt_at"]),
        waiting_reason=(
            WaitingReason(row["waiting_reason"])
            if row["waiting_reason"] and row["status"] == DeliveryStatus.PENDING
            else None
        ),
        lease_owner=row["lease_owner"],
        lease_expires_at=_maybe(when, row["lease_expires_at"]),
        lease_epoch=row["lease_epoch"],
        last_attempt_at=_maybe(when, row["last_attempt_at"]),
        last_status_code=row["last_status_code"],
        created_at=when(row["created_at"]),
        updated_at=when(row["updated_at"]),
    )


def attempt_from_row(row: Row, when: When) -> AttemptRecord:
    failure = row["failure_kind"]
    return AttemptRecord(
        id=row["id"],
        delivery_id=row["delivery_id"],
        attempt=row["attempt"],
        started_at=when(row["started_at"]),
        duration_ms=row["duration_ms"],
        status_code=row["status_code"],
        failure=None if failure is None else FailureKind(failure),
        response_excerpt=bytes(row["response_excerpt"]),
        detail=row["detail"],
    )


def event_from_row(row: Row, when: When) -> EventRecord:
    return EventRecord(
        id=row["id"],
        type=row["type"],
        organization_id=row["organization_id"],
        created=when(row["created"]),
        received_at=when(row["received_at"]),
        body=bytes(row["body"]),
        delivery_count=row["delivery_count"],
    )


def dead_letter_from_row(row: Row, when: When) -> DeadLetterRecord:
    key, value = row["key"], row["value"]
    return DeadLetterRecord(
        id=row["id"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        key=None if key is None else bytes(key),
        value=None if value is None else bytes(value),
        reason=row["reason"],
        detail=row["detail"],
        received_at=when(row["received_at"]),
        retried_at=_maybe(when, row["retried_at"]),
    )


def replay_from_row(row: Row, when: When) -> ReplayRecord:
    return ReplayRecord(
        delivery_id=row["delivery_id"],
        actor=row["actor"],
        reason=row["reason"],
        at=when(row["at"]),
        job_id=row["job_id"],
    )


def dump_scopes(scopes: Collection[str]) -> str:
    return orjson.dumps(sorted(scopes)).decode()


def api_key_from_row(row: Row, when: When) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        organization_id=row["organization_id"],
        scopes=frozenset(orjson.loads(row["scopes"])),
        name=row["name"],
        created_at=when(row["created_at"]),
        revoked_at=_maybe(when, row["revoked_at"]),
    )


def replay_filter_key(selection: ReplayFilter) -> str:
    """The canonical text of a bulk replay's filter: two submissions with equal filters
    (while the first job is active) are one job."""
    return orjson.dumps(
        {
            "endpoint": selection.endpoint_id,
            "since": None if selection.since is None else selection.since.isoformat(),
            "until": None if selection.until is None else selection.until.isoformat(),
            "statuses": sorted(selection.statuses),
            "types": None if selection.types is None else sorted(selection.types),
        }
    ).decode()


def replay_job_from_row(row: Row, when: When) -> ReplayJobRecord:
    types = row["types"]
    return ReplayJobRecord(
        id=row["id"],
        organization_id=row["organization_id"],
        filter=ReplayFilter(
            endpoint_id=row["endpoint_id"],
            since=_maybe(when, row["since"]),
            until=_maybe(when, row["until"]),
            statuses=frozenset(DeliveryStatus(s) for s in orjson.loads(row["statuses"])),
            types=None if types is None else frozenset(orjson.loads(types)),
        ),
        status=ReplayJobStatus(row["status"]),
        total=row["total"],
        done=row["done"],
        actor=row["actor"],
        reason=row["reason"],
        created_at=when(row["created_at"]),
        updated_at=when(row["updated_at"]),
        finished_at=_maybe(when, row["finished_at"]),
    )


def delivery_count_changes(
    expected: Mapping[str, int], inserted_events: Collection[str], created: Iterable[str]
) -> list[tuple[str, int]]:
    """How far each event's `delivery_count` is off after an ingest, as (event id, delta).

    New events are inserted counting every delivery the batch routed to them (`expected`);
    `created` lists the event id of each delivery actually inserted. They differ only when
    deliveries were deduped, or arrived for an event stored by an earlier batch.
    """
    actual = Counter(created)
    changes = []
    for event_id in sorted(actual.keys() | set(inserted_events)):
        assumed = expected.get(event_id, 0) if event_id in inserted_events else 0
        if actual[event_id] != assumed:
            changes.append((event_id, actual[event_id] - assumed))
    return changes


@dataclass(frozen=True, slots=True)
class EndpointClock:
    """What one batch of attempts says about an endpoint's health.

    `last_success` is its latest success in the batch; `first_failure` its first failure
    after that success (after any time, when the batch has no success). Applied to the row:
    a success advances `last_success_at` and resets `failing_since` to `first_failure`;
    failures alone start `failing_since` if it is not running yet.
    """

    endpoint_id: str
    last_success: datetime | None
    first_failure: datetime | None


def endpoint_clocks(results: Iterable[AttemptResult]) -> list[EndpointClock]:
    """One clock per endpoint in the batch, ordered by endpoint id (a stable lock order)."""
    successes: dict[str, datetime] = {}
    failures: dict[str, list[datetime]] = {}
    for result in results:
        if result.outcome.succeeded:
            latest = successes.get(result.endpoint_id)
            if latest is None or result.started_at > latest:
                successes[result.endpoint_id] = result.started_at
        else:
            failures.setdefault(result.endpoint_id, []).append(result.started_at)
    clocks = []
    for endpoint_id in sorted(successes.keys() | failures.keys()):
        success = successes.get(endpoint_id)
        later = [t for t in failures.get(endpoint_id, ()) if success is None or t > success]
        clocks.append(EndpointClock(endpoint_id, success, min(later, default=None)))
    return clocks
