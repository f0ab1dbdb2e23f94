"""The in-memory view of organizations, endpoints and signing secrets.

Routing runs for every event and the scheduler looks up an endpoint for every attempt, so
both read an immutable snapshot (`RoutingTable` plus endpoints by id) that is rebuilt from
the store every `refresh_interval` seconds, and at once after a write made through this
process (`invalidate`). Another replica's write becomes visible within one interval.
Signing secrets are cached per endpoint for the same interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from dispatcher.core.models import Endpoint, EndpointScope
from dispatcher.core.routing import RoutingTable
from dispatcher.core.scopes import unauthorised_firehoses
from dispatcher.store import Store

log = logging.getLogger(__name__)

# Which `all_children` endpoints lost their authorisation (the registering key no longer
# holds org:admin); `firehose_authoriser` reads them from the keys table.
UnauthorisedFirehoses = Callable[[list[Endpoint]], Awaitable[frozenset[str]]]


async def _all_authorised(endpoints: list[Endpoint]) -> frozenset[str]:
    return frozenset()


class Directory:
    def __init__(
        self,
        store: Store,
        *,
        refresh_interval: float = 2.0,
        unauthorised_firehoses: UnauthorisedFirehoses = _all_authorised,
    ) -> None:
        self._store = store
        self._refresh_interval = refresh_interval
        self._unauthorised = unauthorised_firehoses
        self.table = RoutingTable()
        self._endpoints: dict[str, Endpoint] = {}
        self._secrets: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lookups: dict[str, asyncio.Future[tuple[str, ...]]] = {}
        self._stale = asyncio.Event()
        self._lock = asyncio.Lock()

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self._endpoints.get(endpoint_id)

    async def refresh(self) -> None:
        """Rebuild the snapshot from the store (one query for orgs, one for endpoints)."""
        async with self._lock:
            orgs = await self._store.list_organizations()
            endpoints = await self._store.routable_endpoints()
            unauthorised = await self._unauthorised(endpoints)
            self.table = RoutingTable.build(orgs, endpoints, unauthorised_firehoses=unauthorised)
            self._endpoints = {e.id: e for e in endpoints}
            self._stale.clear()

    def invalidate(self, endpoint_id: str | None = None) -> None:
        """A write happened here: refresh soon, and forget cached secrets of `endpoint_id`."""
        if endpoint_id is None:
            self._secrets.clear()
        else:
            self._secrets.pop(endpoint_id, None)
        self._stale.set()

    async def run(self) -> None:
        """Refresh every interval, or at once when invalidated. Runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), self._refresh_interval)
            try:
                await self.refresh()
            except Exception:
                log.warning("directory refresh failed; keeping the last snapshot", exc_info=True)

    async def secrets(self, endpoint_id: str) -> tuple[str, ...]:
        """The endpoint's active signing secrets (newest first), cached briefly. Concurrent
        misses for one endpoint share a single store lookup (when the cache expires under
        load, every in-flight attempt would otherwise query the store at once)."""
        cached = self._secrets.get(endpoint_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._lookups.get(endpoint_id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._lookups[endpoint_id] = pending
            try:
                loaded = await self._store.signing_secrets([endpoint_id], now=datetime.now(UTC))
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved here: waiters re-raise it themselves
                raise
            finally:
                del self._lookups[endpoint_id]
            value = loaded.get(endpoint_id, ())
            self._secrets[endpoint_id] = (time.monotonic() + self._refresh_interval, value)
            pending.set_result(value)
            return value
        return await asyncio.shield(pending)


def firehose_authoriser(
    store: Store,
) -> Callable[[list[Endpoint]], Awaitable[frozenset[str]]]:
    """The Directory's `unauthorised_firehoses` hook, reading the keys table at each refresh
    (authorisation is evaluated at fan-out, not only when the firehose was registered)."""

    async def unauthorised(endpoints: list[Endpoint]) -> frozenset[str]:
        wanted = {
            e.created_by_key_id
            for e in endpoints
            if e.scope is EndpointScope.ALL_CHILDREN and e.created_by_key_id is not None
        }
        keys = await store.get_api_keys(sorted(wanted)) if wanted else []
        return unauthorised_firehoses(endpoints, keys)

    return unauthorised
