"""The aiohttp application: request ids, the error shape, and route registration.

Every response carries `x-request-id`; every error is
`{"error": {"code": "VALIDATION", "message": "…", "requestId": "req_…"}}` with the stable
codes of DESIGN.md §7. Request bodies are capped at `MAX_BODY_BYTES` (413). The `/v1` routes
live one resource per module (webhooks, deliveries, replays, events, orgs, dead letters);
`auth.py` guards them and `validation.py` parses what they receive. The OpenAPI document,
`schemas/openapi.yaml`, describes every route and is served at `GET /v1/openapi.yaml`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web

from dispatcher.catalog import Catalog
from dispatcher.directory import Directory
from dispatcher.ids import new_id
from dispatcher.intake import Intake
from dispatcher.metrics import Metrics
from dispatcher.replay import ReplayRunner
from dispatcher.scheduler import Scheduler
from dispatcher.settings import Settings
from dispatcher.store import Store, StoreUnavailableError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiContext:
    settings: Settings
    store: Store
    directory: Directory
    scheduler: Scheduler
    intake: Intake
    catalog: Catalog
    metrics: Metrics
    kafka_status: Callable[[], Awaitable[str]]  # `ok`, or why Kafka is not usable
    # Woken when a bulk replay job is created (None: jobs wait for the runner's next look).
    replays: ReplayRunner | None = None


MAX_BODY_BYTES = 64 * 1024

CONTEXT = web.AppKey("context", ApiContext)
REQUEST_ID = web.RequestKey("request_id", str)

STATUS_CODES = {
    "VALIDATION": 422,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
}


class ApiError(Exception):
    """Raised by handlers; rendered as the error shape with its stable code."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def json_response(data: object, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(code: str, message: str, request_id: str) -> web.Response:
    body = {"error": {"code": code, "message": message, "requestId": request_id}}
    return json_response(body, status=STATUS_CODES[code])


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


def create_app(context: ApiContext) -> web.Application:
    from dispatcher.api import (
        auth,
        dead_letters,
        deliveries,
        events,
        ops,
        orgs,
        replays,
        webhooks,
    )

    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY_BYTES)
    app[CONTEXT] = context
    app[auth.RATE_LIMITER] = auth.RateLimiter(rate=float(context.settings.api_rate_limit))
    for module in (ops, webhooks, deliveries, replays, events, orgs, dead_letters):
        module.register(app)
    return app
