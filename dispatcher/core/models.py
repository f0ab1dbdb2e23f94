"""Domain values shared by the core and the shell.

Everything here is a frozen value: the consumer turns Kafka bytes into an `Event`, the store
turns rows into `Endpoint`/`Organization`/`Claim`, and the pure core (routing, retry,
destinations) decides over them. Nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class OrgStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"


class EndpointScope(StrEnum):
    OWN = "own"
    ALL_CHILDREN = "all_children"


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    """Stored delivery statuses (docs/design.md §5)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class WaitingReason(StrEnum):
    """Why a pending delivery that is not in flight waits (stored; shown to users)."""

    RETRY_SCHEDULED = "retry_scheduled"  # a failed attempt put it back on the ladder
    BREAKER_OPEN = "breaker_open"  # its endpoint's breaker is open: due at the probe time
    RATE_LIMITED = "rate_limited"  # its endpoint's rateLimit paces it
    ENDPOINT_BUSY = "endpoint_busy"  # its endpoint's slots and backlog are full
    REPLAY_QUEUED = "replay_queued"  # replayed, waiting for its turn
    SHUTDOWN = "shutdown"  # a replica stopped before attempting it
    ATTEMPT_ERROR = "attempt_error"  # the attempt crashed in the dispatcher; retried soon
    # Never stored: shown for a delivery still leased to a replica whose lease ran out (it
    # stopped or stalled before recording an attempt); another replica claims it.
    LEASE_EXPIRED = "lease_expired"


class FailureKind(StrEnum):
    """Why an attempt did not succeed. Retryability is a property of the kind (see retry.py)."""

    HTTP_STATUS = "http_status"  # a non-2xx answer (3xx included: redirects are never followed)
    TIMEOUT = "timeout"  # the total attempt deadline passed
    CONNECT = "connect"  # refused, reset, unreachable
    DNS = "dns"  # the host name did not resolve
    TLS = "tls"  # handshake or certificate failure
    BLOCKED_DESTINATION = "blocked_destination"  # the destination guard refused the address
    INVALID_RESPONSE = "invalid_response"  # the peer spoke broken HTTP
    CIRCUIT_OPEN = "circuit_open"  # never sent: the endpoint's breaker is open (not stored)


class DisabledReason(StrEnum):
    GONE = "gone"  # the endpoint answered 410
    MANUAL = "manual"  # an API or CLI call
    FAILING = "failing"  # no success for WEBHOOKS_DISABLE_AFTER while deliveries kept failing


class SignatureScheme(StrEnum):
    """Standard Webhooks' schemes: `v1` HMAC-SHA256 (symmetric), `v1a` ed25519."""

    V1 = "v1"
    V1A = "v1a"


class SuppressedReason(StrEnum):
    ORG_SUSPENDED = "org_suspended"
    ORG_ARCHIVED = "org_archived"
    ENDPOINT_DISABLED = "endpoint_disabled"
    ENDPOINT_DELETED = "endpoint_deleted"
    # a firehose whose registering key lost org:admin (or was revoked), or an event whose
    # organization is no longer a child of the firehose's
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True, kw_only=True)
class Organization:
    id: str
    parent_id: str | None = None
    status: OrgStatus = OrgStatus.ACTIVE
    # Origins allowed to frame the partner portal (CSP frame-ancestors); set on their own.
    portal_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A validated event envelope. `body` is the exact compact JSON every endpoint receives."""

    id: str
    type: str
    created: datetime
    organization_id: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    id: str
    organization_id: str
    url: str
    scope: EndpointScope = EndpointScope.OWN
    # None means "every event type"; otherwise the exact types this endpoint subscribes to.
    event_types: frozenset[str] | None = None
    status: EndpointStatus = EndpointStatus.ENABLED
    disabled_reason: DisabledReason | None = None
    rate_limit: float | None = None  # requests per second; None = unlimited
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # The API key that registered the endpoint: a firehose is authorised at fan-out time
    # against that key still holding org:admin (None = created by the platform / tests).
    created_by_key_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    signature_scheme: SignatureScheme = field(default_factory=lambda: SignatureScheme.V1)
    public_key: str | None = None  # `whpk_…` for v1a (public); None for v1


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDelivery:
    """A delivery the consumer is about to persist (one per matching endpoint)."""

    id: str
    event_id: str
    endpoint_id: str
    status: DeliveryStatus  # PENDING or SUPPRESSED
    reason: str | None  # why it is suppressed
    next_attempt_at: datetime
    # The consumer leases fresh deliveries to its own workers so the poller does not claim
    # them too; after a crash the lease expires and any replica picks them up.
    lease_owner: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A Kafka record that could not become an event, kept with its original bytes."""

    id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str  # stable code: malformed_json, invalid_utf8, too_large, …
    detail: str  # for humans
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """A fencing token: who holds a pending delivery, and which claim of it.

    Every claim takes a fresh `epoch` (the row's counter plus one). A result, hand-back or
    suppression is applied only while the row still carries both owner and epoch, so a
    replica whose lease expired and was taken over cannot overwrite what the new holder did.
    """

    owner: str
    epoch: int


FRESH_EPOCH = 1  # the epoch of a delivery leased as it is ingested (never claimed before)


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A pending delivery leased to this process for one attempt."""

    delivery_id: str
    event_id: str
    event_type: str
    organization_id: str  # the event's organization (authorised again at every attempt)
    endpoint_id: str
    attempts: int  # attempts already made, across replays (0 for the first one)
    body: bytes
    lease: Lease
    ladder_start: int = 0  # attempts made before the latest replay restarted the ladder

    @property
    def attempt(self) -> int:
        """The number of the attempt about to be made: unique within the delivery."""
        return self.attempts + 1

    @property
    def ladder_position(self) -> int:
        """Its 1-based position on the retry ladder, which restarts at every replay."""
        return self.attempts - self.ladder_start + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptOutcome:
    """What one HTTP attempt came to. A failed delivery is a value, not an exception."""

    status_code: int | None
    failure: FailureKind | None  # None means success (2xx)
    duration_ms: float
    response_excerpt: bytes = b""
    retry_after: float | None = None  # seconds, parsed from Retry-After when present
    detail: str = ""  # human text for failures (never contains secrets)

    @property
    def succeeded(self) -> bool:
        return self.failure is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    """An attempt, and the decision taken on it, ready to be stored in one batch."""

    delivery_id: str
    endpoint_id: str
    attempt: int  # 1-based, numbered across replays (unique within the delivery)
    started_at: datetime
    outcome: AttemptOutcome
    status: DeliveryStatus  # the delivery's status after this attempt
    next_attempt_at: datetime | None  # when still pending
    lease: Lease  # the claim the attempt was made under (applied only if still held)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRecord:
    """An API key as stored: its id, owner and scopes, never the key (only a hash of it is
    kept, see core.scopes)."""

    id: str
    organization_id: str | None  # None: an operator key (ops:*, platform:orgs)
    scopes: frozenset[str]
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


def rfc3339(moment: datetime | None) -> str | None:
    """`2026-06-09T12:00:00.123Z` (milliseconds, UTC): how every API and CLI shows a time."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestBatch:
    """What one Kafka batch stores in one transaction (`Store.ingest`)."""

    events: Sequence[Event] = ()
    deliveries: Sequence[NewDelivery] = ()
    dead_letters: Sequence[DeadLetter] = ()
