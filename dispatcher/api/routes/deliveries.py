"""`/v1/deliveries` and an endpoint's delivery listing: every attempt, the replay history,
and replaying one delivery.

A replay keeps the `webhook-id` (the event id) so receivers can dedupe, re-signs with the
endpoint's current secrets at send time, resets the ladder, and is recorded with who asked
(the key id) and why.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from dispatcher import tracing
from dispatcher.api import views
from dispatcher.api.auth import Principal, context, guarded
from dispatcher.api.context import ApiContext, json_response
from dispatcher.api.routes.webhooks import load_endpoint, reads
from dispatcher.api.validation import Query, page, read_body, reason, resource_id
from dispatcher.core.models import DeliveryStatus
from dispatcher.core.scopes import Scope
from dispatcher.errors import ApiError
from dispatcher.store.records import DeliveryRecord

replays = guarded(org=Scope.WEBHOOKS_WRITE, operator=Scope.OPS_REPLAY, mutating=True)


async def endpoint_organization(ctx: ApiContext, endpoint_id: str) -> str | None:
    """The organization owning an endpoint (None when it was deleted meanwhile)."""
    endpoint = ctx.directory.endpoint(endpoint_id) or await ctx.store.get_endpoint(endpoint_id)
    return None if endpoint is None else endpoint.organization_id


async def load_delivery(ctx: ApiContext, principal: Principal, delivery_id: str) -> DeliveryRecord:
    delivery = await ctx.store.get_delivery(delivery_id)
    org = None if delivery is None else await endpoint_organization(ctx, delivery.endpoint_id)
    if delivery is None or org is None:
        raise ApiError("NOT_FOUND", "no such delivery")
    principal.check(org, "delivery")
    return delivery


async def detail(ctx: ApiContext, delivery: DeliveryRecord) -> dict[str, object]:
    attempts = await ctx.store.list_attempts(delivery.id)
    history = await ctx.store.list_replays(delivery.id)
    return {
        **views.delivery(delivery),
        "attempts": [views.attempt(a) for a in attempts],
        "replays": [views.replay(r) for r in history],
    }


@reads
async def list_deliveries(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    query = Query(request.query)
    limit = query.limit()
    since, until = query.period()
    found = await ctx.store.list_deliveries(
        endpoint.id,
        statuses=query.choices("status", DeliveryStatus),
        event_type=query.string("type"),
        since=since,
        until=until,
        after=query.after("dlv"),
        limit=limit + 1,
    )
    return json_response(page(found, limit, views.delivery, lambda d: d.id))


@reads
async def get_delivery(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    delivery = await load_delivery(ctx, principal, resource_id(request, "delivery"))
    return json_response(await detail(ctx, delivery))


@replays
async def replay_delivery(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    delivery = await load_delivery(ctx, principal, resource_id(request, "delivery"))
    body = await read_body(request)
    why = reason(body)
    body.finish()
    now = datetime.now(UTC)
    leased = delivery.lease_expires_at is not None and delivery.lease_expires_at > now
    if delivery.status is DeliveryStatus.PENDING and leased:
        raise ApiError("CONFLICT", "the delivery has an attempt in flight; try again shortly")
    traced = {"webhooks.delivery_id": delivery.id, "webhooks.endpoint_id": delivery.endpoint_id}
    with tracing.replay("single", traced):
        await ctx.store.replay_deliveries(
            [delivery.id], actor=principal.key.id, reason=why, now=now
        )
    ctx.metrics.replays.labels("single").inc()
    ctx.scheduler.poke()
    replayed = await load_delivery(ctx, principal, delivery.id)
    return json_response(await detail(ctx, replayed), status=202)


def register(app: web.Application) -> None:
    app.router.add_get("/v1/webhooks/{id}/deliveries", list_deliveries)
    app.router.add_get("/v1/deliveries/{id}", get_delivery)
    app.router.add_post("/v1/deliveries/{id}/replay", replay_delivery)
