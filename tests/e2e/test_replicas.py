"""Scale-out, proven with real processes: three `webhooks serve` replicas in one consumer group
against one PostgreSQL, a topic of three partitions, one endpoint with `rateLimit: 20`.

Every event is delivered exactly once between them, and the endpoint's rate limit holds
across the replicas, not per replica.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.broker import free_port
from devtools.receivers import Receiver
from dispatcher.core.models import Endpoint, Organization
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from tests.e2e.harness import envelope, service_env
from tests.e2e.test_crash import wait_healthy

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

REPLICAS = 3
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
    """120 events over three partitions, three replicas: each event arrives once, and the
    endpoint never sees more than its 20/s in any one-second window once the first second's
    burst (20 in all: each replica's bucket holds a third) has gone."""
    topic = f"replicas-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
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
        ports = [free_port() for _ in range(REPLICAS)]
        with ExitStack() as processes:
            started = [
                processes.enter_context(
                    replica(
                        {
                            **base,
                            "WEBHOOKS_HTTP_PORT": str(port),
                            "WEBHOOKS_INSTANCE_ID": f"replica-{n}",
                        },
                        tmp_path / f"replica-{n}.log",
                    )
                )
                for n, port in enumerate(ports)
            ]
            for port, process in zip(ports, started, strict=True):
                await wait_healthy(f"http://127.0.0.1:{port}", process)
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
    logs = "".join((tmp_path / f"replica-{n}.log").read_text() for n in range(REPLICAS))
    assert "Traceback" not in logs
    assert '"replicas": 3' in logs or '"replicas":3' in logs
