"""Health, readiness and metrics of a running service, through its real HTTP port."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools import receivers
from devtools.receivers import Receiver
from dispatcher.store.secretbox import new_endpoint_secret
from tests.e2e.harness import Stack, envelope
from tests.e2e.test_pipeline import WAIT, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_health_and_readiness_answer(stack: Stack) -> None:
    """/healthz is 200 and /readyz reports the store and Kafka as ok."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.running.url}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{stack.running.url}/readyz") as response:
            assert response.status == 200
            assert await response.json() == {
                "status": "ready",
                "checks": {"store": "ok", "kafka": "ok"},
            }


async def test_metrics_count_consumption_dead_letters_and_attempt_outcomes(stack: Stack) -> None:
    """After one good event to a 500-then-200 endpoint and one bad record, the counters say so."""
    org = await stack.org("org_metrics")
    secret = new_endpoint_secret()
    async with Receiver(secret, receivers.fail_first(1)) as receiver:
        await stack.endpoint(org, receiver.url, secret=secret)
        event_id, body = envelope(org)
        await stack.publish(b"{not json", key=org)
        await stack.publish(body, key=org)
        assert await receiver.wait_until(lambda r: event_id in r.delivered(), WAIT)

        async def recorded() -> bool:
            samples = await scrape(stack.running.url)
            return (
                samples.get(("webhooks_deliveries_finished_total", (("status", "succeeded"),)), 0)
                == 1
            )

        assert await eventually(recorded)
        samples = await scrape(stack.running.url)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("webhooks_events_consumed_total", topic=stack.topic) == 2
    assert value("webhooks_dead_letters_total", reason="malformed_json") == 1
    assert value("webhooks_deliveries_created_total", status="pending") == 1
    assert value("webhooks_attempts_total", outcome="http_status") == 1
    assert value("webhooks_attempts_total", outcome="success") == 1
    assert value("webhooks_retries_scheduled_total") == 1
    assert value("webhooks_attempt_seconds_count") == 2
    assert not any(secret in str(key) for key in samples)
