"""The circuit breaker end to end: an endpoint fails, then recovers (threshold 3, 5 s cooldown).

What a new user saw go wrong, each now a check: parked deliveries said nothing about why
they waited and showed a wrong next-attempt time; after the probe succeeded the rest were
sent a whole (doubled) cooldown later; the half-open gauge stayed up after recovery.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from devtools.receivers import Receiver
from dispatcher.core.models import DeliveryStatus, WaitingReason
from dispatcher.store.secretbox import new_endpoint_secret
from tests.e2e.harness import Stack, envelope, running_stack, stack_settings
from tests.e2e.test_pipeline import WAIT, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ORG = "org_breaker"
COOLDOWN = 5.0


@pytest.fixture
async def stack(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Stack]:
    settings = stack_settings(
        database_url,
        kafka_bootstrap,
        WEBHOOKS_BREAKER_THRESHOLD="3",
        WEBHOOKS_BREAKER_COOLDOWN=f"{COOLDOWN:g}s",
    )
    async with running_stack(settings) as running:
        yield running


async def test_an_endpoint_that_recovers_gets_its_parked_deliveries_at_once(
    stack: Stack, tmp_path: Path
) -> None:
    """Deliveries parked by an open breaker wait as `breaker_open` due at the probe time;
    once the probe succeeds every one of them is sent before another cooldown passes, and
    the breaker gauge shows the breaker closed again."""
    failing = True

    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        return web.Response(status=503 if failing else 200)

    await stack.org(ORG)
    secret = new_endpoint_secret()
    async with Receiver(secret, behaviour=answer) as receiver:
        endpoint, _ = await stack.endpoint(ORG, receiver.url, secret=secret)
        first = [envelope(ORG) for _ in range(3)]
        for _, value in first:
            await stack.publish(value, key=ORG)
        assert await receiver.wait_until(lambda r: len(r.received) >= 3, WAIT)
        opened_at = time.monotonic()

        parked = [envelope(ORG) for _ in range(5)]
        for _, value in parked:
            await stack.publish(value, key=ORG)
        store = stack.running.store

        async def all_parked() -> bool:
            deliveries = [await store.list_event_deliveries(event_id) for event_id, _ in parked]
            return all(
                len(ds) == 1 and ds[0].waiting_reason is WaitingReason.BREAKER_OPEN
                for ds in deliveries
            )

        assert await eventually(all_parked, within=COOLDOWN - 1)
        waiting = [(await store.list_event_deliveries(event_id))[0] for event_id, _ in parked]
        assert {(d.status, d.attempts) for d in waiting} == {(DeliveryStatus.PENDING, 0)}
        # Every parked delivery is due at the one probe time: no earlier, no later.
        dues = [d.next_attempt_at for d in waiting if d.next_attempt_at is not None]
        assert len(dues) == len(waiting)
        assert max(dues) - min(dues) < timedelta(seconds=1)
        assert receiver.ids().keys().isdisjoint({event_id for event_id, _ in parked})

        failing = False
        wanted = {event_id for event_id, _ in first + parked}
        assert await receiver.wait_until(lambda r: wanted <= r.delivered(), 4 * COOLDOWN)
        accepted = [r.at for r in receiver.received if 200 <= r.status < 300]
        # The probe was the first success; everything else followed it within one cooldown
        # (before this fix it waited a doubled cooldown or more).
        assert max(accepted) - min(accepted) < COOLDOWN
        assert min(accepted) >= opened_at

        registry = stack.running.metrics.registry

        def gauge(state: str) -> float | None:
            return registry.get_sample_value("webhooks_breakers", {"state": state})

        async def closed_again() -> bool:
            return gauge("open") == 0 and gauge("half_open") == 0

        assert await eventually(closed_again)

        async def recorded() -> bool:
            final = [(await store.list_event_deliveries(event_id))[0] for event_id, _ in parked]
            return {(d.endpoint_id, d.status, d.waiting_reason) for d in final} == {
                (endpoint.id, DeliveryStatus.SUCCEEDED, None)
            }

        assert await eventually(recorded)
