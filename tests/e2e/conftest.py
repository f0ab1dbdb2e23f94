"""End-to-end fixtures: the whole service on Tansu, against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.harness import Stack, running_stack, stack_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'webhooks.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def stack(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Stack]:
    async with running_stack(stack_settings(database_url, kafka_bootstrap)) as running:
        yield running
