"""A running service on a real broker and a real store, for end-to-end tests."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dispatcher.clock import new_id
from dispatcher.core.catalog import Catalog
from dispatcher.core.models import Endpoint, EndpointScope, Organization
from dispatcher.service import Running, Service
from dispatcher.settings import Settings
from dispatcher.store.secretbox import new_endpoint_secret

# A compressed ladder: 8 attempts within a couple of seconds.
FAST_LADDER = "100ms,100ms,100ms,100ms,100ms,100ms,100ms"


async def new_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    """A fresh topic of `partitions` partitions, named `prefix-<random>`."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()
    return topic


def service_env(database_url: str, bootstrap: str, **env: str) -> dict[str, str]:
    """`WEBHOOKS_*` variables for a test service: fresh topic and group, compressed ladder."""
    base = {
        "WEBHOOKS_DATABASE_URL": database_url,
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEBHOOKS_KAFKA_TOPICS": f"events-{uuid.uuid4().hex[:10]}",
        "WEBHOOKS_KAFKA_GROUP": f"group-{uuid.uuid4().hex[:10]}",
        "WEBHOOKS_KAFKA_SESSION_TIMEOUT": "6s",
        "WEBHOOKS_RETRY_SCHEDULE": FAST_LADDER,
        "WEBHOOKS_RETRY_JITTER": "0",
        "WEBHOOKS_DELIVERY_TIMEOUT": "3s",
        "WEBHOOKS_LEASE": "10s",
        "WEBHOOKS_POLL_INTERVAL": "100ms",
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
        "WEBHOOKS_HTTP_PORT": "0",
        "WEBHOOKS_SHUTDOWN_TIMEOUT": "5s",
        # One process per `serve`: a test of several runs them on purpose (test_workers).
        "WEBHOOKS_WORKERS": "1",
        "WEBHOOKS_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    base.update(env)
    return base


def stack_settings(database_url: str, bootstrap: str, **env: str) -> Settings:
    return Settings.from_env(service_env(database_url, bootstrap, **env))


@functools.cache
def catalog() -> Catalog:
    return Catalog.load()


def envelope(
    org: str,
    event_type: str = "content.generated",
    data: Mapping[str, Any] | None = None,
    *,
    event_id: str | None = None,
) -> tuple[str, bytes]:
    """A valid envelope of `event_type` for `org`: the catalog's first example, overridden."""
    event_id = event_id or new_id("evt")
    example = dict(catalog().examples(event_type)[0])
    body = {
        "id": event_id,
        "type": event_type,
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "data": {**example, **(data or {}), "organizationId": org},
    }
    return event_id, orjson.dumps(body)


@dataclass
class Stack:
    service: Service
    running: Running
    producer: AIOKafkaProducer
    topic: str

    async def publish(self, value: bytes | None, *, key: str = "org") -> None:
        await self.producer.send_and_wait(self.topic, value, key=key.encode())

    async def org(self, org_id: str, parent: str | None = None) -> str:
        await self.running.store.put_organization(Organization(id=org_id, parent_id=parent))
        self.running.directory.invalidate()
        await self.running.directory.refresh()
        return org_id

    async def endpoint(
        self,
        org: str,
        url: str,
        *,
        scope: EndpointScope = EndpointScope.OWN,
        event_types: frozenset[str] | None = None,
        secret: str | None = None,
    ) -> tuple[Endpoint, str]:
        secret = secret or new_endpoint_secret()
        endpoint = Endpoint(
            id=new_id("ep"), organization_id=org, url=url, scope=scope, event_types=event_types
        )
        await self.running.store.create_endpoint(endpoint, secret, now=datetime.now(UTC))
        await self.running.directory.refresh()
        return endpoint, secret


@asynccontextmanager
async def running_stack(settings: Settings) -> AsyncIterator[Stack]:
    service = Service(settings)
    task = asyncio.create_task(service.run(install_signal_handlers=False))
    started = asyncio.create_task(service.started.wait())
    done, _ = await asyncio.wait({task, started}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the start-up error
    if started not in done:
        task.cancel()
        raise RuntimeError("the service did not start within 60 s")
    assert service.running is not None
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False
    )
    await producer.start()
    try:
        yield Stack(
            service=service,
            running=service.running,
            producer=producer,
            topic=settings.kafka_topics[0],
        )
    finally:
        await producer.stop()
        service.stop()
        await asyncio.wait_for(task, 30)
