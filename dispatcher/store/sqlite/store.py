"""The SQLite backend: the embedded default for one node (`sqlite:///path`, DESIGN.md §9).

The event loop never blocks on SQLite: one dedicated worker thread owns the single
connection and runs every sqlite3 call. Each store method ships one function to that thread,
which runs it as one transaction, so a batch of 500 deliveries costs one thread hop.
The connection uses WAL, synchronous=NORMAL, a busy timeout and foreign keys.

Times are stored as INTEGER microseconds since the Unix epoch (UTC); JSON as TEXT.
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
from dispatcher.store.sqlite import queries as q
from dispatcher.store.sqlite.queries import dt as _dt
from dispatcher.store.sqlite.queries import json_list as _json_list
from dispatcher.store.sqlite.queries import us as _us

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]

MIN_SQLITE_VERSION = (3, 37, 0)  # STRICT tables; RETURNING needs 3.35
PURGE_CHUNK = 1000  # events per purge transaction

# Primary result codes that mean "the database cannot serve us", not "the query is wrong".
_UNAVAILABLE_CODES = frozenset(
    {
        5,  # SQLITE_BUSY: another process holds the lock past busy_timeout
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN: e.g. the directory does not exist
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)


class SQLiteStore:
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
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} is too old; the store needs "
                f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or newer"
            )
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

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
            code = getattr(exc, "sqlite_errorcode", None)  # None for the module's own checks
            if code is not None and code & 0xFF in _UNAVAILABLE_CODES:
                raise StoreUnavailableError(f"SQLite {self.path}: {exc}") from exc
            raise

    async def _read(self, work: q.Work[T]) -> T:
        return await self._run(lambda conn: work(self._connected(conn)))

    async def _write(self, work: q.Work[T]) -> T:
        return await self._run(lambda conn: q.transaction(self._connected(conn), work))

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

    # -- schema ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        now = _us(self._clock())

        def work(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for migration in schema.migrations("sqlite"):
                if migration.version not in done:
                    for statement in q.statements(migration.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?)", (migration.version, now)
                    )
                    applied.append(migration.version)
            return applied

        return await self._write(work)

    async def ping(self) -> None:
        await self._one("SELECT 1")

    # -- organizations --------------------------------------------------------------------

    async def put_organization(self, org: Organization) -> None:
        now = _us(self._clock())
        await self._change(
            """
            INSERT INTO organizations (id, parent_id, status, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET parent_id = excluded.parent_id,
                status = excluded.status, updated_at = excluded.updated_at
            """,
            (org.id, org.parent_id, org.status.value, now, now),
        )

    async def get_organization(self, org_id: str) -> Organization | None:
        row = await self._one("SELECT * FROM organizations WHERE id = ?", (org_id,))
        return None if row is None else schema.organization_from_row(row)

    async def list_organizations(self) -> list[Organization]:
        rows = await self._all("SELECT * FROM organizations ORDER BY id")
        return [schema.organization_from_row(row) for row in rows]

    # -- endpoints and secrets ------------------------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint, secret: str, *, now: datetime) -> None:
        sealed = self._box.encrypt(secret, aad=schema.secret_aad(endpoint.id))
        at = _us(now)
        disabled_at = at if endpoint.status is EndpointStatus.DISABLED else None

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                """
                INSERT INTO endpoints (id, organization_id, status, disabled_reason,
                    disabled_at, created_by_key_id, created_at, url, scope, event_types,
                    rate_limit, description, metadata, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    endpoint.id,
                    endpoint.organization_id,
                    endpoint.status.value,
                    endpoint.disabled_reason,
                    disabled_at,
                    endpoint.created_by_key_id,
                    at,
                    *q.endpoint_config(endpoint, at),
                ),
            )
            conn.execute(q.INSERT_CIPHERTEXT, (endpoint.id, sealed, at))

        await self._write(work)

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = await self._one("SELECT * FROM endpoints WHERE id = ?", (endpoint_id,))
        return None if row is None else schema.endpoint_from_row(row, _dt)

    async def list_endpoints(
        self, organization_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        rows = await self._all(
            """
            SELECT * FROM endpoints WHERE organization_id = ? AND (?2 IS NULL OR id > ?2)
            ORDER BY id LIMIT ?
            """,
            (organization_id, after, limit),
        )
        return [schema.endpoint_from_row(row, _dt) for row in rows]

    async def routable_endpoints(self) -> list[Endpoint]:
        rows = await self._all("SELECT * FROM endpoints ORDER BY id")
        return [schema.endpoint_from_row(row, _dt) for row in rows]

    async def update_endpoint(self, endpoint: Endpoint, *, now: datetime) -> None:
        changed = await self._change(
            """
            UPDATE endpoints SET url = ?, scope = ?, event_types = ?, rate_limit = ?,
                description = ?, metadata = ?, updated_at = ?
            WHERE id = ?
            """,
            (*q.endpoint_config(endpoint, _us(now)), endpoint.id),
        )
        if not changed:
            raise NotFoundError(f"endpoint {endpoint.id} does not exist")

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        return await self._change("DELETE FROM endpoints WHERE id = ?", (endpoint_id,)) > 0

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
            UPDATE endpoints SET status = :status, disabled_reason = :reason,
                disabled_at = :disabled_at, updated_at = :now,
                failing_since = CASE WHEN :disabling THEN failing_since END
            WHERE id = :id AND status <> :status
            """,
            {
                "id": endpoint_id,
                "status": status.value,
                "reason": reason if disabling else None,
                "disabled_at": _us(now) if disabling else None,
                "disabling": disabling,
                "now": _us(now),
            },
        )
        return changed > 0

    async def rotate_secret(
        self, endpoint_id: str, secret: str, *, now: datetime, old_expires_at: datetime
    ) -> None:
        sealed = self._box.encrypt(secret, aad=schema.secret_aad(endpoint_id))
        at, expires = _us(now), _us(old_expires_at)

        def work(conn: sqlite3.Connection) -> None:
            if not conn.execute("SELECT 1 FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone():
                raise NotFoundError(f"endpoint {endpoint_id} does not exist")
            # Secrets that can never sign again go; the others stop at `old_expires_at`.
            conn.execute(
                "DELETE FROM endpoint_secrets WHERE endpoint_id = ? AND expires_at <= ?",
                (endpoint_id, at),
            )
            conn.execute(
                """
                UPDATE endpoint_secrets SET expires_at = ?2
                WHERE endpoint_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
                """,
                (endpoint_id, expires),
            )
            conn.execute(q.INSERT_CIPHERTEXT, (endpoint_id, sealed, at))

        await self._write(work)

    async def signing_secrets(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        rows = await self._all(
            """
            SELECT endpoint_id, ciphertext FROM endpoint_secrets
            WHERE endpoint_id IN (SELECT value FROM json_each(?))
              AND (expires_at IS NULL OR expires_at > ?)
            ORDER BY endpoint_id, id DESC
            """,
            (_json_list(endpoint_ids), _us(now)),
        )
        secrets: dict[str, list[str]] = {}
        for endpoint_id, sealed in rows:
            plain = self._box.decrypt(sealed, aad=schema.secret_aad(endpoint_id))
            secrets.setdefault(endpoint_id, []).append(plain)
        return {endpoint_id: tuple(values) for endpoint_id, values in secrets.items()}

    async def endpoints_failing_since(self, before: datetime) -> list[str]:
        rows = await self._all(
            "SELECT id FROM endpoints WHERE status = 'enabled' AND failing_since <= ? ORDER BY id",
            (_us(before),),
        )
        return [row[0] for row in rows]

    # -- the hot path ---------------------------------------------------------------------

    async def ingest(self, batch: IngestBatch) -> IngestResult:
        return await self._write(partial(q.ingest, batch=batch, now=_us(self._clock())))

    async def claim_due(
        self, *, now: datetime, limit: int, lease_owner: str, lease_expires_at: datetime
    ) -> list[Claim]:
        rows = await self._write(
            partial(
                q.claim_due,
                now=_us(now),
                limit=limit,
                lease=(lease_owner, _us(lease_expires_at), _us(self._clock())),
            )
        )
        return [
            Claim(
                delivery_id=delivery_id,
                event_id=event_id,
                event_type=event_type,
                endpoint_id=endpoint_id,
                attempts=attempts,
                body=body,
            )
            for delivery_id, event_id, event_type, endpoint_id, attempts, body in rows
        ]

    async def complete(self, results: Sequence[AttemptResult]) -> None:
        if not results:
            return
        await self._write(partial(q.complete, results=results, now=_us(self._clock())))

    async def release(
        self, delivery_ids: Collection[str], *, next_attempt_at: datetime, reason: WaitingReason
    ) -> None:
        await self._change(
            """
            UPDATE deliveries SET next_attempt_at = ?, waiting_reason = ?, lease_owner = NULL,
                lease_expires_at = NULL, updated_at = ?
            WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'
            """,
            (_us(next_attempt_at), reason.value, _us(self._clock()), _json_list(delivery_ids)),
        )

    async def suppress(self, delivery_ids: Collection[str], reason: str) -> None:
        await self._change(
            """
            UPDATE deliveries SET status = 'suppressed', reason = ?, next_attempt_at = NULL,
                waiting_reason = NULL,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
            WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'
            """,
            (reason, _us(self._clock()), _json_list(delivery_ids)),
        )

    async def next_due_at(self) -> datetime | None:
        row = await self._one("SELECT min(due_at) FROM deliveries WHERE status = 'pending'")
        return None if row is None or row[0] is None else _dt(row[0])

    async def purge(self, *, before: datetime) -> int:
        total = 0
        while True:  # in chunks, one transaction each
            deleted = await self._change(
                "DELETE FROM events WHERE id IN "
                "(SELECT id FROM events WHERE received_at < ? LIMIT ?)",
                (_us(before), PURGE_CHUNK),
            )
            total += deleted
            if deleted < PURGE_CHUNK:
                return total

    # -- reads and on-call actions for the HTTP API -----------------------------------------

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        row = await self._one(f"{q.SELECT_DELIVERIES} WHERE d.id = ?", (delivery_id,))
        return None if row is None else schema.delivery_from_row(row, _dt)

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
        params = q.delivery_filters(
            endpoint_id,
            None if status is None else [status],
            None if event_type is None else [event_type],
            since,
            until,
        )
        rows = await self._all(
            f"{q.SELECT_DELIVERIES} {q.MATCHING_DELIVERIES} AND (:after IS NULL OR d.id < :after) "
            "ORDER BY d.id DESC LIMIT :limit",
            {**params, "after": after, "limit": limit},
        )
        return [schema.delivery_from_row(row, _dt) for row in rows]

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
            q.COUNT_DELIVERIES, q.delivery_filters(endpoint_id, statuses, types, since, until)
        )
        return 0 if row is None else int(row[0])

    async def list_attempts(self, delivery_id: str) -> list[AttemptRecord]:
        rows = await self._all(
            "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY started_at, id", (delivery_id,)
        )
        return [schema.attempt_from_row(row, _dt) for row in rows]

    async def list_replays(self, delivery_id: str) -> list[ReplayRecord]:
        rows = await self._all(
            "SELECT * FROM replays WHERE delivery_id = ? ORDER BY id", (delivery_id,)
        )
        return [schema.replay_from_row(row, _dt) for row in rows]

    async def get_event(self, event_id: str) -> EventRecord | None:
        row = await self._one("SELECT * FROM events WHERE id = ?", (event_id,))
        return None if row is None else schema.event_from_row(row, _dt)

    async def list_event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        rows = await self._all(
            f"{q.SELECT_DELIVERIES} WHERE d.event_id = ? ORDER BY d.id", (event_id,)
        )
        return [schema.delivery_from_row(row, _dt) for row in rows]

    async def list_dead_letters(
        self, *, reason: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[DeadLetterRecord]:
        rows = await self._all(
            """
            SELECT * FROM dead_letters
            WHERE (?1 IS NULL OR reason = ?1) AND (?2 IS NULL OR id < ?2)
            ORDER BY id DESC LIMIT ?3
            """,
            (reason, after, limit),
        )
        return [schema.dead_letter_from_row(row, _dt) for row in rows]

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetterRecord | None:
        row = await self._one("SELECT * FROM dead_letters WHERE id = ?", (dead_letter_id,))
        return None if row is None else schema.dead_letter_from_row(row, _dt)

    async def mark_dead_letter_retried(self, dead_letter_id: str, *, now: datetime) -> bool:
        changed = await self._change(
            "UPDATE dead_letters SET retried_at = ? WHERE id = ?", (_us(now), dead_letter_id)
        )
        return changed > 0

    async def replay_deliveries(
        self, delivery_ids: Collection[str], *, actor: str, reason: str, now: datetime
    ) -> int:
        return await self._write(
            partial(q.replay, delivery_ids=delivery_ids, actor=actor, reason=reason, at=_us(now))
        )

    # -- API keys -----------------------------------------------------------------------------

    async def create_api_key(self, key: ApiKeyRecord, key_hash: str) -> None:
        await self._change(
            """
            INSERT INTO api_keys (id, key_hash, organization_id, scopes, name, created_at,
                revoked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            (
                key.id,
                key_hash,
                key.organization_id,
                schema.dump_scopes(key.scopes),
                key.name,
                _us(key.created_at),
                q.maybe_us(key.revoked_at),
            ),
        )

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = await self._one("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return None if row is None else schema.api_key_from_row(row, _dt)

    async def get_api_keys(self, key_ids: Collection[str]) -> list[ApiKeyRecord]:
        rows = await self._all(
            "SELECT * FROM api_keys WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (_json_list(key_ids),),
        )
        return [schema.api_key_from_row(row, _dt) for row in rows]

    async def list_api_keys(self, *, organization_id: str | None = None) -> list[ApiKeyRecord]:
        rows = await self._all(
            "SELECT * FROM api_keys WHERE ?1 IS NULL OR organization_id = ?1 ORDER BY id",
            (organization_id,),
        )
        return [schema.api_key_from_row(row, _dt) for row in rows]

    async def revoke_api_key(self, key_id: str, *, now: datetime) -> bool:
        changed = await self._change(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (_us(now), key_id),
        )
        return changed > 0

    async def set_endpoint_creator(self, endpoint_id: str, key_id: str | None) -> bool:
        changed = await self._change(
            "UPDATE endpoints SET created_by_key_id = ? WHERE id = ?", (key_id, endpoint_id)
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
        row = {
            "id": job_id,
            "organization_id": organization_id,
            "endpoint_id": filter.endpoint_id,
            "filter_key": schema.replay_filter_key(filter),
            "since": q.maybe_us(filter.since),
            "until": q.maybe_us(filter.until),
            "statuses": schema.dump_scopes([s.value for s in filter.statuses]),
            "types": schema.dump_event_types(filter.types),
            "actor": actor,
            "reason": reason,
            "created_at": _us(now),
        }
        job, created = await self._write(partial(q.create_replay_job, row=row, selection=filter))
        return schema.replay_job_from_row(job, _dt), created

    async def get_replay_job(self, job_id: str) -> ReplayJobRecord | None:
        row = await self._one("SELECT * FROM replay_jobs WHERE id = ?", (job_id,))
        return None if row is None else schema.replay_job_from_row(row, _dt)

    async def active_replay_jobs(self) -> list[ReplayJobRecord]:
        rows = await self._all(
            "SELECT * FROM replay_jobs WHERE status IN ('queued', 'running') "
            "ORDER BY created_at, id"
        )
        return [schema.replay_job_from_row(row, _dt) for row in rows]

    async def advance_replay_job(self, job_id: str, *, limit: int, now: datetime) -> ReplayStep:
        job, processed = await self._write(
            partial(q.advance_replay_job, job_id=job_id, limit=limit, now=_us(now))
        )
        record = None if job is None else schema.replay_job_from_row(job, _dt)
        return ReplayStep(job=record, processed=processed)
