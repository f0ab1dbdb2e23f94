"""The store interface: one Protocol, two implementations (SQLite and PostgreSQL).

Both backends pass the same contract suite (tests/dispatcher/store/contract.py). Writes on the
hot path are batched: `ingest` persists a whole Kafka batch (events, deliveries, dead
letters) in one transaction, and `complete` records a whole batch of attempts in another.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from dispatcher.core.health import BreakerTransition, EndpointHealth, StatsBucket
from dispatcher.core.models import (
    ApiKeyRecord,
    AttemptResult,
    Claim,
    DeliveryStatus,
    DisabledReason,
    Endpoint,
    EndpointStatus,
    Lease,
    Organization,
    WaitingReason,
)
from dispatcher.store.portal import PortalStore
from dispatcher.store.records import (
    AttemptRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    IngestBatch,
    IngestResult,
    Purged,
    ReplayFilter,
    ReplayJobRecord,
    ReplayRecord,
    ReplayStep,
)


class Store(PortalStore, Protocol):
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

    async def list_organizations(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[Organization]:
        """Known organizations ordered by id, starting after the cursor `after`; all of them
        without a limit (the routing directory is built from this)."""
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

    async def update_endpoint(self, endpoint: Endpoint, *, now: datetime) -> None:
        """Replace an endpoint's configuration (url, scope, event types, rate limit,
        description, metadata); status changes go through `set_endpoint_status`.
        Raises LookupError when the endpoint does not exist."""
        ...

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        """Delete an endpoint with its secrets, deliveries, attempts and replay history
        (nothing is left to claim for it); False when it did not exist."""
        ...

    async def set_endpoint_status(
        self,
        endpoint_id: str,
        status: EndpointStatus,
        reason: DisabledReason | None,
        *,
        now: datetime,
    ) -> bool:
        """Change an endpoint's status; True when it changed. Disabling records the reason
        and time; enabling clears them and restarts the auto-disable clock."""
        ...

    async def rotate_secret(
        self,
        endpoint_id: str,
        secret: str,
        *,
        now: datetime,
        old_expires_at: datetime,
        public_key: str | None = None,
    ) -> None:
        """Add `secret` (a `whsec_` secret or a `whsk_` private key) as the newest; every
        older one stops signing at `old_expires_at` (or earlier, if it already expired
        sooner); `public_key` (v1a) becomes the endpoint's. Raises NotFoundError for an
        unknown endpoint."""
        ...

    async def signing_secrets(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        """Decrypted active secrets per endpoint, newest first (expired ones excluded);
        endpoints without any are absent from the result."""
        ...

    async def endpoints_failing_since(self, before: datetime) -> list[str]:
        """Enabled endpoints with no success since `before` whose deliveries keep failing."""
        ...

    # -- the hot path -------------------------------------------------------------------

    async def ingest(self, batch: IngestBatch) -> IngestResult:
        """Persist a consumer batch in one transaction, deduping events by id and
        deliveries by (event id, endpoint id). Deliveries for an endpoint deleted since
        routing are dropped (neither created nor duplicate). A batch that breaks integrity
        (a delivery of an unknown event) raises ValueError and stores nothing."""
        ...

    async def claim_due(
        self, *, now: datetime, limit: int, lease_owner: str, lease_expires_at: datetime
    ) -> list[Claim]:
        """Lease up to `limit` pending deliveries due at `now` whose lease is free or expired
        (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas never claim the same row). Each
        claim takes a fresh epoch: its `Lease` is the fencing token of what follows."""
        ...

    async def complete(self, results: Sequence[AttemptResult]) -> frozenset[str]:
        """Record a batch of attempts, update their deliveries (status, attempt count,
        next attempt, lease released) and each endpoint's success/failure clock — each only
        where the delivery still carries the result's lease. Returns the ids of the stale
        results (the lease was taken over since), which change nothing and are not stored;
        a delivery deleted meanwhile just loses its attempt."""
        ...

    async def release(
        self,
        leased: Sequence[tuple[str, Lease]],
        *,
        next_attempt_at: datetime,
        reason: WaitingReason,
    ) -> int:
        """Give leased deliveries back without counting an attempt (breaker open, rate
        limited, shutdown): they become due again at `next_attempt_at`. Applied only where
        the lease is still held; returns how many were."""
        ...

    async def suppress(self, leased: Sequence[tuple[str, Lease]], reason: str) -> int:
        """Mark leased pending deliveries `suppressed` with a reason (kept and replayable),
        where the lease is still held; returns how many were."""
        ...

    async def next_due_at(self) -> datetime | None:
        """When `claim_due` will next find work, for the poller's sleep: the earliest
        next-attempt time among pending deliveries, or a lease's expiry when later."""
        ...

    async def heartbeat(self, instance_id: str, *, now: datetime, ttl: float) -> int:
        """Record that `instance_id` is alive at `now`, forget replicas not seen for `ttl`
        seconds, and return how many are alive (this one included)."""
        ...

    async def leave(self, instance_id: str) -> None:
        """`instance_id` stops (a clean shutdown): the others count one fewer at once."""
        ...

    async def reencrypt_secrets(self, *, limit: int) -> tuple[int, int]:
        """Seal again with the first WEBHOOKS_ENCRYPTION_KEY key up to `limit` stored signing
        secrets an older key sealed, in one transaction; return (how many now, how many
        remain). Call until none remain (resumable: each call commits its batch); then the
        older keys can be removed. Raises DecryptionError, changing nothing in that batch, if
        a secret opens with none of the configured keys."""
        ...

    async def purge(self, *, before: datetime) -> Purged:
        """Apply WEBHOOKS_RETENTION: delete events received before `before` that have no
        pending delivery (a replayed old delivery finishes its ladder first) with their
        deliveries, attempts and replay history; dead letters received before `before`; and
        replay jobs finished before it. Works in chunks, one transaction each, so a large
        purge never holds long locks. On PostgreSQL one replica purges at a time; the
        others find the purge taken and return at once."""
        ...

    # -- reads and on-call actions for the HTTP API ---------------------------------------

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None: ...

    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        statuses: Collection[DeliveryStatus] | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        """One endpoint's deliveries, newest first (by id); `after` is the last id of the
        previous page. `statuses`: any of them; `since` (inclusive) and `until` (exclusive)
        bound `created_at`."""
        ...

    async def count_deliveries(
        self,
        endpoint_id: str,
        *,
        statuses: Collection[DeliveryStatus] | None = None,
        types: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many of an endpoint's deliveries match (a bulk replay's dry run)."""
        ...

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        """Every attempt of a delivery, oldest first, replays included."""
        ...

    async def list_replays(self, delivery_id: str) -> list[ReplayRecord]:
        """A delivery's replay history, oldest first."""
        ...

    async def get_event(self, event_id: str) -> EventRecord | None: ...

    async def list_event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        """An event's deliveries, ordered by id."""
        ...

    async def list_dead_letters(
        self, *, reason: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeadLetterRecord]:
        """Dead letters, newest first (by id); `after` is the last id of the previous page."""
        ...

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None: ...

    async def mark_dead_letter_retried(self, dead_letter_id: str, *, now: datetime) -> bool:
        """Record that on-call re-submitted a dead letter; False when it does not exist."""
        ...

    async def replay_deliveries(
        self, delivery_ids: Collection[str], *, actor: str, reason: str, now: datetime
    ) -> int:
        """Reset deliveries to pending with a fresh ladder (the ladder starts after the
        attempts made so far, which keep counting and numbering; due `now`, lease released;
        attempt history kept) and record who replayed them and why. Returns how many existed
        and were reset."""
        ...

    # -- endpoint health (dispatcher.core.health) ---------------------------------------------

    async def record_breakers(self, transitions: Sequence[BreakerTransition]) -> int:
        """Report breaker transitions on the endpoints' rows: the latest (by `at`) wins, an
        older one arriving late changes nothing. Returns how many rows changed."""
        ...

    async def endpoint_health(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, EndpointHealth]:
        """The health of these endpoints at `now` (those that exist): sums of the rollup
        buckets of the last hour and day (never a scan of attempts), the endpoint's run of
        failures and reported breaker, and its pending and failed deliveries (counted on
        partial indexes)."""
        ...

    async def endpoint_stats(
        self, endpoint_id: str, *, since: datetime, until: datetime
    ) -> list[StatsBucket]:
        """The endpoint's rollup buckets starting in [since, until), summed across writers,
        in time order (empty buckets are absent)."""
        ...

    async def failing_endpoints(
        self, organization_id: str | None, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        """Failing endpoints (breaker not closed, a run of failures going on, or disabled for
        failing: gone or failing) of one organization, or of all (None): most recent failure
        first, then by id descending; `after` is the last id of the previous page."""
        ...

    async def purge_health(self, *, before: datetime) -> int:
        """Delete the rollup buckets that start before `before`; return how many."""
        ...

    # -- API keys ---------------------------------------------------------------------------

    async def create_api_key(self, key: ApiKeyRecord, key_hash: str) -> None:
        """Store a key by the hash of its secret (raises ValueError if either repeats)."""
        ...

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key whose secret hashes to `key_hash`, revoked or not."""
        ...

    async def get_api_keys(self, key_ids: Collection[str]) -> list[ApiKeyRecord]:
        """The keys with these ids that exist, ordered by id."""
        ...

    async def list_api_keys(self, *, organization_id: str | None = None) -> list[ApiKeyRecord]:
        """Every key (or one organization's keys), ordered by id."""
        ...

    async def revoke_api_key(self, key_id: str, *, now: datetime) -> bool:
        """Revoke a key now; False when it does not exist or was already revoked."""
        ...

    async def set_endpoint_creator(self, endpoint_id: str, key_id: str | None) -> bool:
        """Record the key a firehose's authorisation now rests on (an org:admin key that
        widened its scope); False when the endpoint does not exist."""
        ...

    # -- bulk replay jobs --------------------------------------------------------------------

    async def create_replay_job(
        self,
        *,
        job_id: str,
        organization_id: str,
        filter: ReplayFilter,
        actor: str,
        reason: str,
        now: datetime,
    ) -> tuple[ReplayJobRecord, bool]:
        """Snapshot the deliveries matching `filter` into a queued job (succeeded at once
        when none match). While a queued or running job has the same filter, return that
        job instead: (job, False). `total` equals `count_deliveries` over the filter."""
        ...

    async def get_replay_job(self, job_id: str) -> ReplayJobRecord | None: ...

    async def list_replay_jobs(
        self, *, organization_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[ReplayJobRecord]:
        """Jobs (of one organization, or every one's), newest first (by id); `after` is the
        last id of the previous page."""
        ...

    async def active_replay_jobs(self) -> list[ReplayJobRecord]:
        """Queued and running jobs, oldest first (what a restarted service resumes)."""
        ...

    async def advance_replay_job(self, job_id: str, *, limit: int, now: datetime) -> ReplayStep:
        """Replay the job's next `limit` deliveries (in id order) as `replay_deliveries`
        does, recording the job in their history; the job is running until its last
        delivery is taken, then succeeded. A finished job is left alone (processed 0)."""
        ...
