"""The PostgreSQL backend (`postgresql://…`): production, many replicas sharing one database.

An asyncpg pool; statements are prepared and cached per connection. Replicas claim due work
with `FOR UPDATE SKIP LOCKED`; the hot path is batched with `unnest` (postgres_queries.py).
Connection failures become StoreUnavailableError; a deadlock or serialization failure is
retried a few times first; an integrity violation (a caller's bug) becomes ValueError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

import asyncpg
from asyncpg import Record

from dispatcher.core.models import (
    ApiKeyRecord,
    AttemptResult,
    Claim,
    DeliveryStatus,
    DisabledReason,
    Endpoint,
    EndpointStatus,
    Organization,
    WaitingReason,
)
from dispatcher.errors import IntegrityViolationError, NotFoundError, StoreUnavailableError
from dispatcher.store import schema
from dispatcher.store.postgres import queries as q
from dispatcher.store.records import (
    AttemptRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    IngestBatch,
    IngestResult,
    ReplayFilter,
    ReplayJobRecord,
    ReplayRecord,
    ReplayStep,
)
from dispatcher.store.secretbox import SecretBox

if TYPE_CHECKING:
    from dispatcher.store.postgres.queries import Conn

T = TypeVar("T")

PURGE_CHUNK = 1000  # events per purge transaction
# pg_advisory_xact_lock key serialising `migrate` across processes ("LWHMIGR" in ASCII).
MIGRATION_LOCK = 0x4C_57_48_4D_49_47_52
_ATTEMPTS = 3  # tries of a transaction that lost a deadlock or serialization race

# Errors meaning "the database cannot serve us now", not "the query is wrong".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08, incl. a connection lost mid-query
    asyncpg.InsufficientResourcesError,  # class 53: disk full, too many connections
    asyncpg.OperatorInterventionError,  # class 57: shutdown, cannot connect now, cancel
)
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# ...and, mid-transaction, the client-side errors of a connection the server dropped.
_BROKEN: tuple[type[BaseException], ...] = (
    *_UNAVAILABLE,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
# At connect time any server refusal (bad password, no such database) is "unavailable" too.
_CANNOT_CONNECT: tuple[type[BaseException], ...] = (*_UNAVAILABLE, asyncpg.PostgresError)


# Short OLTP statements only: JIT compilation costs far more than it saves (a claim that
# runs in 1 ms was measured taking 280 ms to JIT once its cost estimate crossed the limit).
_SESSION_SETTINGS = {"jit": "off", "application_name": "layers-webhooks"}


async def _keep_session(conn: object) -> None:
    """The pool's reset between uses. The store sets no session state (no session SET, cursors,
    LISTEN or session advisory locks), and asyncpg rolls back an abandoned transaction
    itself, so the default reset query would be a wasted round trip per operation."""


def _same(value: Any) -> datetime:
    """asyncpg already returns aware UTC datetimes for timestamptz."""
    moment: datetime = value
    return moment


def _count(status: str) -> int:
    """Rows affected, from a command status such as 'UPDATE 3'."""
    return int(status.rpartition(" ")[2] or 0)


class PostgresStore:
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
    ) -> None:
        self._url = url
        self._box = secret_box
        self._clock = clock
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool[Record] | None = None

    def __repr__(self) -> str:
        parts = urlsplit(self._url)  # never the password
        return f"PostgresStore({parts.hostname}:{parts.port or 5432}{parts.path})"

    async def __aenter__(self) -> Self:
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings=_SESSION_SETTINGS,
                reset=_keep_session,
            )
        except _CANNOT_CONNECT as exc:
            raise StoreUnavailableError(f"cannot connect to {self!r}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- running statements ---------------------------------------------------------------

    async def _run(self, work: Callable[[Conn], Awaitable[T]], *, transaction: bool = False) -> T:
        """Run `work` on a pooled connection (in a transaction if asked), retrying lost
        deadlock races and mapping infrastructure faults to StoreUnavailableError."""
        if self._pool is None:
            raise RuntimeError("the store is not open: use `async with store:`")
        pool = self._pool
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                # Taking a connection may open a new one: any server refusal then (a database
                # closed to connections, a restart in progress) means "unavailable".
                conn = await pool.acquire()
            except _CANNOT_CONNECT as exc:
                raise StoreUnavailableError(f"{self!r}: {exc}") from exc
            try:
                if not transaction:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)
            except _RETRYABLE as exc:
                if attempt == _ATTEMPTS:
                    raise StoreUnavailableError(f"{self!r}: {exc}") from exc
            except _BROKEN as exc:
                # The server went away under the transaction: an outage, and the connection
                # is unfit to reuse (the pool's no-op reset would hand it to the next caller).
                with contextlib.suppress(asyncpg.InterfaceError):  # already detached
                    conn.terminate()
                raise StoreUnavailableError(f"{self!r}: {exc}") from exc
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise IntegrityViolationError(f"integrity violation: {exc}") from exc
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    async def _all(self, sql: str, *args: Any) -> list[Record]:
        return await self._run(lambda conn: conn.fetch(sql, *args))

    async def _one(self, sql: str, *args: Any) -> Record | None:
        return await self._run(lambda conn: conn.fetchrow(sql, *args))

    async def _change(self, sql: str, *args: Any) -> int:
        """Run one writing statement; return how many rows it changed."""

        async def work(conn: Conn) -> int:
            return _count(await conn.execute(sql, *args))

        return await self._run(work)

    # -- schema ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        now = self._clock()

        async def work(conn: Conn) -> list[str]:
            # Concurrent migrators queue here; the second finds everything applied.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL)"
            )
            done = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for migration in schema.migrations("postgres"):
                if migration.version not in done:
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations VALUES ($1, $2)", migration.version, now
                    )
                    applied.append(migration.version)
            return applied

        return await self._run(work, transaction=True)

    async def ping(self) -> None:
        await self._one("SELECT 1")

    # -- organizations --------------------------------------------------------------------

    async def put_organization(self, org: Organization) -> None:
        await self._change(
            """
            INSERT INTO organizations (id, parent_id, status, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $4)
            ON CONFLICT (id) DO UPDATE SET parent_id = excluded.parent_id,
                status = excluded.status, updated_at = excluded.updated_at
            """,
            org.id,
            org.parent_id,
            org.status.value,
            self._clock(),
        )

    async def get_organization(self, org_id: str) -> Organization | None:
        row = await self._one("SELECT * FROM organizations WHERE id = $1", org_id)
        return None if row is None else schema.organization_from_row(row)

    async def list_organizations(self) -> list[Organization]:
        rows = await self._all("SELECT * FROM organizations ORDER BY id")
        return [schema.organization_from_row(row) for row in rows]

    # -- endpoints and secrets ------------------------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint, secret: str, *, now: datetime) -> None:
        sealed = self._box.encrypt(secret, aad=schema.secret_aad(endpoint.id))
        disabled_at = now if endpoint.status is EndpointStatus.DISABLED else None

        async def work(conn: Conn) -> None:
            await conn.execute(
                """
                INSERT INTO endpoints (url, scope, event_types, rate_limit, description,
                    metadata, updated_at, id, organization_id, status, disabled_reason,
                    disabled_at, created_by_key_id, created_at)
                VALUES ($1, $2, $3::jsonb, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13,
                    $7)
                """,
                *q.endpoint_config(endpoint, now),
                endpoint.id,
                endpoint.organization_id,
                endpoint.status.value,
                endpoint.disabled_reason,
                disabled_at,
                endpoint.created_by_key_id,
            )
            await conn.execute(q.INSERT_CIPHERTEXT, endpoint.id, sealed, now)

        await self._run(work, transaction=True)

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = await self._one("SELECT * FROM endpoints WHERE id = $1", endpoint_id)
        return None if row is None else schema.endpoint_from_row(row, _same)

    async def list_endpoints(
        self, organization_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        rows = await self._all(
            """
            SELECT * FROM endpoints
            WHERE organization_id = $1 AND ($2::text IS NULL OR id > $2)
            ORDER BY id LIMIT $3
            """,
            organization_id,
            after,
            limit,
        )
        return [schema.endpoint_from_row(row, _same) for row in rows]

    async def routable_endpoints(self) -> list[Endpoint]:
        rows = await self._all("SELECT * FROM endpoints ORDER BY id")
        return [schema.endpoint_from_row(row, _same) for row in rows]

    async def update_endpoint(self, endpoint: Endpoint, *, now: datetime) -> None:
        changed = await self._change(
            """
            UPDATE endpoints SET url = $1, scope = $2, event_types = $3::jsonb,
                rate_limit = $4, description = $5, metadata = $6::jsonb, updated_at = $7
            WHERE id = $8
            """,
            *q.endpoint_config(endpoint, now),
            endpoint.id,
        )
        if not changed:
            raise NotFoundError(f"endpoint {endpoint.id} does not exist")

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        async def work(conn: Conn) -> bool:
            # The row lock waits for ingests holding the endpoint; later ones find it gone.
            if not await conn.fetchrow(
                "SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE", endpoint_id
            ):
                return False
            await q.delete_deliveries(conn, "endpoint_id", [endpoint_id])
            await conn.execute("DELETE FROM endpoints WHERE id = $1", endpoint_id)
            return True

        return await self._run(work, transaction=True)

    async def set_endpoint_status(
        self,
        endpoint_id: str,
        status: EndpointStatus,
        reason: DisabledReason | None,
        *,
        now: datetime,
    ) -> bool:
        # Disabling records why and when; enabling clears that and restarts the failing clock.
        disabling = status is EndpointStatus.DISABLED
        changed = await self._change(
            """
            UPDATE endpoints SET status = $2, disabled_reason = $3, disabled_at = $4,
                updated_at = $5, failing_since = CASE WHEN $6 THEN failing_since END
            WHERE id = $1 AND status <> $2
            """,
            endpoint_id,
            status.value,
            reason if disabling else None,
            now if disabling else None,
            now,
            disabling,
        )
        return changed > 0

    async def rotate_secret(
        self, endpoint_id: str, secret: str, *, now: datetime, old_expires_at: datetime
    ) -> None:
        sealed = self._box.encrypt(secret, aad=schema.secret_aad(endpoint_id))

        async def work(conn: Conn) -> None:
            # Lock the endpoint so a concurrent rotation or delete waits for this one.
            if not await conn.fetchrow(
                "SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE", endpoint_id
            ):
                raise NotFoundError(f"endpoint {endpoint_id} does not exist")
            # Secrets that can never sign again go; the others stop at `old_expires_at`.
            await conn.execute(
                "DELETE FROM endpoint_secrets WHERE endpoint_id = $1 AND expires_at <= $2",
                endpoint_id,
                now,
            )
            await conn.execute(
                """
                UPDATE endpoint_secrets SET expires_at = $2
                WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
                """,
                endpoint_id,
                old_expires_at,
            )
            await conn.execute(q.INSERT_CIPHERTEXT, endpoint_id, sealed, now)

        await self._run(work, transaction=True)

    async def signing_secrets(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        rows = await self._all(
            """
            SELECT endpoint_id, ciphertext FROM endpoint_secrets
            WHERE endpoint_id = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > $2)
            ORDER BY endpoint_id, id DESC
            """,
            list(endpoint_ids),
            now,
        )
        secrets: dict[str, list[str]] = {}
        for endpoint_id, sealed in rows:
            plain = self._box.decrypt(sealed, aad=schema.secret_aad(endpoint_id))
            secrets.setdefault(endpoint_id, []).append(plain)
        return {endpoint_id: tuple(values) for endpoint_id, values in secrets.items()}

    async def endpoints_failing_since(self, before: datetime) -> list[str]:
        rows = await self._all(
            "SELECT id FROM endpoints WHERE status = 'enabled' AND failing_since <= $1 ORDER BY id",
            before,
        )
        return [row[0] for row in rows]

    # -- the hot path ---------------------------------------------------------------------

    async def ingest(self, batch: IngestBatch) -> IngestResult:
        work = partial(q.ingest, batch=batch, now=self._clock())
        return await self._run(work, transaction=True)

    async def claim_due(
        self, *, now: datetime, limit: int, lease_owner: str, lease_expires_at: datetime
    ) -> list[Claim]:
        work = partial(
            q.claim_due,
            now=now,
            limit=limit,
            lease_owner=lease_owner,
            lease_expires_at=lease_expires_at,
            stamp=self._clock(),
        )
        return await self._run(work, transaction=True)

    async def complete(self, results: Sequence[AttemptResult]) -> None:
        if results:
            work = partial(q.complete, results=results, now=self._clock())
            await self._run(work, transaction=True)

    async def release(
        self, delivery_ids: Collection[str], *, next_attempt_at: datetime, reason: WaitingReason
    ) -> None:
        await self._change(
            """
            UPDATE deliveries SET next_attempt_at = $2, waiting_reason = $4, lease_owner = NULL,
                lease_expires_at = NULL, updated_at = $3
            WHERE id = ANY($1::text[]) AND status = 'pending'
            """,
            list(delivery_ids),
            next_attempt_at,
            self._clock(),
            reason.value,
        )

    async def suppress(self, delivery_ids: Collection[str], reason: str) -> None:
        await self._change(
            """
            UPDATE deliveries SET status = 'suppressed', reason = $2, next_attempt_at = NULL,
                waiting_reason = NULL,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
            WHERE id = ANY($1::text[]) AND status = 'pending'
            """,
            list(delivery_ids),
            reason,
            self._clock(),
        )

    async def next_due_at(self) -> datetime | None:
        row = await self._one("SELECT min(due_at) FROM deliveries WHERE status = 'pending'")
        return None if row is None else row[0]

    async def purge(self, *, before: datetime) -> int:
        async def chunk(conn: Conn) -> int:
            gone = await conn.fetch(
                "DELETE FROM events WHERE id IN "
                "(SELECT id FROM events WHERE received_at < $1 LIMIT $2) RETURNING id",
                before,
                PURGE_CHUNK,
            )
            await q.delete_deliveries(conn, "event_id", [row[0] for row in gone])
            return len(gone)

        total = 0
        while True:  # in chunks, one transaction each
            deleted = await self._run(chunk, transaction=True)
            total += deleted
            if deleted < PURGE_CHUNK:
                return total

    # -- reads and on-call actions for the HTTP API -----------------------------------------

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        row = await self._one(f"{q.SELECT_DELIVERIES} WHERE d.id = $1", delivery_id)
        return None if row is None else schema.delivery_from_row(row, _same)

    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        status: DeliveryStatus | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        rows = await self._all(
            f"{q.SELECT_DELIVERIES} {q.MATCHING_DELIVERIES} AND ($6::text IS NULL OR d.id < $6) "
            "ORDER BY d.id DESC LIMIT $7",
            endpoint_id,
            None if status is None else [status.value],
            None if event_type is None else [event_type],
            since,
            until,
            after,
            limit,
        )
        return [schema.delivery_from_row(row, _same) for row in rows]

    async def count_deliveries(
        self,
        endpoint_id: str,
        *,
        statuses: Collection[DeliveryStatus] | None = None,
        types: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        row = await self._one(
            q.COUNT_DELIVERIES,
            endpoint_id,
            None if statuses is None else [s.value for s in statuses],
            None if types is None else list(types),
            since,
            until,
        )
        return 0 if row is None else int(row[0])

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        rows = await self._all(
            "SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY started_at, id", delivery_id
        )
        return [schema.attempt_from_row(row, _same) for row in rows]

    async def list_replays(self, delivery_id: str) -> list[ReplayRecord]:
        rows = await self._all(
            "SELECT * FROM replays WHERE delivery_id = $1 ORDER BY id", delivery_id
        )
        return [schema.replay_from_row(row, _same) for row in rows]

    async def get_event(self, event_id: str) -> EventRecord | None:
        row = await self._one("SELECT * FROM events WHERE id = $1", event_id)
        return None if row is None else schema.event_from_row(row, _same)

    async def list_event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        rows = await self._all(
            f"{q.SELECT_DELIVERIES} WHERE d.event_id = $1 ORDER BY d.id", event_id
        )
        return [schema.delivery_from_row(row, _same) for row in rows]

    async def list_dead_letters(
        self, *, reason: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeadLetterRecord]:
        rows = await self._all(
            """
            SELECT * FROM dead_letters
            WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR id < $2)
            ORDER BY id DESC LIMIT $3
            """,
            reason,
            after,
            limit,
        )
        return [schema.dead_letter_from_row(row, _same) for row in rows]

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None:
        row = await self._one("SELECT * FROM dead_letters WHERE id = $1", dead_letter_id)
        return None if row is None else schema.dead_letter_from_row(row, _same)

    async def mark_dead_letter_retried(self, dead_letter_id: str, *, now: datetime) -> bool:
        changed = await self._change(
            "UPDATE dead_letters SET retried_at = $2 WHERE id = $1", dead_letter_id, now
        )
        return changed > 0

    async def replay_deliveries(
        self, delivery_ids: Collection[str], *, actor: str, reason: str, now: datetime
    ) -> int:
        work = partial(q.replay, delivery_ids=list(delivery_ids), actor=actor, reason=reason)
        return await self._run(partial(work, now=now))

    # -- API keys -----------------------------------------------------------------------------

    async def create_api_key(self, key: ApiKeyRecord, key_hash: str) -> None:
        await self._change(
            """
            INSERT INTO api_keys (id, key_hash, organization_id, scopes, name, created_at,
                revoked_at)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
            """,
            key.id,
            key_hash,
            key.organization_id,
            schema.dump_scopes(key.scopes),
            key.name,
            key.created_at,
            key.revoked_at,
        )

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._one("SELECT * FROM api_keys WHERE key_hash = $1", key_hash)
        return None if row is None else schema.api_key_from_row(row, _same)

    async def get_api_keys(self, key_ids: Collection[str]) -> list[ApiKeyRecord]:
        rows = await self._all(
            "SELECT * FROM api_keys WHERE id = ANY($1::text[]) ORDER BY id", list(key_ids)
        )
        return [schema.api_key_from_row(row, _same) for row in rows]

    async def list_api_keys(self, *, organization_id: str | None = None) -> list[ApiKeyRecord]:
        rows = await self._all(
            "SELECT * FROM api_keys WHERE $1::text IS NULL OR organization_id = $1 ORDER BY id",
            organization_id,
        )
        return [schema.api_key_from_row(row, _same) for row in rows]

    async def revoke_api_key(self, key_id: str, *, now: datetime) -> bool:
        changed = await self._change(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            key_id,
            now,
        )
        return changed > 0

    async def set_endpoint_creator(self, endpoint_id: str, key_id: str | None) -> bool:
        changed = await self._change(
            "UPDATE endpoints SET created_by_key_id = $2 WHERE id = $1", endpoint_id, key_id
        )
        return changed > 0

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
        row = (
            job_id,
            organization_id,
            filter.endpoint_id,
            filter_key,
            filter.since,
            filter.until,
            schema.dump_scopes([s.value for s in filter.statuses]),
            schema.dump_event_types(filter.types),
            actor,
            reason,
            now,
        )
        work = partial(q.create_replay_job, row=row, selection=filter, filter_key=filter_key)
        for attempt in range(3):  # a twin that finished mid-insert is retried
            try:
                job, created = await self._run(work, transaction=True)
            except q.ReplayJobRaceError:
                if attempt == 2:
                    raise
                continue
            return schema.replay_job_from_row(job, _same), created
        raise AssertionError("unreachable")

    async def get_replay_job(self, job_id: str) -> ReplayJobRecord | None:
        row = await self._one("SELECT * FROM replay_jobs WHERE id = $1", job_id)
        return None if row is None else schema.replay_job_from_row(row, _same)

    async def active_replay_jobs(self) -> list[ReplayJobRecord]:
        rows = await self._all(
            "SELECT * FROM replay_jobs WHERE status IN ('queued', 'running') "
            "ORDER BY created_at, id"
        )
        return [schema.replay_job_from_row(row, _same) for row in rows]

    async def advance_replay_job(self, job_id: str, *, limit: int, now: datetime) -> ReplayStep:
        work = partial(q.advance_replay_job, job_id=job_id, limit=limit, now=now)
        job, processed = await self._run(work, transaction=True)
        record = None if job is None else schema.replay_job_from_row(job, _same)
        return ReplayStep(job=record, processed=processed)
