"""The `/v1` routes, one resource per module, plus health, readiness and metrics."""
