"""Verifying webhook receivers on 127.0.0.1, for the demo, the benchmarks and the tests.

Each `Receiver` is a real aiohttp server that checks every request with the partner
verifier (`layers_webhooks`), records what arrived, and answers as its `Behaviour` says:
healthy, failing, flaky, slow, black-holed, redirecting, throttling, gone. So every
delivery it sees also proves that signer and verifier agree.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web
from layers_webhooks import Webhook, WebhookVerificationError

# A behaviour gets the request number (1-based, per receiver) and answers.
Behaviour = Callable[[int, web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Received:
    webhook_id: str
    timestamp: str
    body: bytes
    verified: bool
    error: str | None
    at: float  # monotonic receipt time
    status: int  # what the receiver answered (0 when it never answered)


async def _ok(n: int, request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, text="ok")


def healthy() -> Behaviour:
    return _ok


def status(code: int, *, headers: dict[str, str] | None = None, body: str = "") -> Behaviour:
    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, headers=headers, text=body or f"status {code}")

    return answer


def fail_first(count: int, code: int = 500) -> Behaviour:
    """Fail the first `count` requests with `code`, then succeed."""

    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        return web.Response(status=code if n <= count else 200)

    return answer


def flaky(failure_rate: float, *, seed: int = 7, recover_after: int | None = None) -> Behaviour:
    """Fail a fraction of requests (503) at random; always succeed after `recover_after`."""
    rng = random.Random(seed)  # noqa: S311 - test traffic, not cryptography

    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        recovered = recover_after is not None and n > recover_after
        if not recovered and rng.random() < failure_rate:
            return web.Response(status=503, text="flaky")
        return web.Response(status=200)

    return answer


def slow(seconds: float) -> Behaviour:
    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=200)

    return answer


def blackhole(hold: float = 3600.0) -> Behaviour:
    """Accept the request and never answer (until `hold` seconds pass)."""

    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(hold)
        return web.Response(status=200)

    return answer


def redirect(location: str, code: int = 302) -> Behaviour:
    return status(code, headers={"Location": location})


@dataclass
class Receiver:
    """One endpoint's server. Use as `async with Receiver(secret) as r: r.url`."""

    secret: str | Sequence[str]
    behaviour: Behaviour = field(default_factory=healthy)
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _count: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        secrets = [self.secret] if isinstance(self.secret, str) else list(self.secret)
        self._webhook = Webhook(secrets)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}/hook"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._count += 1
        n = self._count
        body = await request.read()
        error: str | None = None
        try:
            self._webhook.verify(body, request.headers)
        except WebhookVerificationError as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = dict(
            webhook_id=request.headers.get("webhook-id", ""),
            timestamp=request.headers.get("webhook-timestamp", ""),
            body=body,
            verified=error is None,
            error=error,
            at=time.monotonic(),
        )
        if error is not None:
            self._store(Received(**record, status=401))  # type: ignore[arg-type]
            return web.Response(status=401, text=error)
        try:
            response = await self.behaviour(n, request)
        except asyncio.CancelledError:
            self._store(Received(**record, status=0))  # type: ignore[arg-type]
            raise
        self._store(Received(**record, status=response.status))  # type: ignore[arg-type]
        return response

    def _store(self, received: Received) -> None:
        self.received.append(received)
        self._changed.set()

    # -- what arrived -------------------------------------------------------------------

    @property
    def arrived(self) -> int:
        """Requests that reached the handler, answered or not (a black hole's included)."""
        return self._count

    def ids(self) -> Counter[str]:
        """How many requests arrived per webhook-id."""
        return Counter(r.webhook_id for r in self.received)

    def delivered(self) -> set[str]:
        """Webhook ids this receiver accepted with a 2xx."""
        return {r.webhook_id for r in self.received if 200 <= r.status < 300}

    async def wait_until(self, condition: Callable[[Receiver], bool], within: float) -> bool:
        """Wait (bounded) until `condition(self)` holds; return whether it did."""
        deadline = time.monotonic() + within
        while not condition(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                continue
        return True

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
