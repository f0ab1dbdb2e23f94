"""Partner- and publisher-controlled text is shown as text: a receiver's response body,
an endpoint's description and metadata, and an event's data never become markup."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from devtools import receivers
from tests.api.harness import Api, eventually
from tests.console.browser import Tab
from tests.e2e.harness import envelope

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka, pytest.mark.slow]

STACK_ENV = {"WEBHOOKS_RETRY_SCHEDULE": "100ms,1h", "WEBHOOKS_BREAKER_THRESHOLD": "1000"}

EXCERPT = "<img src=x onerror=alert(1)>"
DESCRIPTION = "<img src=x onerror=alert('description')>"
METADATA = {"note": "<script>alert('metadata')</script>", "<b>team</b>": "<i>payments</i>"}
TITLE = "<svg onload=alert('event')>"

# Everything that could have been injected: images, scripts besides the console's own
# module, inline frames, SVG from data, and formatting elements from the payloads.
INJECTED = "img, iframe, svg:not(figure svg), b, i, script:not([src='js/main.js'])"


async def test_markup_from_partners_and_publishers_is_shown_as_text(api: Api, tab: Tab) -> None:
    """The endpoint, delivery and event pages show each payload's characters as text; no
    dialog opens, no element is injected, and no CSP violation is reported."""
    org = await api.org("xss")
    key = await api.writer(org)
    page = tab.page
    async with api.hooked(
        key, receivers.status(500, body=EXCERPT), description=DESCRIPTION, metadata=METADATA
    ) as (receiver, endpoint):
        event_id, body = envelope(org, data={"title": TITLE})
        await api.stack.publish(body, key=org)
        assert await receiver.wait_until(lambda r: r.arrived >= 2, 30)

        await tab.sign_in(key)
        await expect(page.get_by_role("link", name=DESCRIPTION)).to_be_visible()
        await page.get_by_role("link", name=DESCRIPTION).click()
        await expect(page.get_by_role("heading", name=DESCRIPTION)).to_be_visible()
        for name, value in METADATA.items():
            await expect(page.get_by_role("listitem").filter(has_text=name)).to_have_text(
                f"{name}: {value}"
            )
        assert await page.locator(INJECTED).count() == 0

        path = f"/v1/webhooks/{endpoint['id']}/deliveries"

        async def delivered() -> bool:
            return bool((await api.call("GET", path, key)).body["data"])

        assert await eventually(delivered)
        delivery = (await api.call("GET", path, key)).body["data"][0]
        await tab.open(f"#/deliveries/{delivery['id']}")
        excerpts = page.get_by_role("table", name="Attempts").locator("pre")
        await expect(excerpts.first).to_have_text(EXCERPT)
        await expect(page.get_by_label("Event data")).to_contain_text(TITLE)
        assert await page.locator(INJECTED).count() == 0
        assert event_id == delivery["eventId"]
    assert tab.dialogs == []
    tab.assert_clean()
