"""Housekeeping, every `housekeeping_interval` seconds: disable endpoints with no success
for `WEBHOOKS_DISABLE_AFTER` while deliveries keep failing, purge what is older than
`WEBHOOKS_RETENTION` (events without a pending delivery, dead letters, finished replay
jobs; one replica at a time on PostgreSQL) and the health rollup buckets older than the
retention or 48 hours, whichever is longer, forget expired portal sessions and unopened
portal links, and set the oldest-pending gauge. A store
outage skips a round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from dispatcher.core.health import KEEP_AT_LEAST
from dispatcher.core.models import DisabledReason
from dispatcher.core.policy import SchedulerConfig
from dispatcher.engine.directory import Directory
from dispatcher.engine.scheduler import Scheduler
from dispatcher.errors import StoreUnavailableError
from dispatcher.metrics import Metrics
from dispatcher.store import Store

log = logging.getLogger(__name__)


class Housekeeper:
    def __init__(
        self,
        *,
        store: Store,
        directory: Directory,
        scheduler: Scheduler,
        config: SchedulerConfig,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._directory = directory
        self._scheduler = scheduler
        self._config = config
        self._metrics = metrics
        self._clock = clock

    async def run(self) -> None:
        """One round every interval, forever."""
        while True:
            try:
                await self.round()
            except StoreUnavailableError:
                self._metrics.store_errors.labels("housekeeping").inc()
                log.warning("store unavailable during housekeeping", exc_info=True)
            await asyncio.sleep(self._config.housekeeping_interval)

    async def round(self) -> None:
        now = self._clock()
        failing = await self._store.endpoints_failing_since(
            now - timedelta(seconds=self._config.disable_after)
        )
        for endpoint_id in failing:
            endpoint = self._directory.endpoint(endpoint_id) or await self._store.get_endpoint(
                endpoint_id
            )
            if endpoint is not None:
                await self._scheduler.disable(endpoint, DisabledReason.FAILING)
        retention = timedelta(seconds=self._config.retention)
        purged = await self._store.purge(before=now - retention)
        await self._store.purge_health(before=now - max(retention, KEEP_AT_LEAST))
        if purged.events or purged.dead_letters or purged.replay_jobs:
            log.info(
                "retention purge",
                extra={
                    "events": purged.events,
                    "dead_letters": purged.dead_letters,
                    "replay_jobs": purged.replay_jobs,
                },
            )
        await self._store.purge_portal_sessions(now=now)
        due = await self._store.next_due_at()
        self._metrics.oldest_pending_seconds.set(
            max((now - due).total_seconds(), 0.0) if due is not None else 0.0
        )
