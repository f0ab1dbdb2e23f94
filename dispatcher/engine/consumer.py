"""The Kafka consumer: records in, durable state out, then — only then — offsets committed.

For each batch from `getmany`:
  1. every record becomes an `Event` (validated) or a `DeadLetter` (reason + original bytes);
  2. the intake persists the events, their deliveries and the dead letters in ONE store
     transaction — infrastructure faults (store down) are retried with back-off, forever,
     never dead-lettered; the partition simply waits;
  3. the offsets after the batch are committed.
A crash anywhere replays records (the offsets were not committed); replayed records are
deduped by event id and (event id, endpoint id). On partition revocation the in-progress
batch finishes and commits before the partitions go (the rebalance listener waits for it).

A record batch the client cannot decode (an unknown codec, a CRC mismatch, a malformed
batch) is bad input like a malformed record: the partition that fails is found, its records
before the bad batch are ingested, the undecodable offset range becomes ONE dead letter
(`undecodable_batch`) and the offset is committed past it, so the partition keeps moving.
Any other fetch failure is logged, counted and retried with back-off while `/readyz` says
why; the consumer never exits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from dispatcher import tracing
from dispatcher.clock import new_id
from dispatcher.core.catalog import Catalog
from dispatcher.core.models import DeadLetter, Event
from dispatcher.engine.fetching import (
    PROBE_TIMEOUT_MS,
    UNDECODABLE_BATCH,
    FetchHealth,
    decode_records,
    is_undecodable,
)
from dispatcher.engine.intake import Intake
from dispatcher.engine.lag import LagMeter
from dispatcher.engine.rebalance import CommitBeforeRevoke
from dispatcher.engine.scheduler import Scheduler
from dispatcher.errors import StoreUnavailableError
from dispatcher.metrics import Metrics

log = logging.getLogger(__name__)

UNDECODABLE_CONFIRMATIONS = 2  # failures at one offset before the walk steps past it

CONNECT_BACKOFF_MAX = 30.0  # seconds between tries to reach the cluster, at most


class EventConsumer:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Sequence[str],
        group: str,
        session_timeout: float,
        batch_size: int,
        max_event_bytes: int,
        catalog: Catalog,
        intake: Intake,
        scheduler: Scheduler,
        metrics: Metrics,
    ) -> None:
        self._topics = list(topics)
        self._batch_size = batch_size
        self._max_event_bytes = max_event_bytes
        self._catalog = catalog
        self._intake = intake
        self._scheduler = scheduler
        self._metrics = metrics
        self._batch_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._assigned = asyncio.Event()
        self._fetch_health = FetchHealth()
        session_ms = int(session_timeout * 1000)
        self._bootstrap_servers = bootstrap_servers
        self._options: dict[str, Any] = dict(
            bootstrap_servers=bootstrap_servers,
            group_id=group,
            client_id=f"layers-webhooks-{group}",
            enable_auto_commit=False,
            # A new group starts from the beginning: nothing published before the first
            # deployment is skipped, and dedupe makes the overlap harmless.
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(session_ms // 3, 100),
            max_poll_interval_ms=max(300_000, session_ms),
            # Fetch at least a whole record of the largest accepted size.
            max_partition_fetch_bytes=max(1_048_576, max_event_bytes + 4096),
            # An idle partition's fetch is answered after at most this long, and Tansu
            # holds it the whole time: this is the latency floor when traffic is light
            # (measured p99 at 500 events/s: 298 ms at 500 ms, 70 ms at 100, 16 ms at 10).
            # The price is ~100 empty fetches per second per idle consumer.
            fetch_max_wait_ms=10,
        )
        self._consumer = AIOKafkaConsumer(**self._options)
        self._connected = False
        self._lag = LagMeter(lambda: self._consumer, self.assignment, metrics)
        self._connect_health = FetchHealth(first_delay=0.5, max_delay=CONNECT_BACKOFF_MAX)

    async def __aenter__(self) -> Self:
        # Connecting happens in run(), retried with back-off while /readyz says why: an
        # unreachable cluster at start is an outage to wait out, not a reason to exit.
        return self

    async def _connect(self) -> bool:
        """Start the client and join the group; on failure wait (back-off) and return False."""
        try:
            await self._consumer.start()
        except (KafkaError, OSError) as exc:
            delay = self._connect_health.failed(exc)
            self._metrics.consumer_errors.labels(type(exc).__name__).inc()
            log.warning(
                "cannot reach Kafka; retrying",
                extra={
                    "bootstrap_servers": self._bootstrap_servers,
                    "retry_in": delay,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            with contextlib.suppress(Exception):
                await self._consumer.stop()  # a failed start leaves a client to close
            self._consumer = AIOKafkaConsumer(**self._options)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            return False
        listener = CommitBeforeRevoke(self._batch_lock, self._assigned)
        self._consumer.subscribe(self._topics, listener=listener)
        self._connected = True
        if self._connect_health.succeeded():
            log.info("connected to Kafka", extra={"bootstrap_servers": self._bootstrap_servers})
        return True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:  # leaving the group waits for a join in progress; past this the session expires
            await asyncio.wait_for(self._consumer.stop(), 2.0)
        except TimeoutError:
            log.warning("the consumer did not leave its group in time; its session will expire")

    async def status(self) -> str:
        """`ok`, or why this consumer cannot make progress (for /readyz)."""
        if not self._connected:
            problem = self._connect_health.problem or "not yet connected"
            return f"connecting to {self._bootstrap_servers}: {problem}"
        if self._fetch_health.problem is not None:
            return f"fetch failing: {self._fetch_health.problem}"
        try:
            await asyncio.wait_for(self._consumer.topics(), 2.0)
        except (KafkaError, TimeoutError, OSError):
            return "unreachable"
        return "ok"

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member currently owns (empty until the group is joined)."""
        if not self._connected:
            return frozenset()
        return frozenset(self._consumer.assignment())

    async def wait_assigned(self) -> None:
        """Return once this member owns at least one partition."""
        await self._assigned.wait()

    def stop(self) -> None:
        """Stop fetching: the batch in progress is finished and committed first."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._connected:
            if self._stopping.is_set():
                return
            await self._connect()
        stopping = asyncio.ensure_future(self._stopping.wait())
        lag = asyncio.ensure_future(self._lag.run(self._stopping))
        try:
            while not self._stopping.is_set():
                # getmany ignores timeout_ms during a rebalance and wait_for_room may wait on
                # slow endpoints: neither may hold up a stop (an abandoned fetch moved no
                # offset, so nothing is lost).
                fetch = asyncio.ensure_future(self._next_batch())
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fetch
                    break
                try:
                    batches = fetch.result()
                except Exception as exc:  # noqa: BLE001 - every fetch failure is handled below
                    await self._fetch_failed(exc)
                    continue
                self._fetch_succeeded()
                if batches:
                    await self.process(batches)
        finally:
            stopping.cancel()
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag

    def _fetch_succeeded(self) -> None:
        if self._fetch_health.succeeded():
            log.info("fetching records works again")

    async def _fetch_failed(self, exc: Exception) -> None:
        """Dead-letter an undecodable batch; back off and retry any other failure."""
        if is_undecodable(exc):
            try:
                if await self._isolate_undecodable():
                    self._fetch_succeeded()
                    return
            except Exception as again:  # noqa: BLE001 - isolation itself failed: back off
                exc = again
        delay = self._fetch_health.failed(exc)
        self._metrics.consumer_errors.labels(type(exc).__name__).inc()
        log.warning(
            "fetching records failed; retrying",
            exc_info=exc,
            extra={"failures": self._fetch_health.failures, "retry_in": delay},
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _isolate_undecodable(self) -> bool:
        """Find the partitions whose next batch cannot be decoded and move each past it.

        Each partition is asked for its records on its own: a healthy one hands back a batch
        that is ingested as usual; the failing one is walked up to the bad batch, which becomes
        a dead letter. False when no partition fails again (the failure was not the bytes').
        """
        found = False
        for tp in sorted(self._consumer.assignment()):
            if self._stopping.is_set():
                return True
            try:
                batches = await self._fetch(tp, max_records=self._batch_size)
            except Exception as exc:
                if not is_undecodable(exc):
                    raise
                await self._skip_undecodable(tp, exc)
                found = True
                continue
            if batches:
                await self.process(batches)
        if not found:
            log.warning("a fetch failed to decode, but no partition fails again")
        return found

    async def _skip_undecodable(self, tp: TopicPartition, error: Exception) -> None:
        """Ingest `tp`'s records before its bad batch, dead-letter the batch, commit past it."""
        good: list[Any] = []
        failed = False
        while not failed:  # one record at a time: a failing fetch hands back none of its records
            try:
                batch = await self._fetch(tp, max_records=1)
            except Exception as exc:
                if not is_undecodable(exc):
                    raise
                error, failed = exc, True
                continue
            if not batch:
                break  # the bad batch is gone (a retention cut, a seek): nothing to skip
            good.extend(batch[tp])
        if good:
            await self.process({tp: good})
        if not failed:
            return
        first = await self._consumer.position(tp)
        end = await self._end_of_undecodable(tp, first + 1)
        dead = DeadLetter(
            id=new_id("dl"),
            topic=tp.topic,
            partition=tp.partition,
            offset=first,
            key=None,
            value=None,
            reason=UNDECODABLE_BATCH,
            detail=(
                f"offsets {first}–{end - 1} of {tp.topic}[{tp.partition}] could not be "
                f"decoded ({type(error).__name__}: {error}); the Kafka client does not expose "
                "the batch's raw bytes"
            ),
            received_at=datetime.now(UTC),
        )
        log.error(
            "an undecodable record batch was dead-lettered",
            extra={"topic": tp.topic, "partition": tp.partition, "first": first, "end": end},
        )
        async with self._batch_lock:
            await self._persist([], [dead])
            await self._commit({tp: end})
        self._consumer.seek(tp, end)

    async def _end_of_undecodable(self, tp: TopicPartition, offset: int) -> int:
        """The first offset at or after `offset` whose batch decodes (or the log's end).

        Seeking inside a batch fetches the whole batch again, so the walk goes one offset at
        a time, bounded by twice the batch's record count. A broker that answers a fetch just
        past the bad batch with that batch first (Tansu can) makes the records sharing that
        response undecodable too: they are walked past with it, inside the dead letter.
        """
        failures = 0
        while not self._stopping.is_set():
            self._consumer.seek(tp, offset)
            try:
                batch = await self._fetch(tp, max_records=1)
            except Exception as exc:
                if not is_undecodable(exc):
                    raise
                # A fetch issued before the seek may still answer with the bad batch: only
                # a second failure at the same offset counts (else good records are skipped).
                failures += 1
                if failures >= UNDECODABLE_CONFIRMATIONS:
                    offset, failures = offset + 1, 0
                continue
            failures = 0
            if batch:
                return int(batch[tp][0].offset)
            position = await self._consumer.position(tp)
            if position > offset:  # a control batch or a compacted gap was stepped over
                return int(position)
            highwater = self._consumer.highwater(tp)
            if highwater is not None and offset >= highwater:
                return offset
        return offset

    async def _fetch(
        self, tp: TopicPartition, *, max_records: int
    ) -> dict[TopicPartition, list[Any]]:
        batches: dict[TopicPartition, list[Any]] = await self._consumer.getmany(
            tp, timeout_ms=PROBE_TIMEOUT_MS, max_records=max_records
        )
        return batches

    async def _next_batch(self) -> dict[TopicPartition, list[Any]]:
        await self._scheduler.wait_for_room()
        batches: dict[TopicPartition, list[Any]] = await self._consumer.getmany(
            timeout_ms=200, max_records=self._batch_size
        )
        return batches

    @tracing.consumed  # a span per batch while tracing is on
    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        async with self._batch_lock:
            records = [r for rs in batches.values() for r in rs]
            for tp, rs in batches.items():
                self._metrics.events_consumed.labels(tp.topic).inc(len(rs))
            events, dead = decode_records(
                records,
                catalog=self._catalog,
                max_bytes=self._max_event_bytes,
                now=datetime.now(UTC),
            )
            await self._persist(events, dead)
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs}
            await self._commit(offsets)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError):
            # The partitions moved to another member during the batch: it re-reads
            # these records and dedupe absorbs them. Nothing is lost.
            log.warning("offset commit failed; records will be re-consumed", exc_info=True)
            return
        self._lag.committed(offsets)

    async def _persist(self, events: list[Event], dead: list[DeadLetter]) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(StoreUnavailableError),
            wait=wait_exponential(multiplier=0.2, max=10.0),
            reraise=True,
            before_sleep=self._log_retry,
        ):
            with attempt:
                await self._intake.ingest(events, dead)

    def _log_retry(self, state: Any) -> None:
        self._metrics.store_errors.labels("ingest").inc()
        log.warning(
            "store unavailable; pausing the partition and retrying",
            extra={"attempt": state.attempt_number},
        )
