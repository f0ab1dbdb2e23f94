"""The console's files: served at /console/ with the security headers, shipped in the wheel."""

from __future__ import annotations

import pytest

from dispatcher.api.routes.console import load_files
from tests.api.harness import Api

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

STRICT = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def test_root_redirects_to_the_console(api: Api) -> None:
    """`GET /` and `GET /console` redirect to `/console/`."""
    for path in ("/", "/console"):
        async with api.session.get(path, allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (302, "/console/")


async def test_console_files_carry_the_strict_policy_and_revalidate(api: Api) -> None:
    """Every console file is served with the strict CSP, no-cache and an ETag that
    answers 304 while the file is unchanged."""
    for name in load_files():
        async with api.session.get("/console/" + name) as response:
            assert response.status == 200, name
            assert response.headers["Content-Security-Policy"] == STRICT
            assert response.headers["Cache-Control"] == "no-cache"
            etag = response.headers["ETag"]
        async with api.session.get("/console/" + name, headers={"If-None-Match": etag}) as again:
            assert again.status == 304, name


async def test_every_response_says_nosniff_and_no_referrer(api: Api) -> None:
    """API answers, errors and console files all carry nosniff and no-referrer."""
    for path in ("/console/", "/console/js/main.js", "/v1/webhooks", "/healthz", "/nope"):
        async with api.session.get(path) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            assert response.headers["Referrer-Policy"] == "no-referrer", path


async def test_the_page_and_modules_have_the_right_types(api: Api) -> None:
    """The page is HTML, the modules JavaScript, the stylesheet CSS (nosniff needs them)."""
    expected = {
        "": "text/html",
        "js/main.js": "text/javascript",
        "console.css": "text/css",
    }
    for name, content_type in expected.items():
        async with api.session.get("/console/" + name) as response:
            assert response.content_type == content_type
