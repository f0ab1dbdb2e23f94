"""`GET /v1/events/{id}`, the catalog at `GET /v1/event-types`, and the API's own
description at `GET /v1/openapi.yaml`.

An organization sees an event of its own, or one delivered to one of its endpoints (a
parent's firehose receives its children's events), and only its own deliveries of it.
"""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from dispatcher.api import views
from dispatcher.api.auth import Principal, context, guarded
from dispatcher.api.context import json_response
from dispatcher.api.routes.deliveries import endpoint_organization
from dispatcher.api.routes.webhooks import reads
from dispatcher.api.validation import resource_id
from dispatcher.errors import ApiError

# The wheel ships schemas/ inside the package; a source checkout reads the repository's.
_PACKAGED = Path(__file__).resolve().parents[2] / "schemas" / "openapi.yaml"
_SOURCE = Path(__file__).resolve().parents[3] / "schemas" / "openapi.yaml"


@functools.cache
def openapi_document() -> bytes:
    return (_PACKAGED if _PACKAGED.is_file() else _SOURCE).read_bytes()


@reads
async def get_event(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    event = await ctx.store.get_event(resource_id(request, "event"))
    if event is None:
        raise ApiError("NOT_FOUND", "no such event")
    deliveries = await ctx.store.list_event_deliveries(event.id)
    visible = []
    for delivery in deliveries:
        org = await endpoint_organization(ctx, delivery.endpoint_id)
        if org is not None and principal.sees(org):
            visible.append(delivery)
    if not principal.sees(event.organization_id) and not visible:
        raise ApiError("NOT_FOUND", "no such event")
    return json_response({**views.event(event), "deliveries": [views.delivery(d) for d in visible]})


@guarded(org=None, operator=None, any_scope=True)
async def event_types(request: web.Request, principal: Principal) -> web.Response:
    catalog = context(request).catalog
    data = []
    for name in catalog.types:
        schema = catalog.schema(name)
        data.append(
            {
                "type": name,
                "title": schema.get("title", ""),
                "description": schema.get("description", ""),
                "schema": schema,
                "examples": list(catalog.examples(name)),
            }
        )
    return json_response({"data": data, "nextCursor": None})


async def openapi(request: web.Request) -> web.Response:
    """Public: the description of this API (no key needed to read the docs)."""
    return web.Response(body=openapi_document(), content_type="application/yaml")


def register(app: web.Application) -> None:
    app.router.add_get("/v1/events/{id}", get_event)
    app.router.add_get("/v1/event-types", event_types)
    app.router.add_get("/v1/openapi.yaml", openapi)
