"""Bulk replay jobs: drained from the store at a capped rate (docs/design.md §6).

`POST /v1/webhooks/{id}/replay` stores a job that snapshots the matching deliveries; this
loop (one per replica, in the service's TaskGroup) takes the oldest active jobs in turn and
replays a small batch of each, then sleeps so that no more than `rate` deliveries per second
go back on the ladder — a recovering endpoint is not flattened. Jobs live in the store, so a
restarted service resumes them where they stopped.

The cap holds across replicas: with PostgreSQL each replica drains (the job's row lock
keeps two replicas from taking the same deliveries) at rate / N, N being the replicas
alive (`engine.replicas`), so together they replay at most `rate` deliveries per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from dispatcher import tracing
from dispatcher.errors import StoreUnavailableError
from dispatcher.store import Store

log = logging.getLogger(__name__)

STEPS_PER_SECOND = 10  # batches per second at full rate: the largest burst is rate / 10


def utcnow() -> datetime:
    return datetime.now(UTC)


def batch_size(rate: float) -> int:
    """Deliveries per step: about a tenth of a second's worth, at least one."""
    return max(1, math.ceil(rate / STEPS_PER_SECOND))


class ReplayRunner:
    def __init__(
        self,
        store: Store,
        *,
        rate: float,
        on_replayed: Callable[[int], None],
        idle_interval: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        replicas: Callable[[], int] = lambda: 1,
    ) -> None:
        if rate <= 0:
            raise ValueError("the replay rate must be positive")
        self._store = store
        self._rate = rate  # shared by the replicas: each drains rate / N
        self._replicas = replicas
        self._on_replayed = on_replayed
        self._idle_interval = idle_interval
        self._clock = clock
        self._wake = asyncio.Event()
        self._turn = 0

    def _share(self) -> float:
        """This replica's share of WEBHOOKS_REPLAY_RATE."""
        return self._rate / max(1, self._replicas())

    def wake(self) -> None:
        """A job was created: look now instead of after the idle interval."""
        self._wake.set()

    async def step(self) -> int:
        """Replay one batch of the next active job (round robin); return how many
        deliveries it took (0 when there is nothing to do)."""
        jobs = await self._store.active_replay_jobs()
        if not jobs:
            return 0
        job = jobs[self._turn % len(jobs)]
        self._turn += 1
        limit = batch_size(self._share())
        with tracing.replay("step", {"webhooks.replay_job_id": job.id}) as span:
            result = await self._store.advance_replay_job(job.id, limit=limit, now=self._clock())
            progress = result.job or job
            span.note(
                {
                    "webhooks.replay.processed": result.processed,
                    "webhooks.replay.done": progress.done,
                    "webhooks.replay.total": progress.total,
                    "webhooks.replay.finished": progress.finished_at is not None,
                }
            )
        if result.processed:
            self._on_replayed(result.processed)
        if result.job is not None and result.job.finished_at is not None:
            log.info(
                "replay job finished",
                extra={"replay_job_id": job.id, "total": result.job.total},
            )
        return result.processed

    async def run(self) -> None:
        """Drain active jobs at the capped rate until cancelled."""
        while True:
            # Cleared before looking, so a job created while this step's query runs still
            # wakes the next look (clearing after it would lose that wake-up).
            self._wake.clear()
            try:
                taken = await self.step()
            except StoreUnavailableError:
                log.warning("store unavailable while replaying; will retry", exc_info=True)
                taken = 0
            if taken:
                # Pace by what was taken: `taken` deliveries cost taken / rate seconds.
                await asyncio.sleep(taken / self._share())
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle_interval)
