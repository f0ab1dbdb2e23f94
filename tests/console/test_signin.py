"""Signing in to the console: the key stays in this tab's sessionStorage and nowhere else."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from devtools import receivers
from tests.api.harness import Api
from tests.console.browser import Tab

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

STORED = "sessionStorage.getItem('layers-webhooks.api-key')"


async def test_sign_in_shows_endpoints_and_keeps_the_key_out_of_urls_and_cookies(
    api: Api, tab: Tab
) -> None:
    """Signing in with a key lists the organization's endpoints; the key is in
    sessionStorage only (not the URL, a cookie or the page), and signing out forgets it."""
    org = await api.org("signin")
    key = await api.writer(org)
    async with (
        api.hooked(key, description="Orders feed"),
        api.hooked(key, receivers.status(500), description="Billing feed"),
    ):
        await tab.sign_in(key)
        page = tab.page
        await expect(page.get_by_role("heading", name="Endpoints", exact=True)).to_be_visible()
        await expect(page.get_by_role("link", name="Orders feed")).to_be_visible()
        await expect(page.get_by_role("link", name="Billing feed")).to_be_visible()
        assert await page.evaluate(STORED) == key
        assert await tab.key_leaks(key) == []
        await page.reload()  # the session survives a reload of the tab
        await expect(page.get_by_role("link", name="Orders feed")).to_be_visible()
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert await page.evaluate(STORED) is None
    tab.assert_clean()


async def test_a_wrong_key_is_refused_with_a_message(api: Api, tab: Tab) -> None:
    """An unknown key is not stored and the page says it was not accepted."""
    await tab.page.goto("/console/")
    await tab.page.get_by_label("API key").fill("whk_live_notarealkey")
    await tab.page.get_by_role("button", name="Sign in").click()
    await expect(tab.page.get_by_role("alert")).to_have_text("That API key was not accepted.")
    assert await tab.page.evaluate(STORED) is None
    tab.assert_clean()


async def test_a_deep_link_opens_after_signing_in(api: Api, tab: Tab) -> None:
    """A link to an endpoint opened before signing in shows that endpoint after it."""
    org = await api.org("deeplink")
    key = await api.writer(org)
    async with api.hooked(key, description="Deep link target") as (_, endpoint):
        await tab.sign_in(key, f"#/endpoints/{endpoint['id']}")
        await expect(tab.page.get_by_role("heading", name="Deep link target")).to_be_visible()
    tab.assert_clean(allowed_console=("404",))


async def test_keyboard_sign_in_at_phone_width(api: Api, browser: Browser) -> None:
    """At 390 px a keyboard alone signs in (the key field has focus, Enter submits), focus
    moves to the page's heading, and the page never scrolls sideways (tables scroll inside
    their own focusable box)."""
    org = await api.org("phone")
    key = await api.writer(org)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, base_url=api.url)
    try:
        page = await context.new_page()
        async with api.hooked(key, description="Phone feed"):
            await page.goto("/console/")
            await expect(page.get_by_label("API key")).to_be_focused()
            await page.keyboard.type(key)
            await page.keyboard.press("Enter")
            heading = page.get_by_role("heading", name="Endpoints", exact=True)
            await expect(heading).to_be_focused()
            await expect(page.get_by_role("link", name="Phone feed")).to_be_visible()
            overflow = "document.documentElement.scrollWidth - window.innerWidth"
            assert await page.evaluate(overflow) <= 0
            await page.keyboard.press("Tab")  # from the heading into the table's scroll box
            await page.keyboard.press("Tab")
            await expect(page.get_by_role("link", name="Phone feed")).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("heading", name="Phone feed")).to_be_focused()
            assert await page.evaluate(overflow) <= 0
    finally:
        await context.close()
