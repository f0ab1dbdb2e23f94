"""What the consumer makes of a fetch: records split into events and dead letters, a failure
told apart as the batch's bytes (dead-lettered) or the cluster's (retried), and the back-off
and the `/readyz` reason while fetching fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiokafka.errors import (
    ConsumerStoppedError,
    CorruptRecordException,
    KafkaError,
    UnsupportedCodecError,
)

from dispatcher import tracing
from dispatcher.clock import new_id
from dispatcher.core.catalog import Catalog
from dispatcher.core.envelope import Rejection, RejectReason, decode_event
from dispatcher.core.models import DeadLetter, Event

UNDECODABLE_BATCH = RejectReason.UNDECODABLE_BATCH.value
# How long one probe waits for a partition's records while an undecodable batch is isolated:
# well above the fetch wait (10 ms) and the client's prefetch back-off (100 ms).
PROBE_TIMEOUT_MS = 500
FETCH_BACKOFF_MAX = 10.0  # seconds between retries of a failing fetch, at most


def is_undecodable(exc: BaseException) -> bool:
    """Could this fetch failure come from the bytes of a record batch?

    The client names two cases (an unsupported or unknown codec, a corrupt record or CRC);
    a malformed batch surfaces from its parsers as a plain exception (struct.error,
    ValueError, IndexError, a codec's decompression error). Every other Kafka error is the
    cluster's (a connection, the coordinator) and is retried, never dead-lettered.
    """
    if isinstance(exc, UnsupportedCodecError | CorruptRecordException):
        return True
    return not isinstance(exc, KafkaError | ConsumerStoppedError | asyncio.CancelledError)


class FetchHealth:
    """Consecutive fetch failures: the back-off before the next try and the reason for /readyz."""

    def __init__(self, *, first_delay: float = 0.2, max_delay: float = FETCH_BACKOFF_MAX) -> None:
        self._first_delay = first_delay
        self._max_delay = max_delay
        self.failures = 0
        self.problem: str | None = None  # None while fetching works

    def failed(self, exc: BaseException) -> float:
        """Record a failure; return how long to wait before fetching again (doubling)."""
        self.failures += 1
        self.problem = describe(exc)
        delay: float = self._first_delay * 2.0 ** (self.failures - 1)
        return min(delay, self._max_delay)

    def succeeded(self) -> bool:
        """Record a success; True when it ends a run of failures."""
        recovered = self.problem is not None
        self.failures, self.problem = 0, None
        return recovered


def decode_records(
    records: Sequence[Any], *, catalog: Catalog, max_bytes: int, now: datetime
) -> tuple[list[Event], list[DeadLetter]]:
    """Split Kafka records into valid events and dead letters (pure, but for telling the
    tracing which record each event came from)."""
    events: list[Event] = []
    dead: list[DeadLetter] = []
    spans = tracing.active  # None while tracing is off
    for record in records:
        decoded = decode_event(record.value, catalog=catalog, max_bytes=max_bytes)
        if isinstance(decoded, Rejection):
            dead.append(
                DeadLetter(
                    id=new_id("dl"),
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    reason=decoded.reason.value,
                    detail=decoded.detail,
                    received_at=now,
                )
            )
        else:
            events.append(decoded)
            if spans is not None:
                spans.received(decoded.id, record)
    return events, dead


def describe(exc: BaseException) -> str:
    """`Type: message`, once (aiokafka's messages already start with their type's name)."""
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"
