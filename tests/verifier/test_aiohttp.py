"""verify_aiohttp against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from layers_webhooks import Webhook, WebhookVerificationError
from layers_webhooks.aiohttp import verify_aiohttp

from .material import BODY, NEW_SECRET, NOW, signed

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def receiver(webhook: Webhook, now: float | None) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        try:
            event = await verify_aiohttp(request, webhook, now=now)
        except WebhookVerificationError as error:
            return web.json_response({"error": type(error).__name__}, status=400)
        return web.json_response({"type": event["type"]})

    app = web.Application()
    app.router.add_post("/hook", handle)
    return app


async def test_a_signed_request_is_verified_from_its_raw_body(
    aiohttp_client: ClientFactory,
) -> None:
    """The helper reads the raw body and returns the parsed event."""
    client = await aiohttp_client(receiver(Webhook(NEW_SECRET), now=NOW))
    response = await client.post("/hook", data=BODY, headers=signed())
    assert response.status == 200
    assert await response.json() == {"type": "content.generated"}


async def test_a_tampered_request_raises_a_verification_error(
    aiohttp_client: ClientFactory,
) -> None:
    """A body changed in transit fails with NoMatchingSignatureError, not a crash."""
    client = await aiohttp_client(receiver(Webhook(NEW_SECRET), now=NOW))
    response = await client.post("/hook", data=BODY + b" ", headers=signed())
    assert response.status == 400
    assert await response.json() == {"error": "NoMatchingSignatureError"}


async def test_the_current_time_is_the_default(aiohttp_client: ClientFactory) -> None:
    """Without `now`, the real clock applies: a fresh request passes, an old one does not."""
    client = await aiohttp_client(receiver(Webhook(NEW_SECRET), now=None))
    fresh = await client.post("/hook", data=BODY, headers=signed(timestamp=int(time.time())))
    stale = await client.post("/hook", data=BODY, headers=signed(timestamp=NOW))
    assert (fresh.status, stale.status) == (200, 400)
    assert await stale.json() == {"error": "TimestampTooOldError"}
