"""The aiohttp application: request ids, the error shape, and route registration.

Every response carries `x-request-id`; every error is
`{"error": {"code": "VALIDATION", "message": "…", "requestId": "req_…"}}` with the stable
codes of DESIGN.md §7.
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
from dispatcher.scheduler import Scheduler
from dispatcher.settings import Settings
from dispatcher.store import Store

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
    kafka_ready: Callable[[], Awaitable[bool]]


CONTEXT = web.AppKey("context", ApiContext)
REQUEST_ID = web.RequestKey("request_id", str)

STATUS_CODES = {
    "VALIDATION": 422,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
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
        response = error_response("NOT_FOUND", f"{exc.method} is not allowed here", request_id)
        response.set_status(405)
    except web.HTTPRequestEntityTooLarge:
        response = error_response("PAYLOAD_TOO_LARGE", "request body too large", request_id)
    except Exception:
        log.exception("unhandled API error", extra={"request_id": request_id})
        response = error_response("INTERNAL", "internal error", request_id)
    response.headers["x-request-id"] = request_id
    return response


def create_app(context: ApiContext) -> web.Application:
    from dispatcher.api import ops

    app = web.Application(middlewares=[errors_middleware], client_max_size=1024 * 1024)
    app[CONTEXT] = context
    ops.register(app)
    return app
