"""What every route shares: the `ApiContext`, the `ApiError` a handler raises, and the JSON
response helpers. Routes import this module, never `app.py` (which imports the routes).

Every error is `{"error": {"code": "VALIDATION", "message": "…", "requestId": "req_…"}}`
with the stable codes of docs/design.md §7.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web

from dispatcher.core.catalog import Catalog
from dispatcher.engine.directory import Directory
from dispatcher.engine.intake import Intake
from dispatcher.engine.replay import ReplayRunner
from dispatcher.engine.scheduler import Scheduler
from dispatcher.metrics import Metrics
from dispatcher.settings import Settings
from dispatcher.store import Store

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
    # How many replicas share the per-key API rate limit (1: this process alone).
    replicas: Callable[[], int] = lambda: 1


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


def json_response(data: object, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(code: str, message: str, request_id: str) -> web.Response:
    body = {"error": {"code": code, "message": message, "requestId": request_id}}
    return json_response(body, status=STATUS_CODES[code])
