"""Every record a real Kafka client can produce is delivered, and a batch that cannot be decoded
becomes a dead letter while the partition keeps moving.

The producers are clients nobody here wrote: librdkafka (through confluent-kafka, idempotent,
with headers) and kafka-python, each with every compression codec. The corrupt batch is made
by the chaos harness's TCP proxy, which alters a marker inside the broker's fetch responses,
so the batch's CRC no longer matches on every fetch — as a disk or network fault would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer as RdKafkaProducer
from kafka import KafkaProducer

from chaos.proxy import ProxiedBroker
from devtools.receivers import Receiver
from dispatcher.engine.fetching import UNDECODABLE_BATCH
from dispatcher.store.secretbox import new_endpoint_secret
from tests.e2e.harness import Stack, envelope, running_stack, stack_settings
from tests.e2e.test_pipeline import WAIT, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ORG = "org_codecs"
EVENTS = 20  # per client and codec: several batches when lingering, one record each otherwise
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
HEADERS: list[tuple[str, str | bytes | None]] = [
    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
]


@pytest.fixture
async def stack(tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[Stack]:
    """The codecs are the broker's and the client's business: one store is enough."""
    settings = stack_settings(f"sqlite:///{tmp_path / 'webhooks.db'}", kafka_bootstrap)
    async with running_stack(settings) as running:
        yield running


def produce_with_librdkafka(bootstrap: str, topic: str, values: list[bytes], codec: str) -> None:
    producer = RdKafkaProducer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "compression.type": codec,
            "linger.ms": 20,  # several records per batch, so a codec really compresses a batch
            "message.timeout.ms": 20000,
        }
    )
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for value in values:
        producer.produce(topic, value=value, key=ORG.encode(), headers=HEADERS, callback=delivered)
    remaining = producer.flush(20)
    assert remaining == 0, f"{remaining} records were not acknowledged"
    assert failures == []


def produce_with_kafka_python(bootstrap: str, topic: str, values: list[bytes], codec: str) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        linger_ms=20,
        acks="all",
    )
    try:
        futures = [
            producer.send(topic, value=value, key=ORG.encode(), headers=HEADERS) for value in values
        ]
        producer.flush(20)
        for future in futures:
            future.get(timeout=20)
    finally:
        producer.close(5)


PRODUCERS = {"librdkafka": produce_with_librdkafka, "kafka-python": produce_with_kafka_python}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client", sorted(PRODUCERS))
async def test_every_codec_from_real_clients_is_delivered_and_verified(
    stack: Stack, kafka_bootstrap: str, client: str, codec: str
) -> None:
    """Events produced by a foreign client with each codec arrive once each, verified."""
    await stack.org(ORG)
    secret = new_endpoint_secret()
    async with Receiver(secret) as receiver:
        await stack.endpoint(ORG, receiver.url, secret=secret)
        published = [envelope(ORG) for _ in range(EVENTS)]
        produce = PRODUCERS[client]
        await asyncio.to_thread(
            produce, kafka_bootstrap, stack.topic, [value for _, value in published], codec
        )
        wanted = {event_id for event_id, _ in published}
        assert await receiver.wait_until(lambda r: wanted <= set(r.delivered()), WAIT)
        assert receiver.ids() == dict.fromkeys(wanted, 1)
        assert all(r.verified for r in receiver.received)
        assert await stack.running.store.list_dead_letters() == []


MARKER = b"CORRUPT-THIS-BATCH-IN-FLIGHT"


@pytest.fixture
async def corrupting_broker() -> AsyncIterator[ProxiedBroker]:
    async with ProxiedBroker(corrupt=(MARKER, MARKER.lower())) as broker:
        yield broker


async def committed_offset(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    """The group's committed offset for `tp`, read without joining the group."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await reader.start()
    try:
        offset = await reader.committed(tp)
    finally:
        await reader.stop()
    return None if offset is None else int(offset)


async def test_an_undecodable_batch_is_dead_lettered_and_the_partition_moves_on(
    tmp_path: Path, corrupting_broker: ProxiedBroker
) -> None:
    """A batch whose CRC fails on every fetch becomes one `undecodable_batch` dead letter with
    its topic, partition and offset; the offset is committed past it, it is counted, and the
    good records before and after it are delivered exactly once."""
    bootstrap = corrupting_broker.bootstrap_servers
    settings = stack_settings(f"sqlite:///{tmp_path / 'webhooks.db'}", bootstrap)
    async with running_stack(settings) as stack:
        await stack.org(ORG)
        secret = new_endpoint_secret()
        async with Receiver(secret) as receiver:
            await stack.endpoint(ORG, receiver.url, secret=secret)
            before_id, before = envelope(ORG)
            after_id, after = envelope(ORG)
            _, bad = envelope(ORG, data={"title": MARKER.decode()})
            sent = []
            for value in (before, bad, after):
                sent.append(await stack.producer.send_and_wait(stack.topic, value, key=b"k"))
            bad_offset, after_offset = int(sent[1].offset), int(sent[2].offset)
            tp = TopicPartition(stack.topic, sent[1].partition)
            assert len({meta.partition for meta in sent}) == 1

            assert await receiver.wait_until(
                lambda r: {before_id, after_id} <= set(r.delivered()), WAIT
            )
            letters = await stack.running.store.list_dead_letters()
            assert [(d.reason, d.topic, d.partition, d.offset) for d in letters] == [
                (UNDECODABLE_BATCH, tp.topic, tp.partition, bad_offset)
            ]
            assert f"offsets {bad_offset}–{bad_offset}" in letters[0].detail
            assert "CorruptRecordException" in letters[0].detail
            assert receiver.ids() == {before_id: 1, after_id: 1}

            async def committed_past() -> bool:
                group = settings.kafka_group
                committed = await committed_offset(bootstrap, group, tp)
                return committed == after_offset + 1

            assert await eventually(committed_past)
            counted = stack.running.metrics.registry.get_sample_value(
                "webhooks_dead_letters_total", {"reason": UNDECODABLE_BATCH}
            )
            assert counted == 1
            assert corrupting_broker.proxy.stats.corrupted >= 1
