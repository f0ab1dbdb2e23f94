"""The consumer's rebalance listener: a revoked partition's batch in progress is stored and
its offsets committed before the partition goes to another member (no double work, nothing
lost), and `wait_assigned` learns when this member owns partitions."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import ConsumerRebalanceListener


class CommitBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lock: asyncio.Lock, assigned: asyncio.Event) -> None:
        self._lock = lock
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Wait until the batch in progress is stored and its offsets committed.
        self._assigned.clear()
        async with self._lock:
            return

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            self._assigned.set()
