"""The poller: claims due deliveries (retries, replays, expired leases) into the scheduler.

It claims only while the scheduler has room, at most `CLAIM_BATCH` at a time with a lease of
`WEBHOOKS_LEASE`, and otherwise sleeps until the store's next due time, the poll interval, or
`Scheduler.poke()` (a replay was queued), whichever comes first. While the process is full
it asks the store nothing: it waits for a slot to free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from dispatcher.core.policy import SchedulerConfig
from dispatcher.engine.scheduler import Scheduler
from dispatcher.errors import StoreUnavailableError
from dispatcher.metrics import Metrics
from dispatcher.store import Store

log = logging.getLogger(__name__)

CLAIM_BATCH = 500


class Poller:
    def __init__(
        self,
        *,
        store: Store,
        scheduler: Scheduler,
        config: SchedulerConfig,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._config = config
        self._metrics = metrics
        self._clock = clock

    async def run(self) -> None:
        """Claim due deliveries whenever the scheduler has room; forever."""
        config = self._config
        scheduler = self._scheduler
        while True:
            if not scheduler.has_room():
                await scheduler.wait_for_room()
                continue
            if scheduler.accepting:
                now = self._clock()
                limit = min(CLAIM_BATCH, config.capacity - scheduler.load)
                try:
                    claims = await self._store.claim_due(
                        now=now,
                        limit=limit,
                        lease_owner=config.instance_id,
                        lease_expires_at=now + timedelta(seconds=config.lease),
                    )
                except StoreUnavailableError:
                    self._metrics.store_errors.labels("claim_due").inc()
                    log.warning("store unavailable while claiming; retrying", exc_info=True)
                    # back off: reads may still work (a full disk), so the due time read
                    # next would say "now" and spin
                    await asyncio.sleep(config.poll_interval)
                    continue
                if claims:
                    scheduler.submit(claims)
                if len(claims) >= limit:
                    await asyncio.sleep(0)
                    continue
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        timeout = self._config.poll_interval
        try:
            due = await self._store.next_due_at()
        except StoreUnavailableError:
            due = None
        if due is not None:
            timeout = min(timeout, max((due - self._clock()).total_seconds(), 0.005))
        poke = self._scheduler.poll_now
        poke.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(poke.wait(), timeout)
