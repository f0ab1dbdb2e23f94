"""The PostgreSQL administration of tenants and their destinations: organizations, endpoints
(create, read, list, update, delete, enable/disable, the failing clock), their sealed signing
secrets (rotation, the live set) and API keys, each a function run on a connection
`PostgresStore` lends it (in a transaction where the store asks for one). Secrets arrive here
already sealed and leave here opened with the store's `SecretBox`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from dispatcher.core.models import (
    ApiKeyRecord,
    DisabledReason,
    Endpoint,
    EndpointStatus,
    Organization,
)
from dispatcher.errors import NotFoundError
from dispatcher.store import schema
from dispatcher.store.postgres.connection import count, same
from dispatcher.store.postgres.scheduling import delete_deliveries

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn
    from dispatcher.store.secretbox import SecretBox

INSERT_CIPHERTEXT = (
    "INSERT INTO endpoint_secrets (endpoint_id, ciphertext, created_at) VALUES ($1, $2, $3)"
)


def endpoint_config(endpoint: Endpoint, updated_at: datetime) -> tuple[Any, ...]:
    """$1..$7 of the endpoint statements below: the columns a PATCH may change."""
    return (
        endpoint.url,
        endpoint.scope.value,
        schema.dump_event_types(endpoint.event_types),
        endpoint.rate_limit,
        endpoint.description,
        schema.dump_metadata(endpoint.metadata),
        updated_at,
    )


# -- organizations ------------------------------------------------------------------------


async def put_organization(conn: Conn, org: Organization, *, now: datetime) -> None:
    await conn.execute(
        """
        INSERT INTO organizations (id, parent_id, status, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $4)
        ON CONFLICT (id) DO UPDATE SET parent_id = excluded.parent_id,
            status = excluded.status, updated_at = excluded.updated_at
        """,
        org.id,
        org.parent_id,
        org.status.value,
        now,
    )


async def get_organization(conn: Conn, org_id: str) -> Organization | None:
    row = await conn.fetchrow("SELECT * FROM organizations WHERE id = $1", org_id)
    return None if row is None else schema.organization_from_row(row)


async def list_organizations(
    conn: Conn, *, after: str | None = None, limit: int | None = None
) -> list[Organization]:
    rows = await conn.fetch(
        "SELECT * FROM organizations WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
        after,
        limit,
    )
    return [schema.organization_from_row(row) for row in rows]


# -- endpoints and secrets ----------------------------------------------------------------


async def create_endpoint(conn: Conn, endpoint: Endpoint, sealed: bytes, *, now: datetime) -> None:
    """Run inside a transaction: the endpoint and its first secret."""
    disabled_at = now if endpoint.status is EndpointStatus.DISABLED else None
    await conn.execute(
        """
        INSERT INTO endpoints (url, scope, event_types, rate_limit, description,
            metadata, updated_at, id, organization_id, status, disabled_reason,
            disabled_at, created_by_key_id, created_at, signature_scheme, public_key)
        VALUES ($1, $2, $3::jsonb, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13,
            $7, $14, $15)
        """,
        *endpoint_config(endpoint, now),
        endpoint.id,
        endpoint.organization_id,
        endpoint.status.value,
        endpoint.disabled_reason,
        disabled_at,
        endpoint.created_by_key_id,
        endpoint.signature_scheme.value,
        endpoint.public_key,
    )
    await conn.execute(INSERT_CIPHERTEXT, endpoint.id, sealed, now)


async def get_endpoint(conn: Conn, endpoint_id: str) -> Endpoint | None:
    row = await conn.fetchrow("SELECT * FROM endpoints WHERE id = $1", endpoint_id)
    return None if row is None else schema.endpoint_from_row(row, same)


async def list_endpoints(
    conn: Conn, organization_id: str, *, after: str | None, limit: int
) -> list[Endpoint]:
    rows = await conn.fetch(
        """
        SELECT * FROM endpoints
        WHERE organization_id = $1 AND ($2::text IS NULL OR id > $2)
        ORDER BY id LIMIT $3
        """,
        organization_id,
        after,
        limit,
    )
    return [schema.endpoint_from_row(row, same) for row in rows]


async def routable_endpoints(conn: Conn) -> list[Endpoint]:
    rows = await conn.fetch("SELECT * FROM endpoints ORDER BY id")
    return [schema.endpoint_from_row(row, same) for row in rows]


async def update_endpoint(conn: Conn, endpoint: Endpoint, *, now: datetime) -> None:
    changed = count(
        await conn.execute(
            """
            UPDATE endpoints SET url = $1, scope = $2, event_types = $3::jsonb,
                rate_limit = $4, description = $5, metadata = $6::jsonb, updated_at = $7
            WHERE id = $8
            """,
            *endpoint_config(endpoint, now),
            endpoint.id,
        )
    )
    if not changed:
        raise NotFoundError(f"endpoint {endpoint.id} does not exist")


async def delete_endpoint(conn: Conn, endpoint_id: str) -> bool:
    """Run inside a transaction."""
    # The row lock waits for ingests holding the endpoint; later ones find it gone.
    if not await conn.fetchrow("SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE", endpoint_id):
        return False
    await delete_deliveries(conn, "endpoint_id", [endpoint_id])
    await conn.execute("DELETE FROM endpoint_health WHERE endpoint_id = $1", endpoint_id)
    await conn.execute("DELETE FROM endpoint_health_hourly WHERE endpoint_id = $1", endpoint_id)
    await conn.execute("DELETE FROM endpoints WHERE id = $1", endpoint_id)
    return True


async def set_endpoint_status(
    conn: Conn,
    endpoint_id: str,
    status: EndpointStatus,
    reason: DisabledReason | None,
    *,
    now: datetime,
) -> bool:
    # Disabling records why and when; enabling clears that and restarts the failing clock.
    disabling = status is EndpointStatus.DISABLED
    changed = count(
        await conn.execute(
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
    )
    return changed > 0


async def rotate_secret(
    conn: Conn,
    endpoint_id: str,
    sealed: bytes,
    *,
    now: datetime,
    old_expires_at: datetime,
    public_key: str | None = None,
) -> None:
    """Run inside a transaction."""
    # Lock the endpoint so a concurrent rotation or delete waits for this one.
    if not await conn.fetchrow("SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE", endpoint_id):
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
    await conn.execute(INSERT_CIPHERTEXT, endpoint_id, sealed, now)
    if public_key is not None:
        await conn.execute(
            "UPDATE endpoints SET public_key = $2 WHERE id = $1", endpoint_id, public_key
        )


async def signing_secrets(
    conn: Conn, endpoint_ids: list[str], *, now: datetime, box: SecretBox
) -> dict[str, tuple[str, ...]]:
    rows = await conn.fetch(
        """
        SELECT endpoint_id, ciphertext FROM endpoint_secrets
        WHERE endpoint_id = ANY($1::text[]) AND (expires_at IS NULL OR expires_at > $2)
        ORDER BY endpoint_id, id DESC
        """,
        endpoint_ids,
        now,
    )
    secrets: dict[str, list[str]] = {}
    for endpoint_id, sealed in rows:
        plain = box.decrypt(sealed, aad=schema.secret_aad(endpoint_id))
        secrets.setdefault(endpoint_id, []).append(plain)
    return {endpoint_id: tuple(values) for endpoint_id, values in secrets.items()}


async def endpoints_failing_since(conn: Conn, before: datetime) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM endpoints WHERE status = 'enabled' AND failing_since <= $1 ORDER BY id",
        before,
    )
    return [row[0] for row in rows]


async def set_endpoint_creator(conn: Conn, endpoint_id: str, key_id: str | None) -> bool:
    changed = count(
        await conn.execute(
            "UPDATE endpoints SET created_by_key_id = $2 WHERE id = $1", endpoint_id, key_id
        )
    )
    return changed > 0


# -- API keys -------------------------------------------------------------------------------


async def create_api_key(conn: Conn, key: ApiKeyRecord, key_hash: str) -> None:
    await conn.execute(
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


async def api_key_by_hash(conn: Conn, key_hash: str) -> ApiKeyRecord | None:
    row = await conn.fetchrow("SELECT * FROM api_keys WHERE key_hash = $1", key_hash)
    return None if row is None else schema.api_key_from_row(row, same)


async def get_api_keys(conn: Conn, key_ids: list[str]) -> list[ApiKeyRecord]:
    rows = await conn.fetch(
        "SELECT * FROM api_keys WHERE id = ANY($1::text[]) ORDER BY id", key_ids
    )
    return [schema.api_key_from_row(row, same) for row in rows]


async def list_api_keys(conn: Conn, *, organization_id: str | None) -> list[ApiKeyRecord]:
    rows = await conn.fetch(
        "SELECT * FROM api_keys WHERE $1::text IS NULL OR organization_id = $1 ORDER BY id",
        organization_id,
    )
    return [schema.api_key_from_row(row, same) for row in rows]


async def revoke_api_key(conn: Conn, key_id: str, *, now: datetime) -> bool:
    changed = count(
        await conn.execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            key_id,
            now,
        )
    )
    return changed > 0


async def reencrypt_secrets(conn: Conn, *, box: SecretBox, limit: int) -> tuple[int, int]:
    """Run inside a transaction: the rows are locked while they are sealed again."""
    rows = await conn.fetch(
        "SELECT id, endpoint_id, ciphertext FROM endpoint_secrets ORDER BY id FOR UPDATE"
    )
    updates, remaining = schema.resealed(
        box, [(r["id"], r["endpoint_id"], r["ciphertext"]) for r in rows], limit=limit
    )
    if updates:
        await conn.execute(
            """
            UPDATE endpoint_secrets AS s SET ciphertext = u.ciphertext
            FROM unnest($1::bytea[], $2::bigint[]) AS u (ciphertext, id) WHERE s.id = u.id
            """,
            [blob for blob, _ in updates],
            [row_id for _, row_id in updates],
        )
    return len(updates), remaining
