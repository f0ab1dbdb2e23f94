"""The consumer's decisions about a failing fetch: what is bad input, and how it backs off."""

from __future__ import annotations

import asyncio
import struct

import pytest
from aiokafka.errors import (
    ConsumerStoppedError,
    CorruptRecordException,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    UnsupportedCodecError,
)

from dispatcher.engine.fetching import FetchHealth, describe, is_undecodable


def struct_error() -> Exception:
    try:
        struct.unpack(">i", b"\x00")
    except struct.error as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("error", "undecodable"),
    [
        (UnsupportedCodecError("Libraries for lz4 compression codec not found"), True),
        (UnsupportedCodecError("Unknown compression codec 0x07"), True),
        (CorruptRecordException("Invalid CRC - TopicPartition(topic='t', partition=0)"), True),
        (struct_error(), True),  # a truncated batch header
        (ValueError("Error encountered when attempting to convert value"), True),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), True),
        (IndexError("index out of range"), True),
        (KafkaConnectionError("Connection at 127.0.0.1:9092 closed"), False),
        (KafkaTimeoutError(), False),
        (NodeNotReadyError(), False),
        (ConsumerStoppedError(), False),
        (asyncio.CancelledError(), False),
    ],
)
def test_only_failures_of_the_bytes_are_undecodable(
    error: BaseException, undecodable: bool
) -> None:
    """Codec, CRC and parser failures are bad input; the cluster's own errors are retried."""
    assert is_undecodable(error) is undecodable


def test_fetch_back_off_doubles_up_to_its_ceiling_and_names_the_problem() -> None:
    """Each consecutive failure doubles the wait (0.2 s first, at most the ceiling)."""
    health = FetchHealth(first_delay=0.2, max_delay=1.0)
    delays = [health.failed(KafkaConnectionError("down")) for _ in range(5)]
    assert delays == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert health.failures == 5
    assert health.problem == "KafkaConnectionError: down"
    assert describe(ValueError("bad")) == "ValueError: bad"


def test_a_success_clears_the_problem_and_restarts_the_ladder() -> None:
    """After a success /readyz has no fetch problem and the next failure waits the first delay."""
    health = FetchHealth(first_delay=0.2, max_delay=10.0)
    assert health.succeeded() is False  # nothing to recover from
    health.failed(NodeNotReadyError())
    health.failed(NodeNotReadyError())
    assert health.succeeded() is True
    assert health.problem is None
    assert health.failures == 0
    assert health.failed(NodeNotReadyError()) == 0.2
