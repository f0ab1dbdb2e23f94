"""The benchmark's Kafka side: topics, 1 KB events, and a fast publisher.

Events are `content.generated` envelopes of exactly `EVENT_BYTES` bytes, built from the
catalog's example and validated once by `decode_event`; every other event is that template
with a new id (ids have a fixed length), so publishing costs no JSON encoding.

The record key is the organization id (the ingest contract); the partition is chosen
round-robin so that a run with few organizations still spreads over every partition, as a
topic with many organizations does.

Tansu has no idempotent producer, so `enable_idempotence=False`; `linger_ms` and a large
`max_batch_size` let a pre-publish reach ~100k records/s here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dispatcher.clock import new_id
from dispatcher.core.catalog import Catalog
from dispatcher.core.envelope import DEFAULT_MAX_BYTES, Rejection, decode_event

EVENT_BYTES = 1024
EVENT_TYPE = "content.generated"
PARTITIONS = 8
_ID_SLOT = "evt_" + "0" * 26


class EventFactory:
    """Pre-encoded 1 KB envelopes, one template per organization."""

    def __init__(self, org_ids: Sequence[str], size: int = EVENT_BYTES) -> None:
        catalog = Catalog.load()
        self._templates: dict[str, tuple[bytes, bytes]] = {}
        for org in org_ids:
            body = _template(catalog, org, size)
            head, _, tail = body.partition(_ID_SLOT.encode())
            self._templates[org] = (head, tail)

    def make(self, org: str) -> tuple[str, bytes]:
        event_id = new_id("evt")
        head, tail = self._templates[org]
        return event_id, head + event_id.encode() + tail


def _template(catalog: Catalog, org: str, size: int) -> bytes:
    data = dict(catalog.examples(EVENT_TYPE)[0])
    data["organizationId"] = org
    data["title"] = ""
    envelope = {
        "id": _ID_SLOT,
        "type": EVENT_TYPE,
        "created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": data,
    }
    missing = size - len(orjson.dumps(envelope))
    if not 0 <= missing <= 512:
        raise ValueError(f"cannot pad the {EVENT_TYPE} example to {size} bytes")
    data["title"] = "x" * missing
    body = orjson.dumps(envelope)
    assert len(body) == size, (len(body), size)
    checked = decode_event(
        body.replace(_ID_SLOT.encode(), new_id("evt").encode()),
        catalog=catalog,
        max_bytes=DEFAULT_MAX_BYTES,
    )
    if isinstance(checked, Rejection):
        raise ValueError(f"the benchmark event is invalid: {checked.detail}")
    return body


async def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


@dataclass
class Publisher:
    """`async with Publisher(bootstrap, topic, factory) as p: await p.burst(...)`."""

    bootstrap: str
    topic: str
    factory: EventFactory
    linger_ms: int = 5
    partitions: int = PARTITIONS
    _producer: AIOKafkaProducer | None = None
    _next_partition: int = 0

    async def __aenter__(self) -> Self:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=False,
            linger_ms=self.linger_ms,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def _send(self, org: str) -> str:
        assert self._producer is not None
        event_id, body = self.factory.make(org)
        partition = self._next_partition
        self._next_partition = (partition + 1) % self.partitions
        await self._producer.send(self.topic, body, key=org.encode(), partition=partition)
        return event_id

    async def burst(self, orgs: Sequence[str], count: int) -> float:
        """Publish `count` events round-robin over `orgs` as fast as possible and wait until
        the broker has them all; return the records per second achieved."""
        assert self._producer is not None
        started = time.perf_counter()
        for i in range(count):
            await self._send(orgs[i % len(orgs)])
        await self._producer.flush()
        return count / max(time.perf_counter() - started, 1e-9)

    async def steady(self, orgs: Sequence[str], rate: float, seconds: float) -> dict[str, float]:
        """Publish at `rate` events/s for `seconds`; return {event id: publish time}.

        Every 2 ms the publisher catches up to `rate × elapsed`; each event's publish time
        (time.time()) is taken when it is handed to the producer.
        """
        assert self._producer is not None
        published: dict[str, float] = {}
        total = int(rate * seconds)
        started = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                at = time.time()
                event_id = await self._send(orgs[sent % len(orgs)])
                published[event_id] = at
                sent += 1
            await asyncio.sleep(0.002)
        await self._producer.flush()
        return published
