"""Infrastructure faults: a store outage pauses ingest, SIGTERM drains in-flight attempts."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from devtools.broker import free_port
from devtools.receivers import Receiver, slow
from dispatcher.clock import new_id
from dispatcher.core.models import DeliveryStatus, Endpoint, Organization
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from tests.conftest import POSTGRES_URL
from tests.e2e.harness import Stack, envelope, running_stack, service_env, stack_settings
from tests.e2e.test_crash import serve, wait_healthy
from tests.e2e.test_pipeline import WAIT

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def set_connections(database: str, *, allowed: bool) -> None:
    """Open or close a database to new connections, and cut the existing ones."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(
            f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'
        )
        if not allowed:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
    finally:
        await admin.close()


def _consumed(registry: CollectorRegistry) -> float:
    """`webhooks_events_consumed_total`, over every topic."""
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "webhooks_events_consumed"
        for sample in metric.samples
        if sample.name == "webhooks_events_consumed_total"
    )


async def _lag_becomes(stack: Stack, wanted: Callable[[float], bool]) -> bool:
    """Whether `webhooks_consumer_lag` satisfies `wanted` within two measurements."""
    registry = stack.running.metrics.registry
    for _ in range(150):
        lag = registry.get_sample_value("webhooks_consumer_lag")
        if lag is not None and wanted(lag):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.postgres
async def test_a_store_outage_pauses_ingest_without_dead_letters_and_loses_nothing(
    postgres_url: str, kafka_bootstrap: str
) -> None:
    """While PostgreSQL refuses connections, events wait in Kafka (no dead letters) and the
    API answers 503; once it is back, every event is delivered exactly once."""
    database = postgres_url.rsplit("/", 1)[1]
    async with running_stack(stack_settings(postgres_url, kafka_bootstrap)) as stack:
        org = await stack.org("org_outage")
        secret = new_endpoint_secret()
        async with Receiver(secret) as receiver:
            await stack.endpoint(org, receiver.url, secret=secret)
            await set_connections(database, allowed=False)
            try:
                published = []
                for _ in range(10):
                    event_id, body = envelope(org)
                    published.append(event_id)
                    await stack.publish(body, key=org)
                # the consumer is retrying the batch: nothing arrives while the store is down
                assert not await receiver.wait_until(lambda r: len(r.received) > 0, 3.0)
                # ...and the lag gauge says so while it waits (the stall starts at lag 0): both
                # halves of WebhooksConsumerStalled hold — lag > 0 and nothing consumed — so
                # the alert fires once they have held for its 10 minutes.
                assert await _lag_becomes(stack, lambda lag: lag == 10)
                registry = stack.running.metrics.registry
                consumed = _consumed(registry)
                assert consumed > 0  # the stuck batch was fetched, then nothing more
                await asyncio.sleep(2.0)
                assert _consumed(registry) == consumed
                assert await _lag_becomes(stack, lambda lag: lag == 10)
                # the API says "unavailable, come back later", not "internal error"
                key = "lwk_" + "A" * 43
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(
                        f"{stack.running.url}/v1/whoami",
                        headers={"Authorization": f"Bearer {key}"},
                    ) as response,
                ):
                    body = await response.json()
                    assert response.status == 503
                    assert body["error"]["code"] == "UNAVAILABLE"
                    assert response.headers["Retry-After"] == "5"
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"{stack.running.url}/readyz") as response,
                ):
                    assert response.status == 503
            finally:
                await set_connections(database, allowed=True)
            assert await receiver.wait_until(lambda r: len(r.delivered()) == 10, WAIT)
            assert receiver.ids() == dict.fromkeys(published, 1)
            assert await _lag_becomes(stack, lambda lag: lag == 0)
            assert await stack.running.store.list_dead_letters() == []
            registry = stack.running.metrics.registry
            errors = registry.get_sample_value(
                "webhooks_store_errors_total", {"operation": "ingest"}
            )
            assert errors is not None
            assert errors >= 1


async def test_sigterm_drains_in_flight_attempts_and_exits_cleanly(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """SIGTERM while attempts are in flight: they finish, are recorded succeeded, exit 0."""
    port = free_port()
    env = service_env(
        f"sqlite:///{tmp_path / 'drain.db'}", kafka_bootstrap, WEBHOOKS_HTTP_PORT=str(port)
    )
    box = SecretBox.from_setting(env["WEBHOOKS_ENCRYPTION_KEY"])
    secret = new_endpoint_secret()
    async with Receiver(secret, slow(1.5)) as receiver:
        async with open_store(env["WEBHOOKS_DATABASE_URL"], secret_box=box) as store:
            await store.migrate()
            await store.put_organization(Organization(id="org_drain"))
            endpoint = Endpoint(id=new_id("ep"), organization_id="org_drain", url=receiver.url)
            await store.create_endpoint(endpoint, secret, now=datetime.now(UTC))
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            with serve(env, tmp_path / "serve.log") as process:
                await wait_healthy(f"http://127.0.0.1:{port}", process)
                for _ in range(5):
                    _, body = envelope("org_drain")
                    await producer.send_and_wait(
                        env["WEBHOOKS_KAFKA_TOPICS"], body, key=b"org_drain"
                    )
                assert await receiver.wait_until(lambda r: r.arrived == 5, WAIT)
                assert receiver.received == []  # all five are still in flight
                process.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(process.wait, 30)
        finally:
            await producer.stop()
        assert code == 0
        assert [r.status for r in receiver.received] == [200] * 5
    async with open_store(env["WEBHOOKS_DATABASE_URL"], secret_box=box) as store:
        deliveries = await store.list_deliveries(endpoint.id)
    assert [d.status for d in deliveries] == [DeliveryStatus.SUCCEEDED] * 5
