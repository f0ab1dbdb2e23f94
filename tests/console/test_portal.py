"""The console as a partner portal: a one-time link opens it with an HttpOnly cookie and no
key, changes carry the CSRF token, the page may be framed only by the organization's
origins, another organization's objects stay out of reach, and a used link is refused."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.api.harness import Api
from tests.console.browser import Tab

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka, pytest.mark.slow]

PARTNER = "https://dashboard.partner.example"


async def test_a_portal_link_opens_the_console_for_its_organization_only(
    api: Api, tab: Tab, browser: Browser
) -> None:
    """Opening the link shows the organization's endpoints with no key stored and no cookie
    visible to script; a test event is sent (the CSRF header works); frame-ancestors names the
    organization's origin; a sibling's endpoint is not found; the link works once; ending
    the session ends it."""
    parent = await api.org("portalparent")
    org = await api.org("portal", parent=parent)
    sibling = await api.org("portalsibling", parent=parent)
    admin = await api.writer(org, ",org:admin")
    sibling_key = await api.writer(sibling)
    _, platform = await api.key(None, "platform:orgs")
    origins = await api.call(
        "PATCH", f"/v1/organizations/{org}/portal", platform, {"portalOrigins": [PARTNER]}
    )
    assert origins.status == 200, origins.body
    page = tab.page
    async with (
        api.hooked(admin, description="Partner endpoint") as (receiver, _),
        api.hooked(sibling_key, description="Sibling endpoint") as (_, elsewhere),
    ):
        minted = await api.call(
            "POST",
            "/v1/portal-sessions",
            admin,
            {"ttlSeconds": 600, "scopes": ["webhooks:read", "webhooks:write"]},
        )
        assert minted.status == 201, minted.body
        opened = await page.goto(minted.body["url"])
        assert opened is not None
        assert page.url.endswith("/console/")
        policy = opened.headers["content-security-policy"]
        assert policy.endswith(f"frame-ancestors {PARTNER}")
        await expect(page.get_by_role("heading", name="Endpoints", exact=True)).to_be_visible()
        await expect(page.get_by_text(f"{org} · portal")).to_be_visible()
        await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
        assert await page.evaluate("document.cookie") == ""
        assert await page.evaluate("JSON.stringify(sessionStorage)") == "{}"

        await page.get_by_role("link", name="Partner endpoint").click()
        await page.get_by_role("button", name="Send test event").click()
        await expect(page.get_by_role("link", name=re.compile("^delivery dlv_"))).to_be_visible()
        assert await receiver.wait_until(lambda r: r.arrived >= 1, 30)

        await tab.open(f"#/endpoints/{elsewhere['id']}")
        await expect(page.get_by_role("alert")).to_have_text("NOT_FOUND: no such webhook")

        again = await browser.new_page()
        try:
            refused = await again.goto(minted.body["url"])
            assert refused is not None
            assert refused.status == 410
            await expect(again.get_by_text("This portal link cannot be used")).to_be_visible()
        finally:
            await again.close()

        await page.get_by_role("button", name="End session").click()
        await expect(page.get_by_role("heading", name="Your session has ended")).to_be_visible()
        await page.reload()
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    tab.assert_clean(allowed_console=("status of 404",))
