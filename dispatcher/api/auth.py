"""Authentication, scopes, tenancy and the per-key rate limit of every `/v1` route.

Each handler is wrapped by `guarded(...)`, which, in this order:

1. authenticates `Authorization: Bearer <key>` against the keys table on every request (a
   revoked key stops working at once) — otherwise 401 `UNAUTHENTICATED`. A request with no
   `Authorization` header but a portal session cookie is authenticated by the session
   (sessions.py), and acts as an organization key of the session's organization holding the
   session's scopes; a change it asks for must carry the session's CSRF token (403);
2. checks the route's scope for the kind of key (organization or operator) — otherwise 403
   `FORBIDDEN`; nothing is implied (`org:admin` alone cannot read webhooks);
3. on mutating routes, takes a token from the key's bucket (WEBHOOKS_API_RATE_LIMIT per
   second, burst twice that) — otherwise 429 `RATE_LIMITED` with `Retry-After`;
4. resolves the organization the request acts in: the key's own, or with
   `X-Layers-Organization` a *direct* child (needs `org:admin`; another org is 404).
   Operator keys act across organizations, or inside the one the header names.

Handlers then fetch objects and call `principal.check(org_id)`: an object of an organization
the principal cannot see is 404 `NOT_FOUND`, never 403, so ids do not leak.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps

from aiohttp import web

from dispatcher.api import sessions
from dispatcher.api.context import CONTEXT, ApiContext, Handler
from dispatcher.api.validation import ORG_ID
from dispatcher.core.models import ApiKeyRecord
from dispatcher.core.portal import PortalSession
from dispatcher.core.ratelimit import TokenBucket
from dispatcher.core.scopes import Scope, hash_key, holds, looks_like_key
from dispatcher.errors import ApiError

ORGANIZATION_HEADER = "X-Layers-Organization"

GuardedHandler = Callable[[web.Request, "Principal"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is asking, and the organization they act in (None: an operator across orgs)."""

    key: ApiKeyRecord
    organization_id: str | None
    session: PortalSession | None = None  # a portal session (the key is its stand-in)

    @property
    def operator(self) -> bool:
        return self.key.organization_id is None

    def holds(self, scope: Scope) -> bool:
        return holds(self.key, scope)

    def sees(self, organization_id: str) -> bool:
        return self.organization_id is None or self.organization_id == organization_id

    def check(self, organization_id: str, what: str) -> None:
        """404 unless the principal may see objects of `organization_id`."""
        if not self.sees(organization_id):
            raise ApiError("NOT_FOUND", f"no such {what}")

    @property
    def org(self) -> str:
        """The organization to create in or list (operators must name one)."""
        if self.organization_id is None:
            raise ApiError(
                "VALIDATION",
                f"{ORGANIZATION_HEADER}: operator keys name the organization to act in",
            )
        return self.organization_id


@dataclass(slots=True)
class RateLimiter:
    """One token bucket per key, holding this replica's share of the key's rate (the rate
    divided by the replicas alive), so the limit holds across replicas."""

    rate: float
    replicas: Callable[[], int] = lambda: 1
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def wait(self, key_id: str, now: float) -> float:
        """0.0 when the request may go ahead, else the seconds until it may."""
        share = self.rate / max(1, self.replicas())
        bucket = self.buckets.get(key_id)
        if bucket is None or bucket.rate != share:
            bucket = self.buckets[key_id] = TokenBucket(rate=share, burst=max(1.0, 2 * share))
        return bucket.take(now)


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


async def authenticate(
    request: web.Request, context: ApiContext
) -> tuple[ApiKeyRecord, PortalSession | None]:
    """The key (or the portal session and the key it acts as) the request authenticates as."""
    if "Authorization" not in request.headers and sessions.COOKIE in request.cookies:
        session = await sessions.cookie_session(request, context)
        sessions.check_csrf(request)
        return sessions.session_key(session), session
    return await _bearer_key(request, context), None


async def _bearer_key(request: web.Request, context: ApiContext) -> ApiKeyRecord:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("UNAUTHENTICATED", "send Authorization: Bearer <API key>")
    token = token.strip()
    key = await context.store.api_key_by_hash(hash_key(token)) if looks_like_key(token) else None
    if key is None:
        raise ApiError("UNAUTHENTICATED", "unknown API key")
    if key.revoked_at is not None:
        raise ApiError("UNAUTHENTICATED", "this API key was revoked")
    return key


def _authorise(key: ApiKeyRecord, org_scope: Scope | None, operator_scope: Scope | None) -> None:
    operator = key.organization_id is None
    needed = operator_scope if operator else org_scope
    if needed is None:
        kind = "operator" if operator else "organization"
        raise ApiError("FORBIDDEN", f"{kind} keys cannot use this route")
    if not holds(key, needed):
        raise ApiError("FORBIDDEN", f"this route needs the {needed} scope")


async def _acting_organization(
    request: web.Request, context: ApiContext, key: ApiKeyRecord
) -> str | None:
    named = request.headers.get(ORGANIZATION_HEADER, "").strip()
    return await reachable_organization(context, key, named, ORGANIZATION_HEADER)


async def reachable_organization(
    context: ApiContext, key: ApiKeyRecord, named: str, what: str
) -> str | None:
    """The organization `named` when `key` may act in it — its own, or with org:admin a
    direct child (another is 404); an operator key any it names. Empty: the key's own."""
    own = key.organization_id
    if not named or named == own:
        return own
    if not ORG_ID.match(named):
        raise ApiError("NOT_FOUND", "no such organization")
    if own is None:  # an operator names the organization it acts in
        return named
    if not holds(key, Scope.ORG_ADMIN):
        raise ApiError("FORBIDDEN", f"{what} needs the org:admin scope")
    child = await context.store.get_organization(named)
    if child is None or child.parent_id != own:
        raise ApiError("NOT_FOUND", f"no such organization among {own}'s direct children")
    return named


def _rate_limit(request: web.Request, key: ApiKeyRecord) -> None:
    wait = request.app[RATE_LIMITER].wait(key.id, time.monotonic())
    if wait > 0:
        raise ApiError(
            "RATE_LIMITED",
            "too many requests for this API key",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def guarded(
    *,
    org: Scope | None,
    operator: Scope | None,
    mutating: bool = False,
    any_scope: bool = False,
) -> Callable[[GuardedHandler], Handler]:
    """Wrap a handler with authentication, the scope check for each kind of key (None:
    that kind may not use the route; `any_scope`: any live key may), the rate limit on
    mutating routes, and the acting organization."""

    def decorate(handler: GuardedHandler) -> Handler:
        @wraps(handler)
        async def guarded_handler(request: web.Request) -> web.StreamResponse:
            context = request.app[CONTEXT]
            key, session = await authenticate(request, context)
            if not any_scope:
                _authorise(key, org, operator)
            if mutating:
                _rate_limit(request, key)
            acting = await _acting_organization(request, context, key)
            principal = Principal(key=key, organization_id=acting, session=session)
            return await handler(request, principal)

        return guarded_handler

    return decorate


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
