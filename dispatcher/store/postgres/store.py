"""The PostgreSQL backend (`postgresql://…`): production, many replicas sharing one database.

`PostgresStore` is the Store interface, method by method; each runs its statements on a
connection lent by `_run` (pool.py: the asyncpg pool's lifecycle; connection failures become
StoreUnavailableError, lost deadlock races are retried, integrity violations become
IntegrityViolationError), in a transaction where it needs one. The statements live beside
it: hotpath.py (ingest, claim, complete), scheduling.py (release, suppress, next due, purge),
reads.py (the API's reads), endpoints.py (organizations, endpoints, secrets, API keys),
replays.py (replays and jobs), portal.py (mixed in) and migrate.py (the schema).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import partial
from urllib.parse import urlsplit

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
from dispatcher.store import schema
from dispatcher.store.postgres import endpoints, health, hotpath, reads, replays, scheduling
from dispatcher.store.postgres.connection import same
from dispatcher.store.postgres.migrate import apply_migrations
from dispatcher.store.postgres.pool import PooledConnections
from dispatcher.store.postgres.portal import PortalMethods
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
from dispatcher.store.secretbox import SecretBox


class PostgresStore(health.HealthMethods, PortalMethods, PooledConnections):
    """The Store on PostgreSQL, shared by every replica."""

    def __init__(
        self,
        url: str,
        *,
        secret_box: SecretBox,
        clock: schema.Clock = schema.system_clock,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 60.0,
        database_clock: bool = True,
    ) -> None:
        super().__init__(
            url,
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )
        self._box = secret_box
        self._clock = clock
        # Leases judged by the database's time (replicas with skewed clocks agree); the
        # contract suite turns it off to drive every time from its fake clock.
        self._database_clock = database_clock

    def __repr__(self) -> str:
        parts = urlsplit(self._url)  # never the password
        return f"PostgresStore({parts.hostname}:{parts.port or 5432}{parts.path})"

    # -- schema ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        return await self._run(partial(apply_migrations, now=self._clock()), transaction=True)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchrow("SELECT 1"))

    # -- organizations --------------------------------------------------------------------

    async def put_organization(self, org: Organization) -> None:
        await self._run(partial(endpoints.put_organization, org=org, now=self._clock()))

    async def get_organization(self, org_id: str) -> Organization | None:
        return await self._run(partial(endpoints.get_organization, org_id=org_id))

    async def list_organizations(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[Organization]:
        return await self._run(partial(endpoints.list_organizations, after=after, limit=limit))

    # -- endpoints and secrets ------------------------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint, secret: str, *, now: datetime) -> None:
        sealed = self._box.encrypt(secret, aad=schema.secret_aad(endpoint.id))
        work = partial(endpoints.create_endpoint, endpoint=endpoint, sealed=sealed, now=now)
        await self._run(work, transaction=True)

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        return await self._run(partial(endpoints.get_endpoint, endpoint_id=endpoint_id))

    async def list_endpoints(
        self, organization_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        work = partial(
            endpoints.list_endpoints, organization_id=organization_id, after=after, limit=limit
        )
        return await self._run(work)

    async def routable_endpoints(self) -> list[Endpoint]:
        return await self._run(endpoints.routable_endpoints)

    async def update_endpoint(self, endpoint: Endpoint, *, now: datetime) -> None:
        await self._run(partial(endpoints.update_endpoint, endpoint=endpoint, now=now))

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        work = partial(endpoints.delete_endpoint, endpoint_id=endpoint_id)
        return await self._run(work, transaction=True)

    async def set_endpoint_status(
        self,
        endpoint_id: str,
        status: EndpointStatus,
        reason: DisabledReason | None,
        *,
        now: datetime,
    ) -> bool:
        work = partial(
            endpoints.set_endpoint_status,
            endpoint_id=endpoint_id,
            status=status,
            reason=reason,
            now=now,
        )
        return await self._run(work)

    async def rotate_secret(
        self,
        endpoint_id: str,
        secret: str,
        *,
        now: datetime,
        old_expires_at: datetime,
        public_key: str | None = None,
    ) -> None:
        sealed = self._box.encrypt(secret, aad=schema.secret_aad(endpoint_id))
        work = partial(
            endpoints.rotate_secret,
            endpoint_id=endpoint_id,
            sealed=sealed,
            now=now,
            old_expires_at=old_expires_at,
            public_key=public_key,
        )
        await self._run(work, transaction=True)

    async def signing_secrets(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        ids = list(endpoint_ids)
        work = partial(endpoints.signing_secrets, endpoint_ids=ids, now=now, box=self._box)
        return await self._run(work)

    async def endpoints_failing_since(self, before: datetime) -> list[str]:
        return await self._run(partial(endpoints.endpoints_failing_since, before=before))

    # -- the hot path ---------------------------------------------------------------------

    async def ingest(self, batch: IngestBatch) -> IngestResult:
        work = partial(
            hotpath.ingest, batch=batch, now=self._clock(), database_clock=self._database_clock
        )
        return await self._run(work, transaction=True)

    async def claim_due(
        self, *, now: datetime, limit: int, lease_owner: str, lease_expires_at: datetime
    ) -> list[Claim]:
        work = partial(
            hotpath.claim_due,
            now=now,
            limit=limit,
            lease_owner=lease_owner,
            lease_expires_at=lease_expires_at,
            stamp=self._clock(),
            database_clock=self._database_clock,
        )
        return await self._run(work, transaction=True)

    async def complete(self, results: Sequence[AttemptResult]) -> frozenset[str]:
        if not results:
            return frozenset()
        work = partial(hotpath.complete, results=results, now=self._clock())
        return await self._run(work, transaction=True)

    async def release(
        self,
        leased: Sequence[tuple[str, Lease]],
        *,
        next_attempt_at: datetime,
        reason: WaitingReason,
    ) -> int:
        work = partial(
            scheduling.release,
            leased=list(leased),
            next_attempt_at=next_attempt_at,
            now=self._clock(),
            reason=reason,
        )
        return await self._run(work)

    async def suppress(self, leased: Sequence[tuple[str, Lease]], reason: str) -> int:
        work = partial(scheduling.suppress, leased=list(leased), reason=reason, now=self._clock())
        return await self._run(work)

    async def next_due_at(self) -> datetime | None:
        return await self._run(scheduling.next_due_at)

    async def heartbeat(self, instance_id: str, *, now: datetime, ttl: float) -> int:
        work = partial(scheduling.heartbeat, instance_id=instance_id, now=now, ttl=ttl)
        return await self._run(work, transaction=True)

    async def leave(self, instance_id: str) -> None:
        await self._run(partial(scheduling.leave, instance_id=instance_id))

    async def reencrypt_secrets(self, *, limit: int) -> tuple[int, int]:
        work = partial(endpoints.reencrypt_secrets, box=self._box, limit=limit)
        return await self._run(work, transaction=True)

    async def purge(self, *, before: datetime) -> Purged:
        counts = dict.fromkeys(scheduling.PURGE_TABLES, 0)
        for table in scheduling.PURGE_TABLES:
            chunk = partial(scheduling.purge_chunk, table=table, before=before)
            while True:  # in chunks, one transaction each
                deleted = await self._run(chunk, transaction=True)
                if deleted is None:  # another replica is purging
                    return Purged(**counts)
                counts[table] += deleted
                if deleted < scheduling.PURGE_CHUNK:
                    break
        return Purged(**counts)

    # -- reads and on-call actions for the HTTP API -----------------------------------------

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        return await self._run(partial(reads.get_delivery, delivery_id=delivery_id))

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
        work = partial(
            reads.list_deliveries,
            endpoint_id=endpoint_id,
            statuses=statuses,
            event_type=event_type,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )
        return await self._run(work)

    async def count_deliveries(
        self,
        endpoint_id: str,
        *,
        statuses: Collection[DeliveryStatus] | None = None,
        types: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        work = partial(
            reads.count_deliveries,
            endpoint_id=endpoint_id,
            statuses=statuses,
            types=types,
            since=since,
            until=until,
        )
        return await self._run(work)

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        return await self._run(partial(reads.list_attempts, delivery_id=delivery_id))

    async def list_replays(self, delivery_id: str) -> list[ReplayRecord]:
        return await self._run(partial(reads.list_replays, delivery_id=delivery_id))

    async def get_event(self, event_id: str) -> EventRecord | None:
        return await self._run(partial(reads.get_event, event_id=event_id))

    async def list_event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        return await self._run(partial(reads.list_event_deliveries, event_id=event_id))

    async def list_dead_letters(
        self, *, reason: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeadLetterRecord]:
        work = partial(reads.list_dead_letters, reason=reason, after=after, limit=limit)
        return await self._run(work)

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None:
        return await self._run(partial(reads.get_dead_letter, dead_letter_id=dead_letter_id))

    async def mark_dead_letter_retried(self, dead_letter_id: str, *, now: datetime) -> bool:
        work = partial(reads.mark_dead_letter_retried, dead_letter_id=dead_letter_id, now=now)
        return await self._run(work)

    async def replay_deliveries(
        self, delivery_ids: Collection[str], *, actor: str, reason: str, now: datetime
    ) -> int:
        work = partial(replays.replay, delivery_ids=list(delivery_ids), actor=actor, reason=reason)
        return await self._run(partial(work, now=now))

    # -- API keys -----------------------------------------------------------------------------

    async def create_api_key(self, key: ApiKeyRecord, key_hash: str) -> None:
        await self._run(partial(endpoints.create_api_key, key=key, key_hash=key_hash))

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return await self._run(partial(endpoints.api_key_by_hash, key_hash=key_hash))

    async def get_api_keys(self, key_ids: Collection[str]) -> list[ApiKeyRecord]:
        return await self._run(partial(endpoints.get_api_keys, key_ids=list(key_ids)))

    async def list_api_keys(self, *, organization_id: str | None = None) -> list[ApiKeyRecord]:
        work = partial(endpoints.list_api_keys, organization_id=organization_id)
        return await self._run(work)

    async def revoke_api_key(self, key_id: str, *, now: datetime) -> bool:
        return await self._run(partial(endpoints.revoke_api_key, key_id=key_id, now=now))

    async def set_endpoint_creator(self, endpoint_id: str, key_id: str | None) -> bool:
        work = partial(endpoints.set_endpoint_creator, endpoint_id=endpoint_id, key_id=key_id)
        return await self._run(work)

    # -- bulk replay jobs ---------------------------------------------------------------------

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
        filter_key = schema.replay_filter_key(filter)
        row = replays.job_row(job_id, organization_id, filter, filter_key, actor, reason, now)
        work = partial(replays.create_replay_job, row=row, selection=filter, filter_key=filter_key)
        for attempt in range(3):  # a twin that finished mid-insert is retried
            try:
                job, created = await self._run(work, transaction=True)
            except replays.ReplayJobRaceError:
                if attempt == 2:
                    raise
                continue
            return schema.replay_job_from_row(job, same), created
        raise AssertionError("unreachable")

    async def get_replay_job(self, job_id: str) -> ReplayJobRecord | None:
        return await self._run(partial(replays.get_replay_job, job_id=job_id))

    async def active_replay_jobs(self) -> list[ReplayJobRecord]:
        return await self._run(replays.active_replay_jobs)

    async def list_replay_jobs(
        self, *, organization_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[ReplayJobRecord]:
        work = partial(replays.list_replay_jobs, org=organization_id, after=after, limit=limit)
        return await self._run(work)

    async def advance_replay_job(self, job_id: str, *, limit: int, now: datetime) -> ReplayStep:
        work = partial(replays.advance_replay_job, job_id=job_id, limit=limit, now=now)
        job, processed = await self._run(work, transaction=True)
        record = None if job is None else schema.replay_job_from_row(job, same)
        return ReplayStep(job=record, processed=processed)
