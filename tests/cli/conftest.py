"""One running service per CLI test module, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.api.harness import Api, running_api


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
) -> AsyncIterator[Api]:
    env = {"WEBHOOKS_RETRY_SCHEDULE": "50ms", "WEBHOOKS_REPLAY_RATE": "20"}
    directory = str(tmp_path_factory.mktemp("cli"))
    async with running_api(request.param, directory, kafka_bootstrap, env) as running:
        yield running
