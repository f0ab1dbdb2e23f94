"""The HTTP surface: the `/v1` API, health, readiness and metrics (aiohttp server).

`app.create_app` builds the application from an `context.ApiContext`.
"""
