"""The Store contract on SQLite (a file in tmp_path), plus what is specific to the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dispatcher.store import SQLiteStore, Store
from dispatcher.store.secretbox import SecretBox
from tests.dispatcher.store.contract import FakeClock, RawContents, StoreContract, StoreFactory
from tests.dispatcher.store.health_contract import HealthContract
from tests.dispatcher.store.portal_contract import PortalContract


class TestSQLiteStore(StoreContract, HealthContract, PortalContract):
    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "webhooks.db"

    @pytest.fixture
    def store_factory(self, db_path: Path, clock: FakeClock, box: SecretBox) -> StoreFactory:
        return lambda other=None: SQLiteStore(db_path, secret_box=other or box, clock=clock)

    @pytest.fixture
    def raw_contents(self, db_path: Path) -> RawContents:
        def read_files() -> bytes:
            # The database file and its write-ahead log: everything committed so far.
            wal = db_path.with_name(db_path.name + "-wal")
            return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")

        async def read() -> bytes:
            return await asyncio.to_thread(read_files)

        return read

    @pytest.fixture
    def unreachable_store(self, tmp_path: Path, box: SecretBox) -> Store:
        return SQLiteStore(tmp_path / "missing-directory" / "webhooks.db", secret_box=box)
