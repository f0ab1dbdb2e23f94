"""Kafka → signed deliveries, end to end: real broker, real store, real receivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from devtools import receivers
from devtools.receivers import Behaviour, Receiver
from dispatcher.core.models import DeliveryStatus, EndpointScope, EndpointStatus
from dispatcher.store.secretbox import new_endpoint_secret
from tests.e2e.harness import Stack, envelope

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WAIT = 30.0  # seconds: a generous bound for things to arrive, not a speed assertion


@asynccontextmanager
async def hook(
    stack: Stack,
    org: str,
    behaviour: Behaviour | None = None,
    *,
    scope: EndpointScope = EndpointScope.OWN,
    event_types: frozenset[str] | None = None,
) -> AsyncIterator[tuple[Receiver, str]]:
    """A verifying receiver registered as an endpoint of `org`; yields it and the endpoint id."""
    secret = new_endpoint_secret()
    async with Receiver(secret, behaviour or receivers.healthy()) as receiver:
        endpoint, _ = await stack.endpoint(
            org, receiver.url, scope=scope, event_types=event_types, secret=secret
        )
        yield receiver, endpoint.id


async def test_events_reach_every_matching_endpoint_exactly_once(stack: Stack) -> None:
    """Each event arrives once, verified, at every subscribed endpoint and nowhere else."""
    org = await stack.org("org_acme")
    other = await stack.org("org_other")
    async with (
        hook(stack, org) as (first, _),
        hook(stack, org) as (second, _),
        hook(stack, org, event_types=frozenset({"ads.write.executed"})) as (filtered, _),
        hook(stack, other) as (unrelated, _),
    ):
        ids = []
        for _ in range(20):
            event_id, body = envelope(org)
            ids.append(event_id)
            await stack.publish(body, key=org)
        for receiver in (first, second):
            assert await receiver.wait_until(lambda r: len(r.delivered()) == 20, WAIT)
        for receiver in (first, second):
            assert receiver.ids() == dict.fromkeys(ids, 1)
            assert all(r.verified for r in receiver.received)
        assert filtered.received == []
        assert unrelated.received == []


async def test_the_parent_firehose_gets_direct_children_only(stack: Stack) -> None:
    """A parent's firehose gets its own and its children's events, not grandchildren's."""
    parent = await stack.org("org_parent")
    child = await stack.org("org_child", parent=parent)
    grandchild = await stack.org("org_grandchild", parent=child)
    async with hook(stack, parent, scope=EndpointScope.ALL_CHILDREN) as (firehose, _):
        expected, ignored = [], ""
        for org in (parent, child, grandchild):
            event_id, body = envelope(org)
            await stack.publish(body, key=org)
            if org == grandchild:
                ignored = event_id
            else:
                expected.append(event_id)
        assert await firehose.wait_until(lambda r: len(r.delivered()) == 2, WAIT)

        async def grandchild_event_stored() -> bool:
            return await stack.running.store.get_event(ignored) is not None

        assert await eventually(grandchild_event_stored)
        stored = await stack.running.store.get_event(ignored)
        assert stored is not None
        assert stored.delivery_count == 0
        assert firehose.ids() == dict.fromkeys(expected, 1)


async def test_a_republished_event_is_not_delivered_twice(stack: Stack) -> None:
    """The same event id published three times is delivered once (dedupe by event id)."""
    org = await stack.org("org_dupes")
    async with hook(stack, org) as (receiver, _):
        event_id, body = envelope(org)
        for _ in range(3):
            await stack.publish(body, key=org)
        marker, marker_body = envelope(org)
        await stack.publish(marker_body, key=org)
        # Same key, same partition: once the marker was delivered the duplicates before it
        # were consumed too. Deliveries are unordered, so wait for both ids.
        assert await receiver.wait_until(lambda r: {event_id, marker} <= r.delivered(), WAIT)
        assert receiver.ids() == {event_id: 1, marker: 1}


async def test_a_failing_then_healthy_endpoint_succeeds_on_retry_with_the_same_webhook_id(
    stack: Stack,
) -> None:
    """500 then 200: the retry carries the same webhook-id, a fresh signature, and succeeds."""
    org = await stack.org("org_retry")
    async with hook(stack, org, receivers.fail_first(1)) as (receiver, endpoint_id):
        event_id, body = envelope(org)
        await stack.publish(body, key=org)
        assert await receiver.wait_until(lambda r: event_id in r.delivered(), WAIT)
        assert [(r.webhook_id, r.status) for r in receiver.received] == [
            (event_id, 500),
            (event_id, 200),
        ]
        assert all(r.verified for r in receiver.received)
        assert await settled(stack, endpoint_id, DeliveryStatus.SUCCEEDED)


async def test_an_always_failing_endpoint_fails_after_exactly_eight_attempts(
    stack: Stack,
) -> None:
    """On the compressed 8-step ladder a permanently failing endpoint gets exactly 8 attempts."""
    org = await stack.org("org_failing")
    async with hook(stack, org, receivers.status(500)) as (receiver, endpoint_id):
        event_id, body = envelope(org)
        await stack.publish(body, key=org)
        assert await receiver.wait_until(lambda r: len(r.received) >= 8, WAIT)
        store = stack.running.store
        assert await settled(stack, endpoint_id, DeliveryStatus.FAILED)
        [delivery] = await store.list_deliveries(endpoint_id)
        attempts = await store.list_attempts(delivery.id)
        assert len(attempts) == 8
        assert receiver.ids() == {event_id: 8}


async def test_410_gone_disables_the_endpoint(stack: Stack) -> None:
    """A 410 answer fails the delivery at once and disables the endpoint with reason gone."""
    org = await stack.org("org_gone")
    async with hook(stack, org, receivers.status(410)) as (receiver, endpoint_id):
        event_id, body = envelope(org)
        await stack.publish(body, key=org)
        store = stack.running.store

        async def disabled() -> bool:
            endpoint = await store.get_endpoint(endpoint_id)
            return endpoint is not None and endpoint.status is EndpointStatus.DISABLED

        assert await eventually(disabled)
        endpoint = await store.get_endpoint(endpoint_id)
        assert endpoint is not None
        assert endpoint.disabled_reason == "gone"
        assert receiver.ids() == {event_id: 1}


async def test_retry_after_is_respected(stack: Stack) -> None:
    """429 + Retry-After: 1 on a 100 ms ladder step waits the clamp maximum, 200 ms."""
    org = await stack.org("org_throttled")
    async with hook(stack, org, _sequence(receivers.status(429, headers={"Retry-After": "1"}))) as (
        receiver,
        _,
    ):
        event_id, body = envelope(org)
        await stack.publish(body, key=org)
        assert await receiver.wait_until(lambda r: event_id in r.delivered(), WAIT)
        first, second = receiver.received[0], receiver.received[1]
        assert second.at - first.at >= 0.19


async def test_redirects_are_not_followed(stack: Stack) -> None:
    """A 302 is a failure; the Location target never receives anything."""
    org = await stack.org("org_redirect")
    target = Receiver(new_endpoint_secret())
    async with target, hook(stack, org, receivers.redirect(target.url)) as (receiver, _):
        _, body = envelope(org)
        await stack.publish(body, key=org)
        assert await receiver.wait_until(lambda r: len(r.received) >= 2, WAIT)
        assert [r.status for r in receiver.received[:2]] == [302, 302]
        assert target.received == []


async def test_a_black_holed_endpoint_does_not_slow_healthy_ones(stack: Stack) -> None:
    """A healthy endpoint gets all its events while a black-holed one still holds its first
    attempts open (none has even timed out yet)."""
    org = await stack.org("org_isolation")
    async with (
        hook(stack, org, receivers.blackhole()) as (_, hole_id),
        hook(stack, org) as (healthy, _),
    ):
        for _ in range(50):
            _, body = envelope(org)
            await stack.publish(body, key=org)
        assert await healthy.wait_until(lambda r: len(r.delivered()) == 50, WAIT)
        held = await stack.running.store.list_deliveries(hole_id)
        assert len(held) == 50
        assert [d.attempts for d in held] == [0] * 50


def _sequence(first: Behaviour) -> Behaviour:
    """Answer the first request with `first`, then 200."""
    then = receivers.healthy()

    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        return await (first if n == 1 else then)(n, request)

    return answer


async def settled(stack: Stack, endpoint_id: str, status: DeliveryStatus) -> bool:
    """Wait until the endpoint's single delivery is recorded with `status`."""

    async def check() -> bool:
        deliveries = await stack.running.store.list_deliveries(endpoint_id)
        return [d.status for d in deliveries] == [status]

    return await eventually(check)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> bool:
    """Poll `check` until it holds or `within` seconds pass (a bound, not a speed claim)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False
