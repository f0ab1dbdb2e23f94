"""The consumer's batch handling without a broker: `decode_records` over record values (a
frozen dataclass with ConsumerRecord's fields stands in for aiokafka's value type).

`EventConsumer.process` is not covered here: after the intake it commits through the
AIOKafkaConsumer and reads its highwater marks, which need a started consumer with assigned
partitions (the Kafka suites cover it with the embedded broker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest

from dispatcher.core.catalog import Catalog
from dispatcher.core.envelope import encode_event
from dispatcher.core.models import DeadLetter, Event
from dispatcher.engine.fetching import decode_records
from tests.dispatcher.engine.support import ORG, T0

CATALOG = Catalog.load()
TOPIC = "layers.events"
NOW = datetime(2026, 6, 9, 12, 30, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Record:
    """The fields of aiokafka's ConsumerRecord that decoding reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def valid(event_id: str = "evt_1", message: str = "hi") -> bytes:
    return encode_event(
        "webhook.test",
        ORG,
        {"endpointId": "ep_1", "message": message},
        catalog=CATALOG,
        event_id=event_id,
        created=T0,
    )


VALID = valid()
LIMIT = len(VALID)  # the largest accepted record in these tests is VALID itself
MISSING_MESSAGE = orjson.dumps(
    {
        "id": "evt_2",
        "type": "webhook.test",
        "created": "2026-06-09T12:00:00Z",
        "data": {"organizationId": ORG, "endpointId": "ep_1"},
    }
)
OVERSIZE = valid("evt_3", message="hi!")  # one byte longer than VALID


def record(offset: int, value: bytes | None, *, partition: int = 4) -> Record:
    return Record(topic=TOPIC, partition=partition, offset=offset, key=ORG.encode(), value=value)


def decode(records: list[Record], max_bytes: int = LIMIT) -> tuple[list[Event], list[DeadLetter]]:
    return decode_records(records, catalog=CATALOG, max_bytes=max_bytes, now=NOW)


def test_a_valid_record_becomes_its_event() -> None:
    events, dead = decode([record(7, VALID)])

    assert events == [
        Event(id="evt_1", type="webhook.test", created=T0, organization_id=ORG, body=VALID)
    ]
    assert dead == []


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        (
            b"{not json",
            "malformed_json",
            "unexpected character, expected a string key at line 1 column 2",
        ),
        (MISSING_MESSAGE, "schema_violation", 'data: "message" is a required property'),
        (
            OVERSIZE,
            "too_large",
            f"record value is {LIMIT + 1} bytes, over the limit of {LIMIT}",
        ),
        (None, "tombstone", "record value is null (tombstone)"),
    ],
    ids=["invalid JSON", "schema violation", "oversize", "tombstone"],
)
def test_a_bad_record_becomes_a_dead_letter_with_its_place_and_bytes(
    value: bytes | None, reason: str, detail: str
) -> None:
    """The dead letter names the reason and detail and keeps topic, partition, offset, key
    and the original bytes; nothing of it becomes an event."""
    events, dead = decode([record(41, value, partition=2)])

    assert events == []
    [letter] = dead
    assert letter.id.startswith("dl_")
    assert (letter.reason, letter.detail) == (reason, detail)
    assert (letter.topic, letter.partition, letter.offset) == (TOPIC, 2, 41)
    assert (letter.key, letter.value, letter.received_at) == (ORG.encode(), value, NOW)


def test_a_mixed_batch_splits_in_order_with_each_dead_letter_at_its_offset() -> None:
    records = [
        record(10, VALID),
        record(11, b"{not json"),
        record(12, valid("evt_4", message="ok")),
        record(13, MISSING_MESSAGE),
        record(14, OVERSIZE),
    ]

    events, dead = decode(records)

    assert [e.id for e in events] == ["evt_1", "evt_4"]
    assert [(d.offset, d.reason) for d in dead] == [
        (11, "malformed_json"),
        (13, "schema_violation"),
        (14, "too_large"),
    ]
    assert len({d.id for d in dead}) == 3


def test_the_size_limit_is_inclusive() -> None:
    """A record of exactly max_bytes is accepted; with a limit one byte lower it is not."""
    accepted, none = decode([record(1, VALID)], max_bytes=LIMIT)
    rejected, [letter] = decode([record(1, VALID)], max_bytes=LIMIT - 1)

    assert ([e.id for e in accepted], none) == (["evt_1"], [])
    assert (rejected, letter.reason) == ([], "too_large")


def test_an_empty_fetch_decodes_to_nothing() -> None:
    assert decode([]) == ([], [])
