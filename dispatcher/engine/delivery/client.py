"""The delivery client: one signed POST per attempt, every outcome a value.

See docs/design.md §3 (wire format), §5 (delivery semantics) and §8 (destinations).

`DeliveryClient` owns one `aiohttp.ClientSession` (keep-alive pools per host) and turns
each attempt into an `AttemptOutcome`. It never raises for a failed delivery: aiohttp's
error tree is mapped once, here, by `classify_error`.

The destination guard (`guard.py`) runs on the address actually dialled, at every attempt:
`send` re-validates the URL shape and checks IP-literal hosts; the resolver and the socket
factory do the rest.

Redirects are never followed, proxy environment variables are ignored, cookies are never
kept, and response bodies are read up to a cap inside the one total deadline.
"""

from __future__ import annotations

import email.utils
import functools
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from types import TracebackType
from typing import Final, Self

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from dispatcher import tracing
from dispatcher.core.destinations import DestinationPolicy
from dispatcher.core.models import AttemptOutcome, Claim, FailureKind
from dispatcher.engine.delivery.guard import (
    DialRefusedError,
    GuardedResolver,
    guarded_socket_factory,
)
from dispatcher.engine.delivery.signing import Signer
from dispatcher.errors import DestinationError

# How long vetted DNS answers are reused. Every answer in the cache passed the guard.
DNS_CACHE_SECONDS: Final = 10
_MAX_DETAIL = 300
_SIGNERS_CACHED = 1024  # distinct secret sets (endpoints) whose decoded keys are kept
_URLS_CACHED = 4096  # distinct endpoint URLs whose validated, parsed form is kept


class DeliveryClient:
    """Sends signed webhook attempts. `async with DeliveryClient(...) as client: ...`"""

    def __init__(
        self,
        *,
        policy: DestinationPolicy,
        timeout: float = 15.0,
        user_agent: str,
        max_connections: int = 1000,
        max_response_bytes: int = 65536,
        excerpt_bytes: int = 4096,
        resolver: AbstractResolver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._timeout = timeout
        self._user_agent = user_agent
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._excerpt_bytes = min(excerpt_bytes, max_response_bytes)
        self._resolver = resolver  # None: getaddrinfo in a thread (aiohttp's ThreadedResolver)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._guard: GuardedResolver | None = None
        self._signer = functools.lru_cache(maxsize=_SIGNERS_CACHED)(_make_signer)
        self._request_url = functools.lru_cache(maxsize=_URLS_CACHED)(self._vet_url)

    async def __aenter__(self) -> Self:
        self._guard = GuardedResolver(
            self._policy, self._resolver or ThreadedResolver(), owns_inner=self._resolver is None
        )
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,  # 0 means unlimited, as in aiohttp
            # No per-host cap here: isolation between endpoints is the scheduler's
            # per-endpoint cap, and many endpoints may share one host.
            limit_per_host=0,
            resolver=self._guard,
            ttl_dns_cache=DNS_CACHE_SECONDS,
            socket_factory=guarded_socket_factory(self._policy),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"content-type": "application/json", "user-agent": self._user_agent},
            skip_auto_headers=("accept-encoding",),  # bodies are kept raw, never inflated
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # no state carried between attempts
            trust_env=False,  # HTTP(S)_PROXY, NO_PROXY and .netrc never apply to tenant traffic
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        guard, self._guard = self._guard, None
        if session is not None:
            await session.close()  # closes the connector and its pooled connections
        if guard is not None:
            await guard.close()  # the connector does not own a resolver it was given

    async def send(
        self,
        *,
        url: str,
        event_id: str,
        body: bytes,
        secrets: Sequence[str],
        timestamp: int,
        claim: Claim | None = None,
    ) -> AttemptOutcome:
        """One attempt: sign with every secret, POST, read the answer.

        Never raises for a failed delivery: the outcome says what happened. Only caller bugs
        raise (an event id or timestamp the scheme rejects, a malformed secret). With tracing
        on, the attempt of a `claim` is a span (and its `traceparent` header, if propagated).
        """
        spans = tracing.active
        if spans is None or claim is None:
            return await self._send(url, event_id, body, secrets, timestamp, None)
        with spans.attempt(claim, url) as span:
            outcome = await self._send(url, event_id, body, secrets, timestamp, span.headers)
            span.finish(outcome)
        return outcome

    async def _send(
        self,
        url: str,
        event_id: str,
        body: bytes,
        secrets: Sequence[str],
        timestamp: int,
        extra_headers: dict[str, str] | None,
    ) -> AttemptOutcome:
        if self._session is None:
            raise RuntimeError("DeliveryClient used outside `async with`")
        started = time.perf_counter()
        try:
            request_url = self._request_url(url)
        except DestinationError as exc:
            return _failed(FailureKind.BLOCKED_DESTINATION, str(exc), started)
        headers = {
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self._signer(tuple(secrets)).sign_header(
                event_id, timestamp, body
            ),
        }
        if extra_headers:
            headers.update(extra_headers)
        try:
            async with self._session.post(
                request_url, data=body, headers=headers, allow_redirects=False
            ) as response:
                excerpt = await self._read_capped(response)
        except DestinationError as exc:
            return _failed(FailureKind.BLOCKED_DESTINATION, str(exc), started)
        except (aiohttp.ClientError, HttpProcessingError, OSError) as exc:
            kind, detail = classify_error(exc, timeout=self._timeout)
            return _failed(kind, detail, started)
        ok = 200 <= response.status < 300
        return AttemptOutcome(
            status_code=response.status,
            failure=None if ok else FailureKind.HTTP_STATUS,
            duration_ms=_elapsed_ms(started),
            response_excerpt=excerpt,
            retry_after=parse_retry_after(response.headers.get("retry-after"), self._clock()),
            detail="" if ok else _status_detail(response),
        )

    def _vet_url(self, url: str) -> URL:
        """Shape and IP-literal check, then the canonical URL aiohttp will request."""
        destination = self._policy.check_url(url)
        request_url = URL(destination.url, encoded=True)
        if request_url.raw_host != destination.host:  # the parsers disagree: refuse
            raise DestinationError(f"url: host {destination.host!r} could not be canonicalised")
        return request_url

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """Read at most `max_response_bytes` and return the excerpt. A bigger body is left
        unread (its connection is then closed, not pooled); a slow one hits the deadline."""
        excerpt = b""
        remaining = self._max_response_bytes
        while remaining > 0:
            chunk = await response.content.read(remaining)
            if not chunk:
                break
            remaining -= len(chunk)
            if len(excerpt) < self._excerpt_bytes:
                excerpt += chunk[: self._excerpt_bytes - len(excerpt)]
        return excerpt


def _make_signer(secrets: tuple[str, ...]) -> Signer:
    return Signer(secrets)


def classify_error(exc: BaseException, *, timeout: float) -> tuple[FailureKind, str]:
    """aiohttp's error tree, mapped once into a failure kind and a human detail.

    Order matters: aiohttp's classes overlap (its TLS and DNS errors are connector errors,
    its timeouts are `TimeoutError`, which is an `OSError`).
    """
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, DialRefusedError):
        return FailureKind.BLOCKED_DESTINATION, str(exc.os_error)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return FailureKind.DNS, _clip(f"could not resolve {exc.host}: {_os_reason(exc)}")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return FailureKind.TLS, _clip(f"TLS failed: {exc}")
    if isinstance(exc, TimeoutError):
        return FailureKind.TIMEOUT, f"no complete response within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientResponseError):
        return FailureKind.INVALID_RESPONSE, _clip(f"malformed HTTP response: {exc.message}")
    if isinstance(exc, aiohttp.ClientPayloadError | HttpProcessingError):
        return FailureKind.INVALID_RESPONSE, _clip(f"malformed HTTP response: {exc}")
    if isinstance(exc, aiohttp.InvalidURL):
        return FailureKind.BLOCKED_DESTINATION, _clip(f"url: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return FailureKind.CONNECT, _clip(
            f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc)}"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return FailureKind.CONNECT, "the server closed the connection without answering"
    return FailureKind.CONNECT, _clip(f"{type(exc).__name__}: {exc}")


def _os_reason(exc: aiohttp.ClientConnectorError) -> str:
    return exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` in seconds from `now`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    None when absent or unparseable; a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about the local zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _status_detail(response: aiohttp.ClientResponse) -> str:
    detail = f"HTTP {response.status} {response.reason or ''}".rstrip()
    if 300 <= response.status < 400:
        location = response.headers.get("location", "")
        detail += f" (redirects are not followed; location: {location!r})"
    return _clip(detail)


def _failed(kind: FailureKind, detail: str, started: float) -> AttemptOutcome:
    return AttemptOutcome(
        status_code=None, failure=kind, duration_ms=_elapsed_ms(started), detail=detail
    )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
