"""The OpenAPI document: valid OpenAPI 3.1, served by the API, in step with the routes, and
not contradicted by the live service under a bounded schemathesis run."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from dispatcher.api.app import create_app
from dispatcher.api.context import ApiContext
from tests.api.harness import Api

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

SPEC = Path(__file__).resolve().parents[2] / "schemas" / "openapi.yaml"
STACK_ENV = {"WEBHOOKS_API_RATE_LIMIT": "10000"}  # schemathesis writes fast
METHODS = {"get", "put", "post", "patch", "delete"}
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    return loaded


async def test_the_document_is_valid_openapi_3_1() -> None:
    """schemas/openapi.yaml passes the OpenAPI 3.1 validator."""
    spec = document()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def _console(path: str) -> bool:
    """The web console's pages and files (the README's Console section), not the API; the
    portal's link route is described."""
    if path.startswith("/console/portal/"):
        return False
    return path in {"/", "/console"} or path.startswith("/console/")


async def test_every_route_is_described_and_every_description_is_a_route(api: Api) -> None:
    """The app's routes, except the console's, and the document's operations are the same
    set, and the document is served at GET /v1/openapi.yaml without a key."""
    running = api.stack.running

    async def ready() -> str:
        return "ok"

    app = create_app(
        ApiContext(
            settings=api.stack.service.settings,
            store=running.store,
            directory=running.directory,
            scheduler=running.scheduler,
            intake=running.intake,
            catalog=running.catalog,
            metrics=running.metrics,
            kafka_status=ready,
        )
    )
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method.lower() in METHODS
        and not _console(route.resource.canonical)
    }
    described = {
        (method, path)
        for path, operations in document()["paths"].items()
        for method in operations
        if method in METHODS
    }
    assert served == described
    reply = await api.session.get("/v1/openapi.yaml")
    assert (reply.status, await reply.read()) == (200, SPEC.read_bytes())


@pytest.mark.parametrize(
    ("owner", "scopes"),
    [
        ("org", "webhooks:read,webhooks:write,org:admin"),
        (None, "ops:read,ops:replay,platform:orgs"),
    ],
)
async def test_schemathesis_finds_no_server_error_and_no_contradiction(
    api: Api, tmp_path: Path, owner: str | None, scopes: str
) -> None:
    """A bounded schemathesis run (examples, coverage and fuzzing phases, five examples per
    operation, fixed seed) with an organization key and with an operator key reports no
    5xx and no response that contradicts the document (statuses, content types, headers,
    bodies)."""
    org = None if owner is None else await api.org("fuzz")
    _, key = await api.key(org, scopes)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(SPEC),
        "--url",
        api.url,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "5",
        "--seed",
        "20260609",
        # One worker: hypothesis parses lambdas' source with `ast`, and CPython 3.11's
        # AST constructor is not safe across threads ("recursion depth mismatch").
        "--workers",
        "1",
        "--no-color",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 110)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    operations = sum(
        method in METHODS for operations in document()["paths"].values() for method in operations
    )
    assert f"Tested: {operations}" in text, text[-3000:]
