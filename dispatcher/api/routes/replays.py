"""Bulk replay (docs/design.md §6): `POST /v1/webhooks/{id}/replay`, `GET /v1/replays/{id}`
and the list of jobs, `GET /v1/replays` (newest first; an organization's own, or for
operators every organization's unless they name one).

The body `{since, until?, status?, types?, dryRun?, reason?}` selects the endpoint's
deliveries created in [since, until) with one of the statuses (default `["failed"]`) and
types. A dry run answers the count; otherwise the matching deliveries are snapshotted into
a job that `dispatcher.engine.replay.ReplayRunner` drains at WEBHOOKS_REPLAY_RATE. Submitting the
same filter while its job is queued or running returns that job (200) instead of a new one
(202), so a retried request never doubles the traffic.

Operators (`ops:replay`) may replay any organization's endpoint; they may add
`organizationId`, which must be the endpoint's organization (a guard against replaying the
wrong tenant). For an organization key the organization always comes from the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from dispatcher import tracing
from dispatcher.api import views
from dispatcher.api.auth import Principal, context
from dispatcher.api.context import json_response
from dispatcher.api.routes.deliveries import replays
from dispatcher.api.routes.webhooks import load_endpoint, reads
from dispatcher.api.validation import (
    ORG_ID,
    Body,
    Query,
    event_type_list,
    invalid,
    page,
    read_body,
    reason,
    resource_id,
)
from dispatcher.clock import new_id
from dispatcher.core.catalog import Catalog
from dispatcher.core.models import DeliveryStatus
from dispatcher.errors import ApiError
from dispatcher.store.records import ReplayFilter


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkReplay:
    selection: ReplayFilter
    dry_run: bool
    reason: str
    organization_id: str | None  # an operator's guard


def parse_bulk_replay(
    body: Body, *, endpoint_id: str, catalog: Catalog, operator: bool
) -> BulkReplay:
    since = body.time("since", required=True)
    until = body.time("until")
    if since is not None and until is not None and until <= since:
        raise invalid("until: must be later than since")
    names = body.strings("status")
    if names is not None and not names:
        raise invalid("status: name at least one status")
    statuses = []
    for index, name in enumerate(names or ["failed"]):
        try:
            statuses.append(DeliveryStatus(name))
        except ValueError:
            known = ", ".join(s.value for s in DeliveryStatus)
            raise invalid(f"status[{index}]: must be one of {known}") from None
    types = body.strings("types")
    if types is not None and not types:
        raise invalid("types: name at least one type, or leave it out for every type")
    organization_id = body.string("organizationId", max_length=80)
    if organization_id is not None and not operator:
        raise invalid("organizationId: the organization comes from the API key")
    if organization_id is not None and not ORG_ID.match(organization_id):
        raise invalid("organizationId: not an organization id (org_…)")
    parsed = BulkReplay(
        selection=ReplayFilter(
            endpoint_id=endpoint_id,
            since=since,
            until=until,
            statuses=frozenset(statuses),
            types=None if types is None else event_type_list(types, catalog, "types"),
        ),
        dry_run=body.boolean("dryRun", default=False),
        reason=reason(body),
        organization_id=organization_id,
    )
    body.finish()
    return parsed


@replays
async def replay_endpoint(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    endpoint = await load_endpoint(ctx, principal, resource_id(request, "webhook"))
    body = await read_body(request)
    bulk = parse_bulk_replay(
        body, endpoint_id=endpoint.id, catalog=ctx.catalog, operator=principal.operator
    )
    if bulk.organization_id not in (None, endpoint.organization_id):
        raise ApiError("NOT_FOUND", f"no such webhook in {bulk.organization_id}")
    selection = bulk.selection
    if bulk.dry_run:
        count = await ctx.store.count_deliveries(
            endpoint.id,
            statuses=selection.statuses,
            types=selection.types,
            since=selection.since,
            until=selection.until,
        )
        return json_response({"dryRun": True, "count": count})
    with tracing.replay("bulk", {"webhooks.endpoint_id": endpoint.id}) as span:
        job, created = await ctx.store.create_replay_job(
            job_id=new_id("rpl"),
            organization_id=endpoint.organization_id,
            filter=selection,
            actor=principal.key.id,
            reason=bulk.reason,
            now=datetime.now(UTC),
        )
        span.note(
            {
                "webhooks.replay_job_id": job.id,
                "webhooks.replay.total": job.total,
                "webhooks.replay.created": created,
            }
        )
    if created and ctx.replays is not None:
        ctx.replays.wake()
    return json_response(views.replay_job(job), status=202 if created else 200)


@reads
async def get_replay(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    job = await ctx.store.get_replay_job(resource_id(request, "replay"))
    if job is None:
        raise ApiError("NOT_FOUND", "no such replay")
    principal.check(job.organization_id, "replay")
    return json_response(views.replay_job(job))


@reads
async def list_replays(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    query = Query(request.query)
    limit = query.limit()
    found = await ctx.store.list_replay_jobs(
        organization_id=principal.organization_id, after=query.after("rpl"), limit=limit + 1
    )
    return json_response(page(found, limit, views.replay_job, lambda job: job.id))


def register(app: web.Application) -> None:
    app.router.add_post("/v1/webhooks/{id}/replay", replay_endpoint)
    app.router.add_get("/v1/replays", list_replays)
    app.router.add_get("/v1/replays/{id}", get_replay)
