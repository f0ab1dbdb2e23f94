"""The directory's snapshot and secret cache, over a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

from dispatcher.core.models import Endpoint, Organization
from dispatcher.engine.directory import Directory
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from dispatcher.store.sqlite.store import SQLiteStore


class CountingStore(SQLiteStore):
    """The real store, counting secret lookups."""

    lookups = 0

    async def signing_secrets(
        self, endpoint_ids: Collection[str], *, now: datetime
    ) -> dict[str, tuple[str, ...]]:
        self.lookups += 1
        await asyncio.sleep(0.01)  # let the concurrent callers pile up behind this lookup
        return await super().signing_secrets(endpoint_ids, now=now)


async def test_concurrent_misses_share_one_secret_lookup(tmp_path: Path) -> None:
    """Fifty attempts asking at once for a cold endpoint cause one store query, and all get
    the decrypted secret."""
    secret = new_endpoint_secret()
    async with CountingStore(tmp_path / "d.db", secret_box=SecretBox.generate()) as store:
        await store.migrate()
        await store.put_organization(Organization(id="org_d"))
        endpoint = Endpoint(id="ep_d", organization_id="org_d", url="https://example.com/h")
        await store.create_endpoint(endpoint, secret, now=datetime.now(UTC))
        directory = Directory(store)
        results = await asyncio.gather(*(directory.secrets("ep_d") for _ in range(50)))
        assert results == [(secret,)] * 50
        assert store.lookups == 1
        assert await directory.secrets("ep_d") == (secret,)
        assert store.lookups == 1  # served from the cache
        directory.invalidate("ep_d")
        assert await directory.secrets("ep_d") == (secret,)
        assert store.lookups == 2
