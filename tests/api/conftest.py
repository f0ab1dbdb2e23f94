"""One running service per test module, on SQLite and on PostgreSQL.

A module may set `STACK_ENV` (extra `WEBHOOKS_*` variables) for its service. Tests share the
module's service and use fresh organizations, so they stay independent.
"""

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
    env = getattr(request.module, "STACK_ENV", {})
    directory = str(tmp_path_factory.mktemp("api"))
    async with running_api(request.param, directory, kafka_bootstrap, env) as running:
        yield running
