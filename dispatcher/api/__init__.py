"""The HTTP surface: the `/v1` API, health, readiness and metrics (aiohttp server)."""

from dispatcher.api.app import ApiContext, create_app

__all__ = ["ApiContext", "create_app"]
