"""`/v1/webhooks`: register, read, change and delete endpoints; rotate their secret;
enable, disable and test them.

The signing secret appears in exactly two responses — create and rotate — and nowhere else
(not in reads, lists, logs, metrics or errors). Every write refreshes this replica's routing
snapshot before answering, so an event published after the response is routed by it.

A firehose (`scope: all_children`) carries the child organizations' events, so widening an
endpoint to it, and changing a firehose at all, needs `org:admin`; the key that does so is
the one the firehose's authorisation rests on from then on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aiohttp import web

from dispatcher.api import views
from dispatcher.api.auth import Principal, context, guarded
from dispatcher.api.context import ApiContext, json_response
from dispatcher.api.validation import (
    DEFAULT_GRACE_SECONDS,
    MAX_GRACE_SECONDS,
    Query,
    endpoint_changes,
    invalid,
    page,
    read_body,
    resource_id,
)
from dispatcher.clock import new_id, utcnow
from dispatcher.core.destinations import DestinationPolicy
from dispatcher.core.envelope import InvalidEventError, Rejection, decode_event, encode_event
from dispatcher.core.health import (
    DAY,
    MAX_STATS_RANGE,
    EndpointHealth,
    HealthFilter,
    bucket_start,
    stats_resolution,
    stats_series,
)
from dispatcher.core.models import (
    DeliveryStatus,
    DisabledReason,
    Endpoint,
    EndpointScope,
    EndpointStatus,
    Event,
    SignatureScheme,
    rfc3339,
)
from dispatcher.core.routing import Target
from dispatcher.core.scopes import Scope
from dispatcher.errors import ApiError, NotFoundError, UnknownEventTypeError
from dispatcher.store.secretbox import new_endpoint_secret, new_signing_key

TEST_EVENT_TYPE = "webhook.test"

reads = guarded(org=Scope.WEBHOOKS_READ, operator=Scope.OPS_READ)
writes = guarded(org=Scope.WEBHOOKS_WRITE, operator=None, mutating=True)


def _now() -> datetime:
    return datetime.now(UTC)


async def load_endpoint(ctx: ApiContext, principal: Principal, endpoint_id: str) -> Endpoint:
    """The endpoint, or 404 when it does not exist or belongs to an org not in reach."""
    endpoint = await ctx.store.get_endpoint(endpoint_id)
    if endpoint is None:
        raise ApiError("NOT_FOUND", "no such webhook")
    principal.check(endpoint.organization_id, "webhook")
    return endpoint


async def _refreshed(ctx: ApiContext, endpoint_id: str) -> Endpoint:
    ctx.directory.invalidate(endpoint_id)
    await ctx.directory.refresh()
    endpoint = await ctx.store.get_endpoint(endpoint_id)
    if endpoint is None:  # deleted by a concurrent request
        raise ApiError("NOT_FOUND", "no such webhook")
    return endpoint


def _policy(ctx: ApiContext) -> DestinationPolicy:
    return DestinationPolicy(allow=ctx.settings.allow_private_networks)


def _require_admin_for_firehose(principal: Principal, scope: EndpointScope | None) -> None:
    if scope is EndpointScope.ALL_CHILDREN and not principal.holds(Scope.ORG_ADMIN):
        raise ApiError("FORBIDDEN", "a firehose (scope all_children) needs the org:admin scope")


@writes
async def create_webhook(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    body = await read_body(request)
    changes = endpoint_changes(body, catalog=ctx.catalog, policy=_policy(ctx), creating=True)
    _require_admin_for_firehose(principal, changes.scope)
    template = Endpoint(
        id=new_id("ep"),
        organization_id=principal.org,
        url="",
        created_by_key_id=principal.key.id,
    )
    endpoint = changes.apply(template)
    if endpoint.signature_scheme is SignatureScheme.V1A:
        # The private key is ours alone (sealed like a secret); the public key is the
        # partner's, shown on every read.
        private_key, public_key = new_signing_key()
        endpoint = replace(endpoint, public_key=public_key)
        await ctx.store.create_endpoint(endpoint, private_key, now=_now())
        return json_response(await _shown(ctx, await _refreshed(ctx, endpoint.id)), status=201)
    secret = new_endpoint_secret()
    await ctx.store.create_endpoint(endpoint, secret, now=_now())
    stored = await _refreshed(ctx, endpoint.id)
    return json_response({**await _shown(ctx, stored), "secret": secret}, status=201)


async def _shown(ctx: ApiContext, endpoint: Endpoint) -> views.JSON:
    """The endpoint's view with its health, as every webhook response shows it."""
    found = await ctx.store.endpoint_health([endpoint.id], now=_now())
    return views.endpoint(endpoint, found.get(endpoint.id, EndpointHealth()))


@reads
async def list_webhooks(request: web.Request, principal: Principal) -> web.Response:
    """The organization's endpoints by id; with `health=failing`, its failing ones (an
    operator without X-Layers-Organization: every organization's), most recent failure
    first (see `Store.failing_endpoints` for what failing means)."""
    ctx = context(request)
    query = Query(request.query)
    limit = query.limit()
    after = query.after("ep")
    if query.choice("health", HealthFilter) is HealthFilter.FAILING:
        org = principal.organization_id
        found = await ctx.store.failing_endpoints(org, after=after, limit=limit + 1)
    else:
        found = await ctx.store.list_endpoints(principal.org, after=after, limit=limit + 1)
    health = await ctx.store.endpoint_health([e.id for e in found[:limit]], now=_now())
    return json_response(
        page(
            found,
            limit,
            lambda e: views.endpoint(e, health.get(e.id, EndpointHealth())),
            lambda e: e.id,
        )
    )


@reads
async def get_webhook(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    return json_response(await _shown(ctx, endpoint))


@reads
async def webhook_stats(request: web.Request, principal: Principal) -> web.Response:
    """Successes, failures and latency over [since, until) (default: the last 24 hours) in
    at most MAX_STATS_BUCKETS points, from the rolled-up buckets."""
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    query = Query(request.query)
    until = query.time("until") or _now()
    since = query.time("since") or until - DAY
    if since >= until:
        raise invalid("since: must be before until")
    if until - since > MAX_STATS_RANGE:
        raise invalid(f"since: the range may span at most {MAX_STATS_RANGE.days} days")
    width = stats_resolution(since, until)
    stored = await ctx.store.endpoint_stats(endpoint.id, since=bucket_start(since), until=until)
    series = stats_series(stored, since=since, until=until, width=width)
    return json_response(views.stats(series, width))


@writes
async def update_webhook(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    body = await read_body(request)
    changes = endpoint_changes(body, catalog=ctx.catalog, policy=_policy(ctx), creating=False)
    _require_admin_for_firehose(principal, endpoint.scope)
    _require_admin_for_firehose(principal, changes.scope)
    updated = changes.apply(endpoint)
    if updated.scope is EndpointScope.ALL_CHILDREN and endpoint.scope is EndpointScope.OWN:
        await ctx.store.set_endpoint_creator(endpoint.id, principal.key.id)
    try:
        await ctx.store.update_endpoint(updated, now=_now())
    except NotFoundError:
        raise ApiError("NOT_FOUND", "no such webhook") from None
    return json_response(await _shown(ctx, await _refreshed(ctx, endpoint.id)))


@writes
async def delete_webhook(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    await ctx.store.delete_endpoint(endpoint.id)
    ctx.directory.invalidate(endpoint.id)
    await ctx.directory.refresh()
    return web.Response(status=204)


@writes
async def rotate_secret(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    body = await read_body(request)
    grace = body.integer(
        "graceSeconds", default=DEFAULT_GRACE_SECONDS, minimum=0, maximum=MAX_GRACE_SECONDS
    )
    body.finish()
    now = _now()
    v1a = endpoint.signature_scheme is SignatureScheme.V1A
    secret, public_key = new_signing_key() if v1a else (new_endpoint_secret(), None)
    try:
        await ctx.store.rotate_secret(
            endpoint.id,
            secret,
            now=now,
            old_expires_at=now + timedelta(seconds=grace),
            public_key=public_key,
        )
    except NotFoundError:
        raise ApiError("NOT_FOUND", "no such webhook") from None
    stored = await _refreshed(ctx, endpoint.id)
    previous_until = rfc3339(now + timedelta(seconds=grace))
    shown = {} if v1a else {"secret": secret}  # v1a: the new public key is in the view
    return json_response(
        {**await _shown(ctx, stored), **shown, "previousSecretExpiresAt": previous_until}
    )


@writes
async def enable_webhook(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    (await read_body(request)).finish()
    await ctx.store.set_endpoint_status(endpoint.id, EndpointStatus.ENABLED, None, now=_now())
    return json_response(await _shown(ctx, await _refreshed(ctx, endpoint.id)))


@writes
async def disable_webhook(request: web.Request, principal: Principal) -> web.Response:
    """Manual disable goes through the scheduler, like 410 and auto-disable: it records
    the reason, counts it, and emits `webhook.endpoint.disabled` to the org's subscribers."""
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    (await read_body(request)).finish()
    await ctx.scheduler.disable(endpoint, DisabledReason.MANUAL)
    return json_response(await _shown(ctx, await _refreshed(ctx, endpoint.id)))


@writes
async def test_webhook(request: web.Request, principal: Principal) -> web.Response:
    """Deliver the catalog's example of a type to this endpoint only."""
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    body = await read_body(request)
    event_type = body.string("type", max_length=128) or TEST_EVENT_TYPE
    body.finish()
    if endpoint.status is not EndpointStatus.ENABLED:
        raise ApiError("CONFLICT", "the webhook is disabled; enable it before testing")
    event = _example_event(ctx, endpoint, event_type, principal)
    target = Target(endpoint=endpoint, status=DeliveryStatus.PENDING)
    result = await ctx.intake.ingest([event], router=lambda _: [target])
    deliveries = await ctx.store.list_event_deliveries(event.id)
    delivery_id = next((d.id for d in deliveries if d.id in result.created), None)
    return json_response(
        {"eventId": event.id, "type": event.type, "deliveryId": delivery_id}, status=202
    )


def _example_event(
    ctx: ApiContext, endpoint: Endpoint, event_type: str, principal: Principal
) -> Event:
    """The type's first catalog example, for this endpoint's org (and id, when it has one),
    built and checked exactly as a published event would be."""
    try:
        example = dict(ctx.catalog.examples(event_type)[0])
    except UnknownEventTypeError:
        raise invalid(f"type: {event_type!r} is not in the event catalog") from None
    if "endpointId" in example:
        example["endpointId"] = endpoint.id
    if event_type == TEST_EVENT_TYPE:
        example["requestedBy"] = {"type": "api_key", "id": principal.key.id}
    example["organizationId"] = endpoint.organization_id
    try:
        value = encode_event(
            event_type,
            endpoint.organization_id,
            example,
            catalog=ctx.catalog,
            event_id=new_id("evt"),
            created=utcnow(),
        )
    except InvalidEventError as exc:
        raise invalid(f"type: the example of {event_type} does not validate ({exc})") from None
    decoded = decode_event(value, catalog=ctx.catalog, max_bytes=ctx.settings.max_event_bytes)
    if isinstance(decoded, Rejection):
        raise invalid(f"type: the example of {event_type} is rejected ({decoded.detail})")
    return decoded


def register(app: web.Application) -> None:
    app.router.add_post("/v1/webhooks", create_webhook)
    app.router.add_get("/v1/webhooks", list_webhooks)
    app.router.add_get("/v1/webhooks/{id}", get_webhook)
    app.router.add_get("/v1/webhooks/{id}/stats", webhook_stats)
    app.router.add_patch("/v1/webhooks/{id}", update_webhook)
    app.router.add_delete("/v1/webhooks/{id}", delete_webhook)
    app.router.add_post("/v1/webhooks/{id}/rotate-secret", rotate_secret)
    app.router.add_post("/v1/webhooks/{id}/enable", enable_webhook)
    app.router.add_post("/v1/webhooks/{id}/disable", disable_webhook)
    app.router.add_post("/v1/webhooks/{id}/test", test_webhook)
