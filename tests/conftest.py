"""Session-wide real components: a Tansu broker and fresh PostgreSQL databases.

With CI=true the Kafka and PostgreSQL suites must run: an unavailable component fails the
test instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from devtools.broker import EmbeddedBroker

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get(
    "WEBHOOKS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def unavailable(what: str, why: object) -> None:
    """Skip locally when a real component is missing; fail in CI, where it must exist."""
    message = f"{what} unavailable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: this suite must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Tansu broker on a free loopback port for the whole session."""
    broker = EmbeddedBroker()
    try:
        broker.start()
    except Exception as exc:  # noqa: BLE001 - any start failure means "no broker"
        unavailable("Kafka broker (tansu)", exc)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@asynccontextmanager
async def fresh_postgres_database(prefix: str = "whtest") -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (its URL), dropped afterwards."""
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", exc)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database per test, dropped afterwards."""
    async with fresh_postgres_database() as url:
        yield url
