"""Verify an aiohttp request: ``event = await verify_aiohttp(request, wh)``.

This module imports nothing from aiohttp: it only needs the request's ``headers`` and its
``read()`` coroutine (the raw body, never ``request.json()``, which re-serialises nothing but
may decode differently). Importing it costs nothing for receivers on other frameworks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, Protocol

from .headers import HeaderSource
from .webhook import Webhook

__all__ = ["verify_aiohttp"]


class _Request(Protocol):
    """What `verify_aiohttp` uses of an ``aiohttp.web.Request``."""

    @property
    def headers(self) -> HeaderSource: ...

    def read(self) -> Awaitable[bytes]: ...


async def verify_aiohttp(request: _Request, webhook: Webhook, *, now: float | None = None) -> Any:
    """Read the raw body of `request` and verify it with `webhook`; return the parsed JSON.

    `now` (unix seconds) defaults to the current time. Raises `WebhookVerificationError`
    subclasses; aiohttp's own errors from reading the body (e.g. the request exceeding
    ``client_max_size``) are aiohttp's HTTP exceptions and pass through unchanged.
    """
    body = await request.read()
    return webhook.verify_at(body, request.headers, time.time() if now is None else now)
