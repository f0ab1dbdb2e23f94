"""The console suite: one running service per module (SQLite, a real Tansu broker, a real
port) and Debian's chromium driven by Playwright — launched by path, never downloaded.

Locally the browser tests skip when chromium is absent (`make install` installs it); with
CI=true they fail instead (tests/conftest.py::unavailable).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.api.harness import Api, running_api
from tests.conftest import unavailable
from tests.console.browser import Tab


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
) -> AsyncIterator[Api]:
    env = getattr(request.module, "STACK_ENV", {})
    directory = str(tmp_path_factory.mktemp("console"))
    async with running_api("sqlite", directory, kafka_bootstrap, env) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        unavailable("chromium", "not installed (make install installs it with apt)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser, api: Api) -> AsyncIterator[Tab]:
    """A fresh browser context at desktop width, recording dialogs, console errors and page
    errors; the test ends by checking none of them happened."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, base_url=api.url)
    try:
        page = await context.new_page()
        opened = Tab(page=page, base_url=api.url)
        opened.watch()
        yield opened
    finally:
        await context.close()
