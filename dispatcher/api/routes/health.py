"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatcher.api.context import CONTEXT, json_response
from dispatcher.errors import StoreUnavailableError


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the store answers and the Kafka cluster is reachable."""
    context = request.app[CONTEXT]
    checks: dict[str, str] = {}
    try:
        await context.store.ping()
        checks["store"] = "ok"
    except StoreUnavailableError as exc:
        checks["store"] = f"unavailable: {exc}"
    checks["kafka"] = await context.kafka_status()
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[CONTEXT].metrics.exposed
    response = web.Response(body=generate_latest(registry))
    response.headers["content-type"] = CONTENT_TYPE_LATEST
    return response


def register(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
