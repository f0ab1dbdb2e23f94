"""Crash safety: SIGKILL `webhooks serve` mid-stream, restart it, lose nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from devtools.broker import free_port
from devtools.receivers import Receiver, slow
from dispatcher.clock import new_id
from dispatcher.core.models import Endpoint, Organization
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from tests.e2e.harness import envelope, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 200
ORG = "org_crash"


@contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m dispatcher serve` as a real child process."""
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
            process.kill()
        process.wait(timeout=30)


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            assert process.poll() is None, "the service exited during start-up"
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the service did not become healthy")


@asynccontextmanager
async def receivers(count: int) -> AsyncIterator[list[tuple[Receiver, str]]]:
    secrets = [new_endpoint_secret() for _ in range(count)]
    hooks = [Receiver(secret, slow(0.2)) for secret in secrets]
    for hook in hooks:
        await hook.__aenter__()
    try:
        yield list(zip(hooks, secrets, strict=True))
    finally:
        for hook in hooks:
            await hook.__aexit__(None, None, None)


async def test_sigkill_mid_stream_then_restart_delivers_every_pair_at_least_once(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """After a SIGKILL and a restart every (event, endpoint) pair has arrived at least once,
    verified, and nothing arrived that was not published."""
    port = free_port()
    env = service_env(
        f"sqlite:///{tmp_path / 'crash.db'}",
        kafka_bootstrap,
        WEBHOOKS_HTTP_PORT=str(port),
        WEBHOOKS_LEASE="5s",
        WEBHOOKS_LOG_LEVEL="warning",
    )
    box = SecretBox.from_setting(env["WEBHOOKS_ENCRYPTION_KEY"])
    url = f"http://127.0.0.1:{port}"
    async with receivers(3) as hooks:
        async with open_store(env["WEBHOOKS_DATABASE_URL"], secret_box=box) as store:
            await store.migrate()
            await store.put_organization(Organization(id=ORG))
            for hook, secret in hooks:
                endpoint = Endpoint(id=new_id("ep"), organization_id=ORG, url=hook.url)
                await store.create_endpoint(endpoint, secret, now=datetime.now(UTC))
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        published: set[str] = set()
        try:
            with serve(env, tmp_path / "serve-1.log") as first:
                await wait_healthy(url, first)
                for _ in range(EVENTS):
                    event_id, body = envelope(ORG)
                    published.add(event_id)
                    await producer.send(env["WEBHOOKS_KAFKA_TOPICS"], body, key=ORG.encode())
                await producer.flush()
                # kill it while deliveries are flowing
                hook = hooks[0][0]
                assert await hook.wait_until(lambda r: len(r.received) >= EVENTS // 4, 60)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                assert len(hook.delivered()) < EVENTS  # it really died mid-stream
            with serve(env, tmp_path / "serve-2.log") as second:
                await wait_healthy(url, second)
                for hook, _ in hooks:
                    assert await hook.wait_until(lambda r: r.delivered() >= published, 90), (
                        f"missing {len(published - hook.delivered())} deliveries after restart"
                    )
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=30) == 0
        finally:
            await producer.stop()
    for hook, _ in hooks:
        assert set(hook.ids()) == published  # nothing that was not published
        assert all(r.verified for r in hook.received)
