"""`webhooks dev` as a new user meets it: the printed console URL serves the console and the
printed organization key signs in to it."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from devtools.demo import run_dev

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka, pytest.mark.slow]

WAIT = 60.0  # seconds for the stack to print its banner (a bound)


async def test_dev_prints_the_console_url_and_its_key_signs_in(
    tmp_path: Path, kafka_bootstrap: str, browser: Browser
) -> None:
    """The banner names /console/; opening it and signing in with the org key printed for
    `endpoints create` shows the (empty) endpoints page."""
    out = io.StringIO()
    environ = {
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "WEBHOOKS_KAFKA_TOPICS": f"dev-{uuid.uuid4().hex[:10]}",
        "WEBHOOKS_KAFKA_GROUP": f"dev-{uuid.uuid4().hex[:10]}",
        "WEBHOOKS_HTTP_PORT": "0",
    }
    dev = asyncio.create_task(run_dev(environ, out, state=tmp_path / "state"))
    try:
        for _ in range(int(WAIT * 10)):
            if "Console:" in out.getvalue() or dev.done():
                break
            await asyncio.sleep(0.1)
        banner = out.getvalue()
        console = re.search(r"Console: (http://127\.0\.0\.1:\d+/console/)", banner)
        org_key = re.search(r"WEBHOOKS_API_KEY=(\S+) \\", banner)
        assert console is not None, banner
        assert org_key is not None, banner
        page = await browser.new_page()
        try:
            await page.goto(console.group(1))
            await page.get_by_label("API key").fill(org_key.group(1))
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Endpoints", exact=True)).to_be_visible()
            await expect(page.get_by_text("org_dev · dev")).to_be_visible()
            await expect(page.get_by_text("No endpoints yet.")).to_be_visible()
        finally:
            await page.close()
    finally:
        dev.cancel()
        await asyncio.gather(dev, return_exceptions=True)
