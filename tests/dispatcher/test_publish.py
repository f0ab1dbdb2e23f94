"""`webhooks publish` produces a valid, catalog-checked event to Kafka."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from dispatcher.core.catalog import Catalog
from dispatcher.core.envelope import decode_event
from dispatcher.core.models import Event
from dispatcher.ops.cli import main

pytestmark = pytest.mark.kafka


def example(event_type: str) -> dict[str, object]:
    """The catalog's example data, without its organizationId (--org supplies it)."""
    data = dict(Catalog.load().examples(event_type)[0])
    del data["organizationId"]
    return data


async def consume_one(bootstrap: str, topic: str) -> tuple[bytes | None, bytes | None]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    return record.key, record.value


async def test_publish_sends_a_valid_event_keyed_by_org(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The published record is keyed by the org, decodes as a valid event, and --json says where."""
    topic = f"pub-{uuid.uuid4().hex[:8]}"
    data = orjson.dumps(example("content.generated")).decode()
    env = {"WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEBHOOKS_KAFKA_TOPICS": topic}
    args = ["publish", "--type", "content.generated", "--org", "org_pub", "--data", data]
    code = await _run([*args, "--json"], env)
    assert code == 0
    printed = orjson.loads(capsys.readouterr().out)
    key, value = await consume_one(kafka_bootstrap, topic)
    assert key == b"org_pub"
    event = decode_event(value, catalog=Catalog.load(), max_bytes=262144)
    assert isinstance(event, Event)
    assert (event.id, event.type, event.organization_id) == (
        printed["id"],
        "content.generated",
        "org_pub",
    )
    assert printed["topic"] == topic


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "content.exploded", "--data", "{}"], "unknown_type"),
        (["--type", "content.generated", "--data", "{nope"], "--data is not valid JSON"),
        (["--type", "content.generated", "--data", "[]"], "--data must be a JSON object"),
        (
            ["--type", "content.generated", "--data", '{"organizationId": "org_other"}'],
            "data.organizationId is not 'org_pub'",
        ),
    ],
)
async def test_publish_refuses_invalid_events_with_one_line(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """An unknown type, bad data or a conflicting org exits 1 with one line, no traceback."""
    env = {"WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    code = await _run(["publish", "--org", "org_pub", *args], env)
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def _run(args: list[str], env: dict[str, str]) -> int:
    """cli.main runs its own event loop, so call it from a worker thread."""
    return await asyncio.to_thread(main, args, env)


async def test_publish_example_starts_from_the_catalog_example(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--example fills the data from the type's schema example, with --data overriding."""
    topic = f"pub-{uuid.uuid4().hex[:8]}"
    env = {"WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEBHOOKS_KAFKA_TOPICS": topic}
    args = ["publish", "--type", "webhook.test", "--org", "org_ex", "--example"]
    code = await _run([*args, "--data", '{"message": "hello"}'], env)
    assert code == 0, capsys.readouterr().err
    _, value = await consume_one(kafka_bootstrap, topic)
    event = decode_event(value, catalog=Catalog.load(), max_bytes=262144)
    assert isinstance(event, Event)
    data = orjson.loads(event.body)["data"]
    assert data == {**example("webhook.test"), "organizationId": "org_ex", "message": "hello"}
