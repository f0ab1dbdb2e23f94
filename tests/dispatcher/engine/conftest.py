"""Fixtures of the engine tests: a migrated SQLite store in tmp_path, fresh metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from dispatcher.metrics import Metrics
from dispatcher.store import Store, open_store
from dispatcher.store.secretbox import SecretBox


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path}/t.db", secret_box=SecretBox.generate()) as opened:
        await opened.migrate()
        yield opened


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics.create(registry)
