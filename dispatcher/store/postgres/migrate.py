"""Bringing a PostgreSQL database to the current schema: `apply_migrations` applies, in
order, the package's migrations/*.sql not yet recorded in `schema_migrations`, inside the
transaction `PostgresStore.migrate` opens and under a transaction-scoped advisory lock
(`MIGRATION_LOCK`), so replicas starting together apply each migration once.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from dispatcher.store import schema

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn

# pg_advisory_xact_lock key serialising `migrate` across processes ("LWHMIGR" in ASCII).
MIGRATION_LOCK = 0x4C_57_48_4D_49_47_52


async def apply_migrations(conn: Conn, *, now: datetime) -> list[str]:
    """Run inside a transaction; return the versions applied."""
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
