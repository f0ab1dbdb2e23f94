"""The tenants' configuration on the SQLite backend: organizations, endpoints (their config,
status and failing clock), the endpoints' signing secrets (sealed with the store's
`SecretBox`, rotated with an overlap) and the API keys. The bodies of `SQLiteStore`'s admin
methods, as functions of the store's worker helpers (`Runner`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from dispatcher.core.models import (
    ApiKeyRecord,
    DisabledReason,
    Endpoint,
    EndpointStatus,
    Organization,
)
from dispatcher.errors import NotFoundError
from dispatcher.store import schema
from dispatcher.store.secretbox import SecretBox
from dispatcher.store.sqlite.encoding import dt, json_list, maybe_us, us
from dispatcher.store.sqlite.transactions import Runner

INSERT_CIPHERTEXT = (
    "INSERT INTO endpoint_secrets (endpoint_id, ciphertext, created_at) VALUES (?, ?, ?)"
)


def endpoint_config(endpoint: Endpoint, updated_at: int) -> tuple[Any, ...]:
    """The columns a PATCH may change, in the order the endpoint statements below list them."""
    return (
        endpoint.url,
        endpoint.scope.value,
        schema.dump_event_types(endpoint.event_types),
        endpoint.rate_limit,
        endpoint.description,
        schema.dump_metadata(endpoint.metadata),
        updated_at,
    )


# -- organizations --------------------------------------------------------------------------


async def put_organization(db: Runner, org: Organization, *, now: datetime) -> None:
    at = us(now)
    await db._change(
        """
        INSERT INTO organizations (id, parent_id, status, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET parent_id = excluded.parent_id,
            status = excluded.status, updated_at = excluded.updated_at
        """,
        (org.id, org.parent_id, org.status.value, at, at),
    )


async def get_organization(db: Runner, org_id: str) -> Organization | None:
    row = await db._one("SELECT * FROM organizations WHERE id = ?", (org_id,))
    return None if row is None else schema.organization_from_row(row)


async def list_organizations(
    db: Runner, *, after: str | None = None, limit: int | None = None
) -> list[Organization]:
    rows = await db._all(
        "SELECT * FROM organizations WHERE ?1 IS NULL OR id > ?1 "
        "ORDER BY id LIMIT coalesce(?2, -1)",
        (after, limit),
    )
    return [schema.organization_from_row(row) for row in rows]


# -- endpoints and secrets ------------------------------------------------------------------


async def create_endpoint(
    db: Runner, box: SecretBox, endpoint: Endpoint, secret: str, *, now: datetime
) -> None:
    sealed = box.encrypt(secret, aad=schema.secret_aad(endpoint.id))
    at = us(now)
    disabled_at = at if endpoint.status is EndpointStatus.DISABLED else None

    def work(conn: sqlite3.Connection) -> None:
        conn.execute(
            """
            INSERT INTO endpoints (id, organization_id, status, disabled_reason,
                disabled_at, created_by_key_id, created_at, signature_scheme, public_key,
                url, scope, event_types, rate_limit, description, metadata, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                endpoint.id,
                endpoint.organization_id,
                endpoint.status.value,
                endpoint.disabled_reason,
                disabled_at,
                endpoint.created_by_key_id,
                at,
                endpoint.signature_scheme.value,
                endpoint.public_key,
                *endpoint_config(endpoint, at),
            ),
        )
        conn.execute(INSERT_CIPHERTEXT, (endpoint.id, sealed, at))

    await db._write(work)


async def get_endpoint(db: Runner, endpoint_id: str) -> Endpoint | None:
    row = await db._one("SELECT * FROM endpoints WHERE id = ?", (endpoint_id,))
    return None if row is None else schema.endpoint_from_row(row, dt)


async def list_endpoints(
    db: Runner, organization_id: str, *, after: str | None, limit: int
) -> list[Endpoint]:
    rows = await db._all(
        """
        SELECT * FROM endpoints WHERE organization_id = ? AND (?2 IS NULL OR id > ?2)
        ORDER BY id LIMIT ?
        """,
        (organization_id, after, limit),
    )
    return [schema.endpoint_from_row(row, dt) for row in rows]


async def routable_endpoints(db: Runner) -> list[Endpoint]:
    rows = await db._all("SELECT * FROM endpoints ORDER BY id")
    return [schema.endpoint_from_row(row, dt) for row in rows]


async def update_endpoint(db: Runner, endpoint: Endpoint, *, now: datetime) -> None:
    changed = await db._change(
        """
        UPDATE endpoints SET url = ?, scope = ?, event_types = ?, rate_limit = ?,
            description = ?, metadata = ?, updated_at = ?
        WHERE id = ?
        """,
        (*endpoint_config(endpoint, us(now)), endpoint.id),
    )
    if not changed:
        raise NotFoundError(f"endpoint {endpoint.id} does not exist")


async def delete_endpoint(db: Runner, endpoint_id: str) -> bool:
    def work(conn: sqlite3.Connection) -> bool:
        for table in ("endpoint_health", "endpoint_health_hourly"):
            conn.execute(f"DELETE FROM {table} WHERE endpoint_id = ?", (endpoint_id,))  # noqa: S608
        return conn.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,)).rowcount > 0

    return await db._write(work)


async def set_endpoint_status(
    db: Runner,
    endpoint_id: str,
    status: EndpointStatus,
    reason: DisabledReason | None,
    *,
    now: datetime,
) -> bool:
    # Disabling records why and when; enabling clears that and restarts the failing clock.
    disabling = status is EndpointStatus.DISABLED
    changed = await db._change(
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
            "disabled_at": us(now) if disabling else None,
            "disabling": disabling,
            "now": us(now),
        },
    )
    return changed > 0


async def rotate_secret(
    db: Runner,
    box: SecretBox,
    endpoint_id: str,
    secret: str,
    *,
    now: datetime,
    old_expires_at: datetime,
    public_key: str | None = None,
) -> None:
    sealed = box.encrypt(secret, aad=schema.secret_aad(endpoint_id))
    at, expires = us(now), us(old_expires_at)

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
        conn.execute(INSERT_CIPHERTEXT, (endpoint_id, sealed, at))
        if public_key is not None:
            conn.execute(
                "UPDATE endpoints SET public_key = ? WHERE id = ?", (public_key, endpoint_id)
            )

    await db._write(work)


async def signing_secrets(
    db: Runner, box: SecretBox, endpoint_ids: Collection[str], *, now: datetime
) -> dict[str, tuple[str, ...]]:
    rows = await db._all(
        """
        SELECT endpoint_id, ciphertext FROM endpoint_secrets
        WHERE endpoint_id IN (SELECT value FROM json_each(?))
          AND (expires_at IS NULL OR expires_at > ?)
        ORDER BY endpoint_id, id DESC
        """,
        (json_list(endpoint_ids), us(now)),
    )
    secrets: dict[str, list[str]] = {}
    for endpoint_id, sealed in rows:
        plain = box.decrypt(sealed, aad=schema.secret_aad(endpoint_id))
        secrets.setdefault(endpoint_id, []).append(plain)
    return {endpoint_id: tuple(values) for endpoint_id, values in secrets.items()}


async def endpoints_failing_since(db: Runner, before: datetime) -> list[str]:
    rows = await db._all(
        "SELECT id FROM endpoints WHERE status = 'enabled' AND failing_since <= ? ORDER BY id",
        (us(before),),
    )
    return [row[0] for row in rows]


async def set_endpoint_creator(db: Runner, endpoint_id: str, key_id: str | None) -> bool:
    changed = await db._change(
        "UPDATE endpoints SET created_by_key_id = ? WHERE id = ?", (key_id, endpoint_id)
    )
    return changed > 0


# -- API keys -------------------------------------------------------------------------------


async def create_api_key(db: Runner, key: ApiKeyRecord, key_hash: str) -> None:
    await db._change(
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
            us(key.created_at),
            maybe_us(key.revoked_at),
        ),
    )


async def api_key_by_hash(db: Runner, key_hash: str) -> ApiKeyRecord | None:
    row = await db._one("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
    return None if row is None else schema.api_key_from_row(row, dt)


async def get_api_keys(db: Runner, key_ids: Collection[str]) -> list[ApiKeyRecord]:
    rows = await db._all(
        "SELECT * FROM api_keys WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (json_list(key_ids),),
    )
    return [schema.api_key_from_row(row, dt) for row in rows]


async def list_api_keys(db: Runner, *, organization_id: str | None) -> list[ApiKeyRecord]:
    rows = await db._all(
        "SELECT * FROM api_keys WHERE ?1 IS NULL OR organization_id = ?1 ORDER BY id",
        (organization_id,),
    )
    return [schema.api_key_from_row(row, dt) for row in rows]


async def revoke_api_key(db: Runner, key_id: str, *, now: datetime) -> bool:
    changed = await db._change(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (us(now), key_id),
    )
    return changed > 0


async def reencrypt_secrets(db: Runner, box: SecretBox, *, limit: int) -> tuple[int, int]:
    def work(conn: sqlite3.Connection) -> tuple[int, int]:
        rows = conn.execute("SELECT id, endpoint_id, ciphertext FROM endpoint_secrets ORDER BY id")
        updates, remaining = schema.resealed(box, rows.fetchall(), limit=limit)
        conn.executemany("UPDATE endpoint_secrets SET ciphertext = ? WHERE id = ?", updates)
        return len(updates), remaining

    return await db._write(work)


class ApiKeyMethods:
    """The API-key calls of `Store`, mixed into `SQLiteStore`."""

    async def create_api_key(self, key: ApiKeyRecord, key_hash: str) -> None:
        await create_api_key(cast(Runner, self), key, key_hash)

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return await api_key_by_hash(cast(Runner, self), key_hash)

    async def get_api_keys(self, key_ids: Collection[str]) -> list[ApiKeyRecord]:
        return await get_api_keys(cast(Runner, self), key_ids)

    async def list_api_keys(self, *, organization_id: str | None = None) -> list[ApiKeyRecord]:
        return await list_api_keys(cast(Runner, self), organization_id=organization_id)

    async def revoke_api_key(self, key_id: str, *, now: datetime) -> bool:
        return await revoke_api_key(cast(Runner, self), key_id, now=now)
