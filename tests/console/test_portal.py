"""The partner portal in a real browser: a link opens the console once, signed in to one
organization only, with an HttpOnly cookie; the portal shows in a frame on an origin the
organization lists, and the browser refuses to show it in a frame anywhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from playwright.async_api import expect

from tests.api.harness import PLACEHOLDER_URL, Api
from tests.console.browser import Tab

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = "webhooks:read,webhooks:write,org:admin"


async def family_link(api: Api) -> tuple[str, str, str]:
    """A parent with a firehose and two children with an endpoint each; returns the child
    c1, the parent's admin key and a read-only portal link of c1."""
    parent = await api.org("pp")
    c1, c2 = await api.org("pc1", parent), await api.org("pc2", parent)
    admin = (await api.key(parent, ADMIN))[1]
    await api.create(admin, {"url": PLACEHOLDER_URL, "description": "Child one feed"}, org=c1)
    await api.create(admin, {"url": PLACEHOLDER_URL, "description": "Sibling feed"}, org=c2)
    hose = {"url": PLACEHOLDER_URL, "description": "Parent firehose", "scope": "all_children"}
    await api.create(admin, hose)
    return c1, admin, await mint(api, admin, c1)


async def mint(api: Api, admin: str, org: str) -> str:
    body = {"scopes": ["webhooks:read"], "organizationId": org}
    minted = await api.call("POST", "/v1/portal-sessions", admin, body)
    assert minted.status == 201, minted.body
    url: str = minted.body["url"]
    return url


@asynccontextmanager
async def framing_page(link: str) -> AsyncIterator[str]:
    """A partner's dashboard on another port of 127.0.0.1 (the same site), framing `link`."""

    async def page(request: web.Request) -> web.Response:
        html = (
            f'<!doctype html><title>Dashboard</title><iframe title="portal" src="{link}"></iframe>'
        )
        return web.Response(text=html, content_type="text/html")

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/favicon.ico", no_icon)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_portal_link_opens_the_console_once_for_one_organization(
    api: Api, tab: Tab
) -> None:
    """Opening the link lands on the console showing the child's endpoint and neither the
    sibling's nor the parent's firehose; the cookie is out of script's reach and the token
    out of the address bar; opening the link again shows the plain page."""
    _, _, link = await family_link(api)
    page = tab.page
    await page.goto(link)
    await expect(page.get_by_role("link", name="Child one feed")).to_be_visible()
    await expect(page.get_by_role("link", name="Sibling feed")).to_have_count(0)
    await expect(page.get_by_role("link", name="Parent firehose")).to_have_count(0)
    assert "lw_portal" not in await page.evaluate("document.cookie")
    assert page.url == f"{api.url}/console/"
    await page.goto(link)
    await expect(
        page.get_by_role("heading", name="This portal link cannot be used")
    ).to_be_visible()
    tab.assert_clean(allowed_console=("410",))


async def test_the_portal_shows_in_a_frame_only_on_a_listed_origin(api: Api, tab: Tab) -> None:
    """A dashboard on an origin the organization lists shows the portal in its frame; a
    dashboard on another origin gets the frame refused by the browser (frame-ancestors)."""
    c1, admin, link = await family_link(api)
    async with framing_page(link) as listed, framing_page(await mint(api, admin, c1)) as other:
        path = f"/v1/organizations/{c1}/portal"
        patched = await api.call("PATCH", path, admin, {"portalOrigins": [listed]})
        assert patched.status == 200, patched.body
        await tab.page.goto(listed)
        frame = tab.page.frame_locator('iframe[title="portal"]')
        await expect(frame.get_by_role("link", name="Child one feed")).to_be_visible()
        tab.assert_clean()
        async with tab.page.expect_console_message(
            lambda message: "frame-ancestors" in message.text
        ) as refused:
            await tab.page.goto(other)
        text = (await refused.value).text
        assert f'"frame-ancestors {listed}"' in text
        assert "blocked" in text
