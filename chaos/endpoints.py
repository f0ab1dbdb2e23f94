"""Verifying receivers and the endpoint fault zoo, as aiohttp handlers on 127.0.0.1.

One `ReceiverHub` (one aiohttp server) serves every endpoint of a scenario at
`/hook/<name>`. Each request is verified with the partner verifier (`layers_webhooks`)
against that endpoint's secret, answered as its `Behaviour` says, and recorded as an
`Arrival` in the hub's `Journal`: in memory (what the ledger checks) and appended to a
JSON-lines file (the evidence kept with a failed run).

A behaviour gets the `Call` (the request, and how many times this webhook-id has arrived
at this endpoint) and answers. What a behaviour *meant* to answer is recorded, so the zoo's
tricks stay visible in the log: a drip that meant 200 but never finished, a reset that
answered nothing (0). Handlers are cancelled when the client goes away (aiohttp's
`handler_cancellation`), and such an arrival is recorded as answered with nothing (0): the
client gave up (a timeout) or was stopped (a shutdown that cut an attempt off).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from aiohttp import web
from layers_webhooks import Webhook, WebhookVerificationError

NO_ANSWER = 0  # recorded status when the receiver never answered (reset, black hole)
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """One request as the receiver saw it."""

    endpoint: str
    webhook_id: str
    timestamp: str
    body: bytes
    verified: bool
    error: str | None
    answer: int  # the status the behaviour answered (NO_ANSWER: none)
    at: float  # monotonic time of arrival

    @property
    def accepted(self) -> bool:
        """Verified and answered 2xx: the receiver took the event."""
        return self.verified and 200 <= self.answer < 300

    def as_json(self) -> str:
        return json.dumps(
            {
                "endpoint": self.endpoint,
                "webhook_id": self.webhook_id,
                "timestamp": self.timestamp,
                "body_b64": base64.b64encode(self.body).decode(),
                "verified": self.verified,
                "error": self.error,
                "answer": self.answer,
                "at": round(self.at, 4),
            }
        )


@dataclass(slots=True)
class Call:
    request: web.Request
    nth: int  # 1 for the first arrival of this webhook-id at this endpoint
    sent: int = NO_ANSWER  # the status line already on the wire (a streamed answer)


@dataclass(slots=True)
class Answered:
    """What a behaviour did: the response to return (None: the transport is gone)."""

    status: int
    response: web.StreamResponse | None


Behaviour = Callable[[Call], Awaitable[Answered]]


# -- the zoo ------------------------------------------------------------------------------


def accept(delay: float = 0.0) -> Behaviour:
    """Answer 200 after `delay` seconds."""

    async def answer(call: Call) -> Answered:
        if delay:
            await asyncio.sleep(delay)
        return Answered(200, web.Response(text="ok"))

    return answer


def flaky(rate: float, rng: random.Random, *, at_most: int = 3) -> Behaviour:
    """Answer 503 to a `rate` fraction of requests (drawn from `rng`), 200 to the rest — and
    always 200 after `at_most` arrivals of an id, so every event is accepted well within the
    8-attempt ladder (a pure coin would fail a delivery 8 times in a row once in 15,000)."""

    async def answer(call: Call) -> Answered:
        if call.nth <= at_most and rng.random() < rate:
            return Answered(503, web.Response(status=503, text="flaky"))
        return Answered(200, web.Response(text="ok"))

    return answer


def status_first(count: int, code: int, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer `code` (with `headers`) to the first `count` arrivals of each id, then 200."""

    async def answer(call: Call) -> Answered:
        if call.nth <= count:
            return Answered(code, web.Response(status=code, headers=headers, text=f"{code}"))
        return Answered(200, web.Response(text="ok"))

    return answer


def always(code: int, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer `code` to every request (410 Gone, a 302 redirect, …)."""
    return status_first(1 << 30, code, headers)


def blackhole(hold: float = 120.0) -> Behaviour:
    """Read the request and never answer (cancelled when the client goes away; at most
    `hold` seconds, then the connection is dropped)."""

    async def answer(call: Call) -> Answered:
        await asyncio.sleep(hold)
        _abort(call.request, reset=False)
        return Answered(NO_ANSWER, None)

    return answer


def drip(size: int, interval: float) -> Behaviour:
    """Answer 200 with a `size`-byte body written one byte every `interval` seconds."""

    async def answer(call: Call) -> Answered:
        response = web.StreamResponse(status=200)
        response.content_length = size
        try:
            await response.prepare(call.request)
            call.sent = 200
            for _ in range(size):
                await response.write(b".")
                await asyncio.sleep(interval)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            return Answered(200, None)
        return Answered(200, response)

    return answer


def huge(size: int) -> Behaviour:
    """Answer 200 with a `size`-byte body (tens of MB), written as fast as it is read."""

    async def answer(call: Call) -> Answered:
        response = web.StreamResponse(status=200)
        response.content_length = size
        chunk = b"x" * _CHUNK
        try:
            await response.prepare(call.request)
            call.sent = 200
            left = size
            while left > 0:
                await response.write(chunk[: min(left, _CHUNK)])
                left -= _CHUNK
            if left <= 0:
                await response.write_eof()
        except (ConnectionError, RuntimeError):
            return Answered(200, None)
        return Answered(200, response if left <= 0 else None)

    return answer


def reset_first(count: int) -> Behaviour:
    """Reset the connection (TCP RST, no answer) for the first `count` arrivals of each id,
    then answer 200."""

    async def answer(call: Call) -> Answered:
        if call.nth <= count:
            _abort(call.request, reset=True)
            return Answered(NO_ANSWER, None)
        return Answered(200, web.Response(text="ok"))

    return answer


def _abort(request: web.Request, *, reset: bool) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


# -- the journal and the hub ------------------------------------------------------------


@dataclass
class Journal:
    """Every arrival at a hub, in memory and appended to a JSON-lines file."""

    path: Path | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    _file: IO[str] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def open(self) -> None:
        if self.path is not None:
            self._file = self.path.open("a", encoding="utf-8", buffering=1)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def record(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)
        if self._file is not None:
            self._file.write(arrival.as_json() + "\n")
        self._changed.set()

    def at(self, endpoint: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.endpoint == endpoint]

    def accepted_ids(self, endpoint: str) -> set[str]:
        return {a.webhook_id for a in self.arrivals if a.endpoint == endpoint and a.accepted}

    async def wait_until(self, condition: Callable[[], bool], within: float) -> bool:
        """Wait (bounded by `within` seconds) until `condition()` holds; return whether it did."""
        deadline = time.monotonic() + within
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                continue
        return True


@dataclass
class _Route:
    name: str
    webhook: Webhook
    behaviour: Behaviour
    seen: Counter[str] = field(default_factory=Counter)


class ReceiverHub:
    """One aiohttp server for a scenario's endpoints: `async with ReceiverHub(journal) as hub`."""

    def __init__(self, journal: Journal, host: str = "127.0.0.1") -> None:
        self.journal = journal
        self.host = host
        self._routes: dict[str, _Route] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0

    def add(self, name: str, secret: str, behaviour: Behaviour) -> str:
        """Serve endpoint `name` (verifying with `secret`); return its URL."""
        self._routes[name] = _Route(name=name, webhook=Webhook(secret), behaviour=behaviour)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self._port}/hook/{name}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = self._routes.get(request.match_info["name"])
        if route is None:
            return web.Response(status=404)
        body = await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        error: str | None = None
        try:
            route.webhook.verify(body, request.headers)
        except WebhookVerificationError as exc:
            error = f"{type(exc).__name__}: {exc}"
        route.seen[webhook_id] += 1
        arrival = Arrival(
            endpoint=route.name,
            webhook_id=webhook_id,
            timestamp=request.headers.get("webhook-timestamp", ""),
            body=body,
            verified=error is None,
            error=error,
            answer=NO_ANSWER,
            at=time.monotonic(),
        )
        if error is not None:
            self.journal.record(dataclasses.replace(arrival, answer=401))
            return web.Response(status=401, text=error)
        call = Call(request=request, nth=route.seen[webhook_id])
        try:
            answered = await route.behaviour(call)
        except asyncio.CancelledError:
            # The client went away: before any answer (NO_ANSWER), or mid-body.
            self.journal.record(dataclasses.replace(arrival, answer=call.sent))
            raise
        self.journal.record(dataclasses.replace(arrival, answer=answered.status))
        if answered.response is None:
            raise asyncio.CancelledError  # the transport is gone: nothing to send
        return answered.response

    async def __aenter__(self) -> Self:
        self.journal.open()
        app = web.Application(client_max_size=4 * _CHUNK)
        app.router.add_post("/hook/{name}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        # A deep accept queue: a burst of hundreds of first attempts must not overflow it
        # (a dropped SYN is retried after 1 s, which is the zoo's whole attempt deadline).
        site = web.TCPSite(self._runner, self.host, 0, backlog=4096)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            self.journal.close()
