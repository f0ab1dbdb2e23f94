"""The Store contract on PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from devtools.broker import free_port
from dispatcher.errors import StoreUnavailableError
from dispatcher.store import PostgresStore, Store
from dispatcher.store.postgres.scheduling import PURGE_LOCK
from dispatcher.store.records import IngestBatch, Purged
from dispatcher.store.secretbox import SecretBox
from tests.dispatcher.store.contract import (
    DAY,
    SECOND,
    T0,
    FakeClock,
    RawContents,
    StoreContract,
    StoreFactory,
    add_endpoints,
    claim,
    delivery,
    event,
)
from tests.dispatcher.store.health_contract import HealthContract
from tests.dispatcher.store.portal_contract import PortalContract

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract, HealthContract, PortalContract):
    @pytest.fixture
    def store_factory(self, postgres_url: str, clock: FakeClock, box: SecretBox) -> StoreFactory:
        return lambda other=None: PostgresStore(
            postgres_url, secret_box=other or box, clock=clock, pool_size=4, database_clock=False
        )

    @pytest.fixture
    def raw_contents(self, postgres_url: str) -> RawContents:
        async def read() -> bytes:
            """Every value of every table, bytea as raw bytes, everything else as text."""
            conn = await asyncpg.connect(postgres_url)
            try:
                tables = await conn.fetch(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' ORDER BY table_name"
                )
                chunks: list[bytes] = []
                for (table,) in tables:
                    for row in await conn.fetch(f'SELECT * FROM "{table}"'):  # noqa: S608 - catalog names
                        chunks.extend(
                            value if isinstance(value, bytes) else str(value).encode()
                            for value in row.values()
                        )
                return b"\n".join(chunks)
            finally:
                await conn.close()

        return read

    @pytest.fixture
    def unreachable_store(self, box: SecretBox) -> Store:
        closed = free_port()  # bound then released: nothing listens there
        return PostgresStore(
            f"postgresql://postgres@127.0.0.1:{closed}/test", secret_box=box, connect_timeout=2
        )

    async def test_a_missing_database_is_unavailable(
        self, postgres_url: str, box: SecretBox
    ) -> None:
        """A server that refuses the connection (no such database) is StoreUnavailableError."""
        missing = postgres_url.rpartition("/")[0] + "/no_such_database"
        with pytest.raises(StoreUnavailableError, match="no_such_database"):
            async with PostgresStore(missing, secret_box=box):
                pass

    async def test_one_replica_purges_at_a_time(
        self, store: Store, postgres_url: str, clock: FakeClock
    ) -> None:
        """While another replica's purge holds the purge lock, a purge deletes nothing and
        returns at once; once the lock is free it deletes what is due."""
        await store.ingest(IngestBatch(events=[event("evt_old")]))
        other = await asyncpg.connect(postgres_url)
        try:
            async with other.transaction():
                assert await other.fetchval("SELECT pg_try_advisory_xact_lock($1)", PURGE_LOCK)
                assert await store.purge(before=T0 + DAY) == Purged()
                assert await store.get_event("evt_old") is not None
        finally:
            await other.close()
        assert await store.purge(before=T0 + DAY) == Purged(events=1)


class TestDatabaseClock:
    """Leases by the database's clock (the production default): a replica whose clock runs
    a day ahead cannot take over a lease the database says is still held."""

    async def test_a_skewed_clock_cannot_expire_a_lease_early(self, postgres_url: str) -> None:
        box = SecretBox([bytes(range(32))])
        async with PostgresStore(postgres_url, secret_box=box, clock=FakeClock(T0)) as store:
            await store.migrate()
            await add_endpoints(store, "ep_1", "ep_2")
            fresh = delivery(
                "dlv_fresh", "evt_1", "ep_1", lease_owner="a", lease_expires_at=T0 + 60 * SECOND
            )
            await store.ingest(
                IngestBatch(
                    events=[event("evt_1")], deliveries=[fresh, delivery("dlv_2", "evt_1", "ep_2")]
                )
            )
            [claimed] = await claim(store, T0, owner="a")  # dlv_2, for 30 s of database time
            assert claimed.delivery_id == "dlv_2"
            # Replica b's clock says a day has passed: by the database's, neither lease has.
            assert await claim(store, T0 + DAY, owner="b") == []
            real = datetime.now(UTC)
            for delivery_id, lease in (("dlv_fresh", 60), ("dlv_2", 30)):
                record = await store.get_delivery(delivery_id)
                assert record is not None
                assert record.lease_expires_at is not None
                expected = real + timedelta(seconds=lease)
                assert abs((record.lease_expires_at - expected).total_seconds()) < 10
