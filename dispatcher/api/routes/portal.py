"""The partner portal: minting a session (`POST /v1/portal-sessions`, an `org:admin` key),
opening its one-time link (`GET /console/portal/{token}`), signing out
(`DELETE /v1/portal-sessions/current`), and the origins allowed to frame an organization's
portal (`GET`/`PATCH /v1/organizations/{id}/portal`).

Opening a link exchanges its token, once, for a session cookie and redirects (303) to the
console; a link that is unknown, used, expired or whose key was revoked gets the same plain
page (410) — which of these it was is not said, and the token is never echoed.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from aiohttp import web

from dispatcher.api import sessions
from dispatcher.api.auth import Principal, context, guarded, reachable_organization
from dispatcher.api.context import CONTEXT, ApiContext, json_response
from dispatcher.api.validation import ORG_ID, invalid, read_body
from dispatcher.clock import new_id, random_bytes, utcnow
from dispatcher.core.models import rfc3339
from dispatcher.core.portal import (
    DEFAULT_TTL_SECONDS,
    LINK_PREFIX,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    SECRET_BYTES,
    cookie_secret,
    link_token,
    looks_like,
    new_session,
    parse_origins,
)
from dispatcher.core.scopes import Scope, hash_key
from dispatcher.errors import ApiError, PortalRequestError, StoreUnavailableError

log = logging.getLogger(__name__)

admins = guarded(org=Scope.ORG_ADMIN, operator=Scope.PLATFORM_ORGS)
admin_changes = guarded(org=Scope.ORG_ADMIN, operator=Scope.PLATFORM_ORGS, mutating=True)


@guarded(org=Scope.ORG_ADMIN, operator=None, mutating=True)
async def mint_session(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    body = await read_body(request)
    ttl = body.integer(
        "ttlSeconds", default=DEFAULT_TTL_SECONDS, minimum=MIN_TTL_SECONDS, maximum=MAX_TTL_SECONDS
    )
    scopes = body.strings("scopes")
    if scopes is None:
        raise invalid("scopes: required (webhooks:read and/or webhooks:write)")
    named = body.string("organizationId", max_length=80)
    body.finish()
    organization = principal.org
    if named is not None:
        organization = (
            await reachable_organization(ctx, principal.key, named, "organizationId")
            or organization
        )
    try:
        session = new_session(
            session_id=new_id("pss"),
            organization_id=organization,
            key_id=principal.key.id,
            key_scopes=principal.key.scopes,
            requested=scopes,
            ttl_seconds=ttl,
            now=utcnow(),
        )
    except PortalRequestError as exc:
        raise invalid(str(exc)) from None
    token = link_token(random_bytes(SECRET_BYTES))
    await ctx.store.create_portal_session(session, hash_key(token))
    log.info(
        "portal session minted",
        extra={
            "session_id": session.id,
            "organization_id": organization,
            "key_id": principal.key.id,
            "scopes": sorted(session.scopes),
        },
    )
    base = sessions.public_base(request, ctx.settings)
    return json_response(
        {
            "id": session.id,
            "url": f"{base}/console/portal/{token}",
            "organizationId": organization,
            "scopes": sorted(session.scopes),
            "expiresAt": rfc3339(session.expires_at),
            "linkExpiresAt": rfc3339(session.link_expires_at),
        },
        status=201,
    )


@guarded(org=None, operator=None, any_scope=True, mutating=True)
async def end_session(request: web.Request, principal: Principal) -> web.Response:
    """Sign out: the session ends on the server and the browser forgets the cookie."""
    if principal.session is None:
        raise ApiError("NOT_FOUND", "no portal session: this request used an API key")
    ctx = context(request)
    await ctx.store.end_portal_session(principal.session.id)
    response = web.Response(status=204)
    sessions.clear_cookie(response, request, ctx.settings)
    return response


async def _organization(ctx: ApiContext, principal: Principal, request: web.Request) -> str:
    """The path's organization, when the principal administers it (else 404)."""
    org_id = request.match_info["id"]
    if not ORG_ID.match(org_id):
        raise ApiError("NOT_FOUND", "no such organization")
    await reachable_organization(ctx, principal.key, org_id, "this route")
    if await ctx.store.get_organization(org_id) is None:
        raise ApiError("NOT_FOUND", "no such organization")
    return org_id


async def _portal_view(ctx: ApiContext, org_id: str) -> web.Response:
    org = await ctx.store.get_organization(org_id)
    if org is None:
        raise ApiError("NOT_FOUND", "no such organization")
    return json_response({"organizationId": org.id, "portalOrigins": list(org.portal_origins)})


@admins
async def get_portal(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    return await _portal_view(ctx, await _organization(ctx, principal, request))


@admin_changes
async def patch_portal(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    org_id = await _organization(ctx, principal, request)
    body = await read_body(request)
    texts = body.strings("portalOrigins")
    body.finish()
    if texts is None:
        raise invalid("portalOrigins: required (an array of https://host[:port] origins)")
    try:
        origins = parse_origins(texts)
    except PortalRequestError as exc:
        raise invalid(str(exc)) from None
    await ctx.store.set_portal_origins(org_id, origins, now=utcnow())
    return await _portal_view(ctx, org_id)


# -- opening a portal link ---------------------------------------------------------------

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:3rem 1.5rem;color:#1f2328;"
    "background:#f6f8fa}main{max-width:32rem;margin:0 auto;background:#fff;padding:2rem;"
    "border:1px solid #d0d7de;border-radius:8px}h1{font-size:1.25rem;margin-top:0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{style}</style></head>
<body><main><h1>{title}</h1><p>{text}</p></main></body></html>
"""
_REFUSED = (
    "This portal link cannot be used",
    "A portal link opens the portal once, within a few minutes of being made. This one was "
    "already used, has expired or was withdrawn. Go back to the page that sent you here to "
    "get a new link.",
)
_UNAVAILABLE = (
    "The portal is unavailable",
    "The service cannot open portal sessions right now. Try again in a minute.",
)


def _headers(ancestors: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
            f"form-action 'none'; frame-ancestors {ancestors}"
        ),
        "Referrer-Policy": "no-referrer",  # the token never leaves in a Referer
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def _page(status: int, title: str, text: str, ancestors: str) -> web.Response:
    html = _PAGE.format(title=title, text=text, style=_STYLE)  # constant text only
    return web.Response(
        status=status, text=html, content_type="text/html", headers=_headers(ancestors)
    )


async def open_link(request: web.Request) -> web.StreamResponse:
    """Exchange the link's token for a session cookie and go to the console."""
    ctx = request.app[CONTEXT]
    token = request.match_info["token"]
    try:
        if not looks_like(token, LINK_PREFIX):
            return _page(410, *_REFUSED, "'none'")
        cookie = cookie_secret(random_bytes(SECRET_BYTES))
        now = utcnow()
        session = await ctx.store.exchange_portal_link(hash_key(token), hash_key(cookie), now=now)
        if session is None:  # framed like the portal it belonged to, when it is known
            known = await ctx.store.portal_session_by_link(hash_key(token))
            ancestors = (
                "'none'"
                if known is None
                else await sessions.organization_ancestors(ctx, known.organization_id)
            )
            return _page(410, *_REFUSED, ancestors)
        ancestors = await sessions.organization_ancestors(ctx, session.organization_id)
    except StoreUnavailableError:
        log.warning("store unavailable while opening a portal link")
        return _page(503, *_UNAVAILABLE, "'none'")
    response = web.Response(status=303, headers=_headers(ancestors))
    response.headers["Location"] = sessions.console_path(ctx.settings)
    max_age = int((session.expires_at - now).total_seconds())
    sessions.set_cookie(response, request, ctx.settings, cookie, max_age=max_age)
    log.info(
        "portal link opened",
        extra={"session_id": session.id, "organization_id": session.organization_id},
    )
    return response


def register(app: web.Application) -> None:
    app.router.add_post("/v1/portal-sessions", mint_session)
    app.router.add_delete("/v1/portal-sessions/current", end_session)
    app.router.add_get("/v1/organizations/{id}/portal", get_portal)
    app.router.add_patch("/v1/organizations/{id}/portal", patch_portal)
    # No HEAD: a HEAD (a link checker's) must not spend the one-time token.
    app.router.add_get("/console/portal/{token}", open_link, allow_head=False)
