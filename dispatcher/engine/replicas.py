"""How many replicas share the store now, so each enforces its share of the shared limits.

Every replica records itself in the store every `HEARTBEAT_INTERVAL` seconds; one not seen
for `HEARTBEAT_TTL` is forgotten, and a clean shutdown leaves at once. With N alive, each
replica enforces 1/N of an endpoint's `rateLimit` and in-flight cap, of
`WEBHOOKS_REPLAY_RATE` and of `WEBHOOKS_API_RATE_LIMIT`, so the sum over the replicas holds
the limit. The price of partitioning without coordination per request: a replica that
alone has an endpoint's traffic sends at 1/N of its rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from dispatcher.errors import StoreError
from dispatcher.store import Store

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5.0  # seconds between heartbeats
HEARTBEAT_TTL = 15.0  # seconds without one before a replica no longer counts


class Replicas:
    def __init__(
        self,
        store: Store,
        *,
        instance_id: str,
        clock: Callable[[], datetime],
        interval: float = HEARTBEAT_INTERVAL,
        ttl: float = HEARTBEAT_TTL,
    ) -> None:
        self._store = store
        self._instance_id = instance_id
        self._clock = clock
        self._interval = interval
        self._ttl = ttl
        self.count = 1  # until the store has said otherwise

    def __call__(self) -> int:
        """The replicas sharing the limits now (at least 1)."""
        return self.count

    async def beat(self) -> None:
        """One heartbeat; on a store outage the last count stands."""
        try:
            alive = await self._store.heartbeat(self._instance_id, now=self._clock(), ttl=self._ttl)
        except StoreError:
            log.warning("store unavailable for the replica heartbeat", exc_info=True)
            return
        if alive != self.count:
            log.info("replicas sharing the limits", extra={"replicas": alive})
        self.count = max(1, alive)

    async def run(self) -> None:
        """Beat every interval until cancelled."""
        while True:
            await self.beat()
            await asyncio.sleep(self._interval)

    async def leave(self) -> None:
        """A clean shutdown: the others count one fewer at once."""
        with contextlib.suppress(StoreError):
            await self._store.leave(self._instance_id)
