"""`SQLiteStore`, the embedded backend for one node (`sqlite:///path`, docs/design.md §9): its
lifecycle, the worker thread that owns the one connection and runs every sqlite3 call (each
method ships one function there, run as one transaction), the migrations and the hot path
(hotpath.py). Other bodies: scheduling.py, endpoints.py, reads.py, replays.py, portal.py.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar

from dispatcher.core.models import (
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
from dispatcher.errors import IntegrityViolationError, StoreUnavailableError
from dispatcher.store import schema
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
from dispatcher.store.sqlite import endpoints, health, hotpath, portal, reads, replays, scheduling
from dispatcher.store.sqlite.connection import connect, unavailable
from dispatcher.store.sqlite.encoding import us as _us
from dispatcher.store.sqlite.transactions import Params, Work, migrate, transaction

T = TypeVar("T")


class SQLiteStore(
    scheduling.Heartbeats, endpoints.ApiKeyMethods, health.HealthMethods, portal.PortalMethods
):
    """The Store on one SQLite file, for a single node."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        secret_box: SecretBox,
        clock: schema.Clock = schema.system_clock,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = os.fspath(path)
        self._box = secret_box
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- lifecycle and the worker thread --------------------------------------------------

    async def __aenter__(self) -> Self:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await self._run(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._executor is None:
            return
        try:
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _open(self, _: sqlite3.Connection | None) -> None:
        self._conn = connect(self.path, busy_timeout=self._busy_timeout)

    def _close(self, conn: sqlite3.Connection | None) -> None:
        if conn is not None:
            conn.close()
        self._conn = None

    def _call(self, work: Callable[[Any], T]) -> T:
        """Runs on the worker thread."""
        return work(self._conn)

    async def _run(self, work: Callable[[Any], T]) -> T:
        if self._executor is None:
            raise RuntimeError("the store is not open: use `async with store:`")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, work)
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolationError(f"integrity violation: {exc}") from exc
        except sqlite3.Error as exc:
            if unavailable(exc):
                raise StoreUnavailableError(f"SQLite {self.path}: {exc}") from exc
            raise

    async def _read(self, work: Work[T]) -> T:
        return await self._run(lambda conn: work(self._connected(conn)))

    async def _write(self, work: Work[T]) -> T:
        return await self._run(lambda conn: transaction(self._connected(conn), work))

    def _connected(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise RuntimeError("the store is not open: use `async with store:`")
        return conn

    async def _all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self._read(lambda conn: conn.execute(sql, params).fetchall())

    async def _one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self._read(
            lambda conn: conn.execute(sql, params).fetchone()
        )
        return row

    async def _change(self, sql: str, params: Params = ()) -> int:
        """Run one writing statement in its own transaction; return how many rows changed."""
        return await self._write(lambda conn: conn.execute(sql, params).rowcount)

    async def _change_many(self, sql: str, rows: Sequence[Params]) -> int:
        """Run one writing statement per row in one transaction; return the rows changed."""
        if not rows:
            return 0
        return await self._write(lambda conn: conn.executemany(sql, rows).rowcount)

    # -- schema ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        return await self._write(partial(migrate, now=_us(self._clock())))

    async def ping(self) -> None:
        await self._one("SELECT 1")

    # -- organizations (endpoints.py) -----------------------------------------------------

    async def put_organization(self, org: Organization) -> None:
        await endpoints.put_organization(self, org, now=self._clock())

    async def get_organization(self, org_id: str) -> Organization | None:
        return await endpoints.get_organization(self, org_id)

    async def list_organizations(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[Organization]:
        return await endpoints.list_organizations(self, after=after, limit=limit)

    # -- endpoints and secrets (endpoints.py) ---------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint, secret: str, *, now: datetime) -> None:
        await endpoints.create_endpoint(self, self._box, endpoint, secret, now=now)

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        return await endpoints.get_endpoint(self, endpoint_id)

    async def list_endpoints(
        self, organization_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        return await endpoints.list_endpoints(self, organization_id, after=after, limit=limit)

    async def routable_endpoints(self) -> list[Endpoint]:
        return await endpoints.routable_endpoints(self)

    async def update_endpoint(self, endpoint: Endpoint, *, now: datetime) -> None:
        await endpoints.update_endpoint(self, endpoint, now=now)

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        return await endpoints.delete_endpoint(self, endpoint_id)

    async def set_endpoint_status(
        self,
        endpoint_id: str,
        status: EndpointStatus,
        reason: DisabledReason | None,
        *,
        now: datetime,
    ) -> bool:
        return await endpoints.set_endpoint_status(self, endpoint_id, status, reason, now=now)

    async def rotate_secret(
        self,
        endpoint_id: str,
        secret: str,
        *,
        now: datetime,
        old_expires_at: datetime,
        public_key: str | None = None,
    ) -> None:
        await endpoints.rotate_secret(
            self,
            self._box,
            endpoint_id,
            secret,
            now=now,
            old_expires_at=old_expires_at,
            public_key=public_key,
        )

    async def signing_secrets(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        return await endpoints.signing_secrets(self, self._box, endpoint_ids, now=now)

    async def endpoints_failing_since(self, before: datetime) -> list[str]:
        return await endpoints.endpoints_failing_since(self, before)

    # -- the hot path ---------------------------------------------------------------------

    async def ingest(self, batch: IngestBatch) -> IngestResult:
        return await self._write(partial(hotpath.ingest, batch=batch, now=_us(self._clock())))

    async def claim_due(
        self, *, now: datetime, limit: int, lease_owner: str, lease_expires_at: datetime
    ) -> list[Claim]:
        rows = await self._write(
            partial(
                hotpath.claim_due,
                now=_us(now),
                limit=limit,
                lease=(lease_owner, _us(lease_expires_at), _us(self._clock())),
            )
        )
        return hotpath.claims(rows)

    async def complete(self, results: Sequence[AttemptResult]) -> frozenset[str]:
        if not results:
            return frozenset()
        return await self._write(partial(hotpath.complete, results=results, now=_us(self._clock())))

    # -- the scheduler's and the housekeeper's other calls (scheduling.py) ---------------

    async def release(
        self,
        leased: Sequence[tuple[str, Lease]],
        *,
        next_attempt_at: datetime,
        reason: WaitingReason,
    ) -> int:
        return await scheduling.release(
            self,
            leased,
            next_attempt_at=next_attempt_at,
            reason=reason,
            updated_at=self._clock(),
        )

    async def suppress(self, leased: Sequence[tuple[str, Lease]], reason: str) -> int:
        return await scheduling.suppress(self, leased, reason, updated_at=self._clock())

    async def next_due_at(self) -> datetime | None:
        return await scheduling.next_due_at(self)

    async def reencrypt_secrets(self, *, limit: int) -> tuple[int, int]:
        return await endpoints.reencrypt_secrets(self, self._box, limit=limit)

    async def purge(self, *, before: datetime) -> Purged:
        return await scheduling.purge(self, before=before)

    # -- reads and on-call actions for the HTTP API (reads.py, replays.py) ----------------

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        return await reads.get_delivery(self, delivery_id)

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
        return await reads.list_deliveries(
            self,
            endpoint_id,
            statuses=statuses,
            event_type=event_type,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )

    async def count_deliveries(
        self,
        endpoint_id: str,
        *,
        statuses: Collection[DeliveryStatus] | None = None,
        types: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        return await reads.count_deliveries(
            self, endpoint_id, statuses=statuses, types=types, since=since, until=until
        )

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        return await reads.list_attempts(self, delivery_id)

    async def list_replays(self, delivery_id: str) -> list[ReplayRecord]:
        return await reads.list_replays(self, delivery_id)

    async def get_event(self, event_id: str) -> EventRecord | None:
        return await reads.get_event(self, event_id)

    async def list_event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        return await reads.list_event_deliveries(self, event_id)

    async def list_dead_letters(
        self, *, reason: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeadLetterRecord]:
        return await reads.list_dead_letters(self, reason=reason, after=after, limit=limit)

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None:
        return await reads.get_dead_letter(self, dead_letter_id)

    async def mark_dead_letter_retried(self, dead_letter_id: str, *, now: datetime) -> bool:
        return await reads.mark_dead_letter_retried(self, dead_letter_id, now=now)

    async def replay_deliveries(
        self, delivery_ids: Collection[str], *, actor: str, reason: str, now: datetime
    ) -> int:
        return await replays.replay_deliveries(
            self, delivery_ids, actor=actor, reason=reason, now=now
        )

    # -- API keys (endpoints.py) --------------------------------------------------------------

    async def set_endpoint_creator(self, endpoint_id: str, key_id: str | None) -> bool:
        return await endpoints.set_endpoint_creator(self, endpoint_id, key_id)

    # -- bulk replay jobs (replays.py) --------------------------------------------------------

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
        return await replays.create_replay_job(
            self,
            job_id=job_id,
            organization_id=organization_id,
            filter=filter,
            actor=actor,
            reason=reason,
            now=now,
        )

    async def get_replay_job(self, job_id: str) -> ReplayJobRecord | None:
        return await replays.get_replay_job(self, job_id)

    async def active_replay_jobs(self) -> list[ReplayJobRecord]:
        return await replays.active_replay_jobs(self)

    async def list_replay_jobs(
        self, *, organization_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[ReplayJobRecord]:
        return await replays.list_replay_jobs(self, org=organization_id, after=after, limit=limit)

    async def advance_replay_job(self, job_id: str, *, limit: int, now: datetime) -> ReplayStep:
        return await replays.advance_replay_job(self, job_id, limit=limit, now=now)
