"""Scale-out, proven with real processes: three `webhooks serve` replicas in one consumer group
against one PostgreSQL and a topic of six partitions.

Every event is delivered once between them, the endpoint's rate limit holds across the
replicas (not per replica), and a replica SIGKILLed mid-burst loses nothing: its leases are
taken over, its partitions reassigned, and no two attempts of one delivery ever overlap.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from devtools.broker import free_port
from devtools.receivers import Receiver
from dispatcher.core.models import DeliveryStatus, Endpoint, Organization
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from tests.e2e.harness import envelope, new_topic, service_env
from tests.e2e.test_crash import wait_healthy

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

REPLICAS = 3
PARTITIONS = 6
EVENTS = 120
RATE = 20.0
ORG = "org_replicas"


@contextmanager
def replica(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One `python -m dispatcher serve` child process; SIGTERM, then SIGKILL if it lingers."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "serve"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


async def start_replicas(
    processes: ExitStack, base: dict[str, str], log_dir: Path
) -> list[subprocess.Popen[bytes]]:
    """REPLICAS `serve` processes (replica-0, replica-1, …), each healthy before returning."""
    ports = [free_port() for _ in range(REPLICAS)]
    started = [
        processes.enter_context(
            replica(
                {**base, "WEBHOOKS_HTTP_PORT": str(port), "WEBHOOKS_INSTANCE_ID": f"replica-{n}"},
                log_dir / f"replica-{n}.log",
            )
        )
        for n, port in enumerate(ports)
    ]
    for port, process in zip(ports, started, strict=True):
        await wait_healthy(f"http://127.0.0.1:{port}", process)
    return started


def busiest_window(times: list[float], *, width: float = 1.0, after: float = 0.0) -> int:
    """The most requests in any `width`-second window starting at or after `after`."""
    times = sorted(times)
    best = 0
    for i, start in enumerate(times):
        if start < after:
            continue
        end = i
        while end < len(times) and times[end] < start + width:
            end += 1
        best = max(best, end - i)
    return best


async def _live_replicas(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM replicas"))
    finally:
        await conn.close()


async def test_three_replicas_deliver_everything_once_and_share_the_rate_limit(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str
) -> None:
    """120 events over six partitions, three replicas: each event arrives once, and the
    endpoint never sees more than its 20/s in any one-second window once the first second's
    burst (20 in all: each replica's bucket holds a third) has gone."""
    topic = await new_topic(kafka_bootstrap, "replicas", PARTITIONS)
    base = service_env(postgres_url, kafka_bootstrap, WEBHOOKS_KAFKA_TOPICS=topic)
    secret = new_endpoint_secret()
    async with Receiver(secret) as receiver:
        box = SecretBox.from_setting(base["WEBHOOKS_ENCRYPTION_KEY"])
        async with open_store(postgres_url, secret_box=box) as store:
            await store.migrate()
            await store.put_organization(Organization(id=ORG))
            endpoint = Endpoint(
                id="ep_limited", organization_id=ORG, url=receiver.url, rate_limit=RATE
            )
            await store.create_endpoint(endpoint, secret, now=datetime.now(UTC))
        with ExitStack() as processes:
            started = await start_replicas(processes, base, tmp_path)
            assert await _live_replicas(postgres_url) == REPLICAS
            await asyncio.sleep(6.0)  # one heartbeat each after the last joined: all count 3

            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                published = []
                for n in range(EVENTS):
                    event_id, body = envelope(ORG)
                    published.append(event_id)
                    await producer.send(topic, body, key=f"k{n}".encode())
                await producer.flush()
            finally:
                await producer.stop()

            assert await receiver.wait_until(lambda r: len(r.delivered()) == EVENTS, 90)
            for process in started:
                assert process.poll() is None

    assert receiver.ids() == dict.fromkeys(published, 1)  # once each, across the replicas
    times = [r.at for r in receiver.received]
    first = min(times)
    assert busiest_window(times) <= 2 * RATE  # the burst: a third of 20 per replica, + 20/s
    # Steady state: 20/s shared, plus one token of bucket granularity per replica.
    assert busiest_window(times, after=first + 1.0) <= RATE + REPLICAS
    print(
        f"busiest_second={busiest_window(times, after=first + 1.0)} first={busiest_window(times)}"
    )
    logs = "".join((tmp_path / f"replica-{n}.log").read_text() for n in range(REPLICAS))
    assert "Traceback" not in logs
    assert '"replicas": 3' in logs or '"replicas":3' in logs


@dataclass
class Timed:
    """A receiver behaviour that holds each request `hold` seconds and records when each
    attempt (webhook-id) started and ended, to find overlapping attempts."""

    hold: float
    spans: list[tuple[str, float, float]] = field(default_factory=list)

    async def __call__(self, n: int, request: web.Request) -> web.StreamResponse:
        start = time.monotonic()
        await asyncio.sleep(self.hold)
        self.spans.append((request.headers.get("webhook-id", ""), start, time.monotonic()))
        return web.Response(status=200, text="ok")


def overlaps(spans: list[tuple[str, float, float]]) -> int:
    """Attempts of one webhook-id that ran at the same time as an earlier one."""
    found = 0
    by_id: dict[str, list[tuple[float, float]]] = {}
    for webhook_id, start, end in spans:
        by_id.setdefault(webhook_id, []).append((start, end))
    for runs in by_id.values():
        runs.sort()
        found += sum(1 for (_, end), (start, _) in itertools.pairwise(runs) if start < end)
    return found


async def _busiest_holder(database_url: str) -> str:
    """The replica holding the most pending leases now (waiting, briefly, for one to)."""
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(100):
            owner = await conn.fetchval(
                "SELECT lease_owner FROM deliveries WHERE status = 'pending' "
                "AND lease_owner IS NOT NULL GROUP BY lease_owner ORDER BY count(*) DESC LIMIT 1"
            )
            if owner is not None:
                return str(owner)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("no replica held a lease mid-burst")


async def _leased_by(database_url: str, owner: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id FROM deliveries WHERE status = 'pending' AND lease_owner = $1", owner
        )
        return {row[0] for row in rows}
    finally:
        await conn.close()


@pytest.mark.timeout(300)
async def test_a_replica_killed_mid_burst_loses_nothing_and_attempts_never_overlap(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str
) -> None:
    """Three replicas, a short lease (4 s), two endpoints (one slow, one at rateLimit 20).
    Mid-burst the replica holding the most leases is SIGKILLed; more events follow. Every
    (event, endpoint) pair arrives; no duplicate before the kill; the rows it held are
    delivered by the others; no two attempts of one delivery overlap; the limited endpoint
    stays at its rate."""
    topic = await new_topic(kafka_bootstrap, "replicas", PARTITIONS)
    base = service_env(
        postgres_url,
        kafka_bootstrap,
        WEBHOOKS_KAFKA_TOPICS=topic,
        WEBHOOKS_LEASE="4s",
        WEBHOOKS_DELIVERY_TIMEOUT="3s",
    )
    plain_secret, limited_secret = new_endpoint_secret(), new_endpoint_secret()
    timed = Timed(hold=0.05)
    async with Receiver(plain_secret, timed) as plain, Receiver(limited_secret) as limited:
        box = SecretBox.from_setting(base["WEBHOOKS_ENCRYPTION_KEY"])
        async with open_store(postgres_url, secret_box=box) as store:
            await store.migrate()
            await store.put_organization(Organization(id=ORG))
            now = datetime.now(UTC)
            await store.create_endpoint(
                Endpoint(id="ep_plain", organization_id=ORG, url=plain.url), plain_secret, now=now
            )
            await store.create_endpoint(
                Endpoint(id="ep_limited", organization_id=ORG, url=limited.url, rate_limit=RATE),
                limited_secret,
                now=now,
            )
        with ExitStack() as processes:
            started = await start_replicas(processes, base, tmp_path)
            await asyncio.sleep(6.0)  # every replica has counted the three

            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            published: list[str] = []

            async def publish(count: int) -> None:
                for _ in range(count):
                    event_id, body = envelope(ORG)
                    published.append(event_id)
                    await producer.send(topic, body, key=f"k{len(published)}".encode())
                await producer.flush()

            try:
                await publish(150)
                assert await limited.wait_until(lambda r: len(r.delivered()) >= 40, 60)
                victim = await _busiest_holder(postgres_url)
                started[int(victim.rsplit("-", 1)[1])].kill()  # SIGKILL: its leases stay
                killed_at = time.monotonic()
                held = await _leased_by(postgres_url, victim)
                await publish(60)  # its partitions must go to the others
            finally:
                await producer.stop()
            everything = set(published)
            arrived = await plain.wait_until(lambda r: r.delivered() >= everything, 100)
            arrived = arrived and await limited.wait_until(
                lambda r: r.delivered() >= everything, 100
            )
            assert arrived, (len(plain.delivered()), len(limited.delivered()), len(everything))

    assert plain.delivered() == everything
    assert limited.delivered() == everything
    assert all(r.verified for r in plain.received + limited.received)
    for hook in (plain, limited):  # no duplicate in steady state (webhook-id per endpoint)
        before_kill = [r.webhook_id for r in hook.received if r.at < killed_at]
        assert len(before_kill) == len(set(before_kill))
    assert held, f"{victim} held no lease when it was killed"
    async with open_store(postgres_url, secret_box=box) as store:
        for delivery_id in held:
            record = await store.get_delivery(delivery_id)
            assert record is not None
            assert record.status is DeliveryStatus.SUCCEEDED  # taken over by another replica
    assert overlaps(timed.spans) == 0
    times = [r.at for r in limited.received]
    assert busiest_window(times, after=min(times) + 1.0) <= RATE + REPLICAS
    duplicates = len(plain.received + limited.received) - 2 * len(everything)
    print(
        f"pairs={2 * len(everything)} overlaps=0 held_at_kill={len(held)} "
        f"duplicates_after_kill={duplicates} "
        f"busiest_second={busiest_window(times, after=min(times) + 1.0)}"
    )
