"""Organizations (`platform:orgs`; listing them also `ops:read`) and `GET /v1/whoami`
(any live key or portal session).

`PUT /v1/organizations/{id}` creates or updates an organization's place in the tree and its
status. A field left out keeps its current value (a new organization: no parent, active),
so `webhooks orgs set ORG --status suspended` does not forget the parent. A parent that is
the organization itself or one of its descendants is refused (no cycles).
"""

from __future__ import annotations

from aiohttp import web

from dispatcher.api import sessions, views
from dispatcher.api.auth import Principal, context, guarded
from dispatcher.api.context import ApiContext, json_response
from dispatcher.api.validation import ORG_ID, Query, invalid, page, read_body
from dispatcher.core.models import Organization, OrgStatus
from dispatcher.core.scopes import Scope
from dispatcher.errors import ApiError

MAX_DEPTH = 64  # ancestors walked looking for a cycle

platform = guarded(org=None, operator=Scope.PLATFORM_ORGS, mutating=True)
platform_reads = guarded(org=None, operator=Scope.PLATFORM_ORGS)


def _org_id(request: web.Request) -> str:
    org_id = request.match_info["id"]
    if not ORG_ID.match(org_id):
        raise invalid("id: not an organization id (org_ followed by 1-64 of A-Z a-z 0-9 _ -)")
    return org_id


async def _check_no_cycle(ctx: ApiContext, org_id: str, parent_id: str | None) -> None:
    seen = 0
    current = parent_id
    while current is not None and seen < MAX_DEPTH:
        if current == org_id:
            raise invalid("parentOrganizationId: would make the organization its own ancestor")
        parent = await ctx.store.get_organization(current)
        current = None if parent is None else parent.parent_id
        seen += 1


@platform
async def put_organization(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    org_id = _org_id(request)
    body = await read_body(request)
    current = await ctx.store.get_organization(org_id) or Organization(id=org_id)
    parent = current.parent_id
    if body.has("parentOrganizationId"):
        parent = body.string("parentOrganizationId", max_length=80, nullable=True)
        if parent is not None and not ORG_ID.match(parent):
            raise invalid("parentOrganizationId: not an organization id (org_…)")
    status = body.choice("status", OrgStatus, default=current.status) or current.status
    body.finish()
    await _check_no_cycle(ctx, org_id, parent)
    org = Organization(
        id=org_id, parent_id=parent, status=status, portal_origins=current.portal_origins
    )
    await ctx.store.put_organization(org)
    ctx.directory.invalidate()
    await ctx.directory.refresh()
    return json_response(views.organization(org))


@platform_reads
async def get_organization(request: web.Request, principal: Principal) -> web.Response:
    org = await context(request).store.get_organization(_org_id(request))
    if org is None:
        raise ApiError("NOT_FOUND", "no such organization")
    return json_response(views.organization(org))


@guarded(org=None, operator=None, any_scope=True)
async def list_organizations(request: web.Request, principal: Principal) -> web.Response:
    """Every organization by id, for operators holding `ops:read` or `platform:orgs`
    (organization keys: 403, as for the other organization routes)."""
    if not principal.operator:
        raise ApiError("FORBIDDEN", "organization keys cannot use this route")
    if not (principal.holds(Scope.OPS_READ) or principal.holds(Scope.PLATFORM_ORGS)):
        raise ApiError("FORBIDDEN", "this route needs the ops:read or platform:orgs scope")
    query = Query(request.query)
    limit = query.limit()
    after = query.string("after")
    if after is not None and not ORG_ID.match(after):
        raise invalid("after: not a cursor returned by this API (a previous nextCursor)")
    found = await context(request).store.list_organizations(after=after, limit=limit + 1)
    return json_response(page(found, limit, views.organization, lambda org: org.id))


@guarded(org=None, operator=None, any_scope=True)
async def whoami(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    key = principal.key
    parent = None
    if key.organization_id is not None:
        org = await ctx.store.get_organization(key.organization_id)
        parent = None if org is None else org.parent_id
    if principal.session is not None:
        return json_response(sessions.whoami(request, principal.session, parent))
    return json_response(
        {
            **views.api_key(key),
            "kind": "operator" if principal.operator else "organization",
            "parentOrganizationId": parent,
            "actingOrganizationId": principal.organization_id,
        }
    )


def register(app: web.Application) -> None:
    app.router.add_get("/v1/organizations", list_organizations)
    app.router.add_put("/v1/organizations/{id}", put_organization)
    app.router.add_get("/v1/organizations/{id}", get_organization)
    app.router.add_get("/v1/whoami", whoami)
