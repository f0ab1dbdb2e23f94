"""The aiohttp application: request ids, the error shape, and route registration.

Every response carries `x-request-id`; every error is rendered by `errors_middleware` in the
shape and with the stable codes of docs/design.md §7. Request bodies are capped at
`MAX_BODY_BYTES` (413). The `/v1` routes live one resource per module in `routes/`;
`auth.py` guards them and `validation.py` parses what they receive. The OpenAPI document,
`schemas/openapi.yaml`, describes every route and is served at `GET /v1/openapi.yaml`.
"""

from __future__ import annotations

import logging

from aiohttp import web, web_response

from dispatcher.api import auth, security
from dispatcher.api.context import (
    CONTEXT,
    MAX_BODY_BYTES,
    REQUEST_ID,
    ApiContext,
    Handler,
    error_response,
)
from dispatcher.api.routes import (
    console,
    dead_letters,
    deliveries,
    events,
    health,
    orgs,
    portal,
    replays,
    webhooks,
)
from dispatcher.clock import new_id
from dispatcher.errors import ApiError, StoreUnavailableError

log = logging.getLogger(__name__)


def _route_label(request: web.Request) -> str:
    """The route's template (`/v1/webhooks/{id}`), never the concrete path (cardinality)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = new_id("req")
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc.code, exc.message, request_id)
        response.headers.update(exc.headers)
    except web.HTTPNotFound:
        response = error_response("NOT_FOUND", "no such route", request_id)
    except web.HTTPMethodNotAllowed as exc:
        response = error_response(
            "METHOD_NOT_ALLOWED", f"{exc.method} is not allowed here", request_id
        )
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    except web.HTTPRequestEntityTooLarge:
        response = error_response(
            "PAYLOAD_TOO_LARGE", f"request body over {MAX_BODY_BYTES} bytes", request_id
        )
    except web.HTTPException as exc:  # aiohttp's own refusals (a malformed request, say)
        code = "VALIDATION" if exc.status < 500 else "INTERNAL"
        response = error_response(code, exc.reason, request_id)
    except StoreUnavailableError:
        # An outage, not a bug: say so, and when to come back.
        log.warning("store unavailable for an API request", extra={"request_id": request_id})
        response = error_response("UNAVAILABLE", "the store is unavailable", request_id)
        response.headers["Retry-After"] = "5"
    except Exception:
        log.exception("unhandled API error", extra={"request_id": request_id})
        response = error_response("INTERNAL", "internal error", request_id)
    response.headers["x-request-id"] = request_id
    context = request.app[CONTEXT]
    context.metrics.api_requests.labels(_route_label(request), f"{response.status // 100}xx").inc()
    return response


SERVER = "layers-webhooks"  # the Server header: never the Python or aiohttp version
# aiohttp answers bytes that are not HTTP (its parser's 400) before any route, middleware or
# signal runs, with the Server header it takes from this module constant.
web_response.SERVER_SOFTWARE = SERVER  # type: ignore[attr-defined] # imported, not exported


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER


def create_app(context: ApiContext) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY_BYTES)
    app.on_response_prepare.append(_server_header)  # every response: errors, /metrics too
    app[CONTEXT] = context
    app[auth.RATE_LIMITER] = auth.RateLimiter(
        rate=float(context.settings.api_rate_limit), replicas=context.replicas
    )
    security.install(app)
    modules = (health, webhooks, deliveries, replays, events, orgs, dead_letters, portal, console)
    for module in modules:
        module.register(app)
    return app
