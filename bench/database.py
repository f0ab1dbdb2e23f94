"""Scratch databases for one benchmark run, and the read-only counts the runs wait on.

SQLite is a file in the run's directory; PostgreSQL is a throwaway database created next to
WEBHOOKS_BENCH_POSTGRES_URL (default: the test server, as `bench.store` uses) and dropped
afterwards. `delivery_counts` reads the deliveries table directly — the benchmark's view
of "recorded in the store", independent of the service's API.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.store import POSTGRES_URL, scratch_postgres

STORES = ("sqlite", "postgres")


@dataclass(frozen=True, slots=True)
class Database:
    kind: str  # "sqlite" or "postgres"
    url: str  # WEBHOOKS_DATABASE_URL

    async def delivery_counts(self, endpoint_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Deliveries per status (optionally of some endpoints only)."""
        if self.kind == "sqlite":
            return await asyncio.to_thread(self._sqlite_counts, endpoint_ids)
        return await self._postgres_counts(endpoint_ids)

    def _sqlite_counts(self, endpoint_ids: Sequence[str] | None) -> dict[str, int]:
        path = self.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            if endpoint_ids is None:
                rows = conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
            else:
                marks = ",".join("?" * len(endpoint_ids))
                rows = conn.execute(
                    "SELECT status, count(*) FROM deliveries "  # noqa: S608 - placeholders only
                    f"WHERE endpoint_id IN ({marks}) GROUP BY status",
                    tuple(endpoint_ids),
                )
            return {str(status): int(count) for status, count in rows}
        finally:
            conn.close()

    async def _postgres_counts(self, endpoint_ids: Sequence[str] | None) -> dict[str, int]:
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            if endpoint_ids is None:
                rows = await conn.fetch("SELECT status, count(*) FROM deliveries GROUP BY status")
            else:
                rows = await conn.fetch(
                    "SELECT status, count(*) FROM deliveries "
                    "WHERE endpoint_id = ANY($1::text[]) GROUP BY status",
                    list(endpoint_ids),
                )
            return {str(row[0]): int(row[1]) for row in rows}
        finally:
            await conn.close()

    async def received_at(self) -> dict[str, float]:
        """Each event's `received_at` (when the consumer handed it to the store), unix s."""
        if self.kind == "sqlite":
            rows = await asyncio.to_thread(
                self._sqlite_rows, "SELECT id, received_at / 1e6 FROM events"
            )
            return {str(i): float(t) for i, t in rows}
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            records = await conn.fetch("SELECT id, extract(epoch FROM received_at) FROM events")
            return {str(r[0]): float(r[1]) for r in records}
        finally:
            await conn.close()

    def _sqlite_rows(self, sql: str) -> list[tuple[Any, ...]]:
        path = self.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return [tuple(row) for row in conn.execute(sql)]
        finally:
            conn.close()

    async def pending(self) -> int:
        """Pending deliveries (uses the partial due index on both backends)."""
        sql = "SELECT count(*) FROM deliveries WHERE status = 'pending'"
        if self.kind == "sqlite":
            return await asyncio.to_thread(self._sqlite_scalar, sql)
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    def _sqlite_scalar(self, sql: str) -> int:
        path = self.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()


async def postgres_available() -> str | None:
    """None when the benchmark PostgreSQL answers, else why not."""
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def postgres_version() -> str | None:
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@asynccontextmanager
async def scratch_database(kind: str, workdir: Path) -> AsyncIterator[Database]:
    """A fresh, empty database of `kind` for one run; PostgreSQL's is dropped afterwards."""
    if kind == "sqlite":
        path = workdir / "webhooks.db"
        _remove_sqlite(path)
        yield Database(kind, f"sqlite:///{path}")
        _remove_sqlite(path)
        return
    if kind != "postgres":
        raise ValueError(f"unknown store {kind!r}")
    async with scratch_postgres() as url:
        yield Database(kind, url)
