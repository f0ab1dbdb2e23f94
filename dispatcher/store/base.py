"""The store interface: one Protocol, two implementations (SQLite and PostgreSQL).

Both backends pass the same contract suite (tests/dispatcher/store/contract.py). Writes on the
hot path are batched: `ingest` persists a whole Kafka batch (events, deliveries, dead
letters) in one transaction, and `complete` records a whole batch of attempts in another.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from dispatcher.models import (
    AttemptResult,
    Claim,
    DeadLetter,
    DisabledReason,
    Endpoint,
    EndpointStatus,
    Event,
    NewDelivery,
    Organization,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestBatch:
    events: Sequence[Event] = ()
    deliveries: Sequence[NewDelivery] = ()
    dead_letters: Sequence[DeadLetter] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    # Ids of the deliveries actually inserted; a (event id, endpoint id) pair that already
    # existed is skipped (dedupe) and counted in `duplicate_deliveries`.
    created: frozenset[str] = field(default_factory=frozenset)
    duplicate_events: int = 0
    duplicate_deliveries: int = 0


class StoreUnavailableError(Exception):
    """The database could not be reached or refused the operation (infrastructure fault)."""


class Store(Protocol):
    """Persistent state. Every method is one transaction; times are aware UTC datetimes."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def migrate(self) -> list[str]:
        """Apply pending versioned migrations; return the versions applied now."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailableError unless the database answers."""
        ...

    # -- organizations ------------------------------------------------------------------

    async def put_organization(self, org: Organization) -> None: ...

    async def get_organization(self, org_id: str) -> Organization | None: ...

    async def list_organizations(self) -> list[Organization]:
        """All known organizations (the routing directory is built from this)."""
        ...

    # -- endpoints and their secrets ----------------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint, secret: str, *, now: datetime) -> None:
        """Insert an endpoint and its first signing secret (encrypted at rest)."""
        ...

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None: ...

    async def list_endpoints(
        self, organization_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        """One org's endpoints ordered by id, starting after the cursor `after`."""
        ...

    async def routable_endpoints(self) -> list[Endpoint]:
        """Every endpoint not deleted (enabled or disabled): the routing table's input."""
        ...

    async def update_endpoint(self, endpoint: Endpoint, *, now: datetime) -> None: ...

    async def delete_endpoint(self, endpoint_id: str) -> bool: ...

    async def set_endpoint_status(
        self,
        endpoint_id: str,
        status: EndpointStatus,
        reason: DisabledReason | None,
        *,
        now: datetime,
    ) -> bool:
        """Change an endpoint's status; True when it changed."""
        ...

    async def rotate_secret(
        self, endpoint_id: str, secret: str, *, now: datetime, old_expires_at: datetime
    ) -> None:
        """Add `secret` as the newest; every older secret stops signing at `old_expires_at`."""
        ...

    async def signing_secrets(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        """Decrypted active secrets per endpoint, newest first (expired ones excluded)."""
        ...

    async def endpoints_failing_since(self, before: datetime) -> list[str]:
        """Enabled endpoints with no success since `before` whose deliveries keep failing."""
        ...

    # -- the hot path -------------------------------------------------------------------

    async def ingest(self, batch: IngestBatch) -> IngestResult:
        """Persist a consumer batch in one transaction, deduping events by id and
        deliveries by (event id, endpoint id)."""
        ...

    async def claim_due(
        self, *, now: datetime, limit: int, lease_owner: str, lease_expires_at: datetime
    ) -> list[Claim]:
        """Lease up to `limit` pending deliveries due at `now` whose lease is free or expired
        (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas never claim the same row)."""
        ...

    async def complete(self, results: Sequence[AttemptResult]) -> None:
        """Record a batch of attempts, update their deliveries (status, attempt count,
        next attempt, lease released) and each endpoint's success/failure clock."""
        ...

    async def release(
        self, delivery_ids: Collection[str], *, next_attempt_at: datetime
    ) -> None:
        """Give leased deliveries back without counting an attempt (breaker open, rate
        limited, shutdown): they become due again at `next_attempt_at`."""
        ...

    async def suppress(self, delivery_ids: Collection[str], reason: str) -> None:
        """Mark pending deliveries `suppressed` with a reason (kept and replayable)."""
        ...

    async def next_due_at(self) -> datetime | None:
        """The earliest next-attempt time among pending deliveries, for the poller's sleep."""
        ...

    async def purge(self, *, before: datetime) -> int:
        """Delete events created before `before` with their deliveries and attempts
        (WEBHOOKS_RETENTION); return how many events went."""
        ...
