"""What the store returns and takes besides the core's values: records of rows as read
(deliveries, attempts, events, dead letters, replays, replay jobs) and the batch shapes of
the hot path (`IngestBatch`, `IngestResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dispatcher.core.models import (
    DeliveryStatus,
    FailureKind,
    WaitingReason,
)
from dispatcher.core.models import IngestBatch as IngestBatch  # the batch shape is core's


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    # Ids of the deliveries actually inserted; a (event id, endpoint id) pair that already
    # existed is skipped (dedupe) and counted in `duplicate_deliveries`.
    created: frozenset[str] = field(default_factory=frozenset)
    duplicate_events: int = 0
    duplicate_deliveries: int = 0
    # Ids of the events and dead letters inserted now (a re-consumed record is neither):
    # what the metrics count, so re-consumption after a rebalance inflates nothing.
    new_events: frozenset[str] = field(default_factory=frozenset)
    new_dead_letters: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    """A delivery as the API and the CLI show it."""

    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    status: DeliveryStatus
    reason: str | None  # why it is suppressed
    attempts: int  # every attempt ever made (a replay restarts the ladder, not the count)
    next_attempt_at: datetime | None  # None unless pending
    waiting_reason: WaitingReason | None  # why a pending delivery not in flight waits
    lease_owner: str | None
    lease_expires_at: datetime | None
    lease_epoch: int  # the fencing epoch of its latest claim (0: never leased)
    last_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One HTTP attempt of a delivery, kept across replays."""

    id: str
    delivery_id: str
    attempt: int  # 1-based, numbered across replays (1, 2, 3 … never repeated)
    started_at: datetime
    duration_ms: float
    status_code: int | None
    failure: FailureKind | None  # None: it succeeded
    response_excerpt: bytes
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    id: str
    type: str
    organization_id: str
    created: datetime
    received_at: datetime
    body: bytes
    delivery_count: int  # deliveries created for it; 0 is the durable "no subscribers"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetterRecord:
    id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str
    received_at: datetime
    retried_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayRecord:
    """One replay in a delivery's history: who, when, why (and which bulk job, if any)."""

    delivery_id: str
    actor: str
    reason: str
    at: datetime
    job_id: str | None = None


class ReplayJobStatus(StrEnum):
    QUEUED = "queued"  # accepted, nothing replayed yet
    RUNNING = "running"  # being drained at WEBHOOKS_REPLAY_RATE
    SUCCEEDED = "succeeded"  # every matched delivery was replayed


ACTIVE_REPLAY_JOB_STATUSES = (ReplayJobStatus.QUEUED, ReplayJobStatus.RUNNING)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayFilter:
    """Which of one endpoint's deliveries a bulk replay takes: `since` inclusive and
    `until` exclusive bound `created_at`; `types` None means every type."""

    endpoint_id: str
    since: datetime | None = None
    until: datetime | None = None
    statuses: frozenset[DeliveryStatus] = frozenset({DeliveryStatus.FAILED})
    types: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayJobRecord:
    """A bulk replay: the deliveries matching `filter` when it was created, replayed in id
    order; `done` of `total` so far."""

    id: str
    organization_id: str
    filter: ReplayFilter
    status: ReplayJobStatus
    total: int
    done: int
    actor: str  # the API key id that asked
    reason: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayStep:
    """What one `advance_replay_job` call did."""

    job: ReplayJobRecord | None  # after the step; None if the job does not exist
    processed: int  # matched deliveries taken off the job (replayed, or gone since)


@dataclass(frozen=True, slots=True, kw_only=True)
class Purged:
    """What one retention purge deleted (0s when another replica holds the purge)."""

    events: int = 0  # with their deliveries, attempts and replay history
    dead_letters: int = 0
    replay_jobs: int = 0  # finished ones, with their items
