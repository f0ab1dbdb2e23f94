"""The consumer-lag gauge: records behind the log end on the partitions this member owns.

Measured every `LAG_INTERVAL` — while idle, while the store is down and mid-batch alike, so
a stall shows as a lag that grows (0 once the member owns nothing). The log end is asked of
the broker (a cached high-water mark freezes when fetching pauses); the position is the last
offset committed, what a restart would resume from.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from dispatcher.metrics import Metrics

LAG_INTERVAL = 5.0  # seconds between lag measurements


class LagMeter:
    def __init__(
        self,
        consumer: Callable[[], AIOKafkaConsumer],
        assignment: Callable[[], frozenset[TopicPartition]],
        metrics: Metrics,
    ) -> None:
        self._consumer = consumer  # the current client (a reconnect replaces it)
        self._assignment = assignment
        self._metrics = metrics
        self._committed: dict[TopicPartition, int] = {}  # the last offsets committed here

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Offsets this member just committed."""
        self._committed.update(offsets)

    async def run(self, stopping: asyncio.Event) -> None:
        """Measure every LAG_INTERVAL until `stopping` is set."""
        while not stopping.is_set():
            try:
                lag: int | None = await asyncio.wait_for(self.measure(), LAG_INTERVAL)
            except (KafkaError, OSError, TimeoutError):
                lag = None  # keep the last value: the broker did not answer this time
            if lag is not None:
                self._metrics.consumer_lag.set(lag)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), LAG_INTERVAL)

    async def measure(self) -> int:
        owned = sorted(self._assignment())
        for gone in self._committed.keys() - set(owned):  # another member's now
            del self._committed[gone]
        if not owned:
            return 0
        consumer = self._consumer()
        ends = await consumer.end_offsets(owned)
        lag = 0
        for tp in owned:
            position = self._committed.get(tp)
            if position is None:
                committed = await consumer.committed(tp)
                if committed is None:
                    committed = (await consumer.beginning_offsets([tp]))[tp]
                position = self._committed.setdefault(tp, committed)
            lag += max(ends[tp] - position, 0)
        return lag
