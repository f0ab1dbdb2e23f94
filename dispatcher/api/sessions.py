"""Portal sessions at the HTTP edge: the `lw_portal` cookie, what a cookie session may do,
its CSRF check, where portal links point, and the `frame-ancestors` the console sends.

A portal session authenticates `/v1` like an organization key of the session's
organization holding the session's scopes (`session_key`), so every route's tenancy rules
apply unchanged; auth.py asks this module only when a request has no `Authorization` header
(a bearer key always wins over a cookie). The cookie is `HttpOnly; SameSite=Strict; Path=/`,
`Secure` when the request came over TLS or `WEBHOOKS_PUBLIC_URL` is `https` (a proxy's
`X-Forwarded-Proto` is never trusted: it is whatever the client sent).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from dispatcher.api.context import CONTEXT, ApiContext
from dispatcher.clock import utcnow
from dispatcher.core.models import ApiKeyRecord, rfc3339
from dispatcher.core.portal import (
    COOKIE_PREFIX,
    PortalSession,
    csrf_matches,
    csrf_token,
    frame_ancestors,
    looks_like,
)
from dispatcher.core.scopes import hash_key
from dispatcher.errors import ApiError, StoreUnavailableError
from dispatcher.settings import Settings

COOKIE = "lw_portal"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
SESSION_NAME = "portal session"


def session_key(session: PortalSession) -> ApiKeyRecord:
    """The key a session acts as: an organization key of its organization with its scopes.
    Its id is the session's (`pss_…`), so replays record the session as their actor and the
    session has its own rate-limit bucket."""
    return ApiKeyRecord(
        id=session.id,
        organization_id=session.organization_id,
        scopes=session.scopes,
        name=SESSION_NAME,
        created_at=session.created_at,
    )


def _ended() -> ApiError:
    # The browser forgets the dead cookie; the console shows "signed out".
    return ApiError(
        "UNAUTHENTICATED",
        "the portal session expired or was ended; open a new portal link",
        headers={"Set-Cookie": f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"},
    )


async def cookie_session(
    request: web.Request, ctx: ApiContext, *, now: datetime | None = None
) -> PortalSession:
    """The live session of the request's cookie (the request has one), else 401."""
    cookie = request.cookies.get(COOKIE, "")
    session = (
        await ctx.store.portal_session_by_cookie(hash_key(cookie))
        if looks_like(cookie, COOKIE_PREFIX)
        else None
    )
    if session is None or not session.live(now or utcnow()):
        raise _ended()
    return session


def check_csrf(request: web.Request) -> None:
    """A change made with a session cookie carries the session's CSRF token, else 403."""
    if request.method in SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER, "")
    if not presented or not csrf_matches(request.cookies.get(COOKIE, ""), presented):
        raise ApiError(
            "FORBIDDEN",
            f"a portal session sends {CSRF_HEADER} (the csrfToken of GET /v1/whoami) with "
            "every request that changes something",
        )


def whoami(request: web.Request, session: PortalSession, parent: str | None) -> dict[str, object]:
    """`GET /v1/whoami` in a portal session (the cookie is the one authenticated)."""
    return {
        "id": session.id,
        "kind": "organization",
        "session": "portal",
        "organizationId": session.organization_id,
        "parentOrganizationId": parent,
        "actingOrganizationId": session.organization_id,
        "scopes": sorted(session.scopes),
        "name": SESSION_NAME,
        "createdAt": rfc3339(session.created_at),
        "revokedAt": None,
        "expiresAt": rfc3339(session.expires_at),
        "csrfToken": csrf_token(request.cookies.get(COOKIE, "")),
    }


def public_base(request: web.Request, settings: Settings) -> str:
    """Where browsers reach the service: WEBHOOKS_PUBLIC_URL, else the minting request's own
    scheme and Host (the caller that minted receives the link, so a forged Host misleads
    only itself)."""
    if settings.public_url:
        return settings.public_url
    return f"{'https' if request.secure else 'http'}://{request.host}"


def console_path(settings: Settings) -> str:
    """The console's path as browsers see it (under WEBHOOKS_PUBLIC_URL's path, if any)."""
    return urlsplit(settings.public_url).path.rstrip("/") + "/console/"


def secure_cookies(request: web.Request, settings: Settings) -> bool:
    return request.secure or settings.public_url.startswith("https://")


def set_cookie(
    response: web.StreamResponse,
    request: web.Request,
    settings: Settings,
    cookie: str,
    *,
    max_age: int,
) -> None:
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request, settings),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, settings: Settings) -> None:
    set_cookie(response, request, settings, "", max_age=0)


async def portal_origins(ctx: ApiContext, organization_id: str) -> tuple[str, ...]:
    """The origins allowed to frame an organization's portal (none: it cannot be framed)."""
    org = await ctx.store.get_organization(organization_id)
    return () if org is None else org.portal_origins


async def organization_ancestors(ctx: ApiContext, organization_id: str) -> str:
    """The frame-ancestors sources of an organization's portal: its origins, or 'none'."""
    return frame_ancestors(await portal_origins(ctx, organization_id))


async def frame_ancestors_for(request: web.Request) -> tuple[str, ...]:
    """The origins allowed to frame a console response (its CSP says `frame-ancestors` and
    these, or `'none'` when there are none): the portal origins of the organization of the
    request's live portal session cookie; none for anything else (a console signed in with
    an API key is never framed). Fails closed: a store outage gives none."""
    if "Authorization" in request.headers or COOKIE not in request.cookies:
        return ()
    ctx = request.app[CONTEXT]
    try:
        session = await cookie_session(request, ctx)
        return await portal_origins(ctx, session.organization_id)
    except (ApiError, StoreUnavailableError):
        return ()
