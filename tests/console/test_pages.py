"""Every page's main action in a real browser, against a live service delivering to real
receivers on 127.0.0.1: find the failing endpoint, see why its deliveries wait, bulk
replay them and watch them succeed; replay one; send a test event; rotate the secret;
disable and enable."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Locator, expect

from devtools.receivers import Behaviour
from tests.api.harness import Api, eventually
from tests.console.browser import Tab

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka, pytest.mark.slow]

STACK_ENV = {
    # Three attempts: a failure, another 100 ms later, then a wait of an hour — so a
    # failing endpoint's deliveries sit pending with a reason the console can show.
    "WEBHOOKS_RETRY_SCHEDULE": "100ms,1h",
    "WEBHOOKS_BREAKER_THRESHOLD": "1000",
}


def switchable(state: dict[str, int]) -> Behaviour:
    """Answer `state["code"]`, changeable while the receiver runs."""

    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        return web.Response(status=state["code"], text=f"answered {state['code']}")

    return answer


async def deliveries(api: Api, key: str, endpoint_id: str) -> list[dict[str, Any]]:
    reply = await api.call("GET", f"/v1/webhooks/{endpoint_id}/deliveries?limit=100", key)
    found: list[dict[str, Any]] = reply.body["data"]
    return found


async def waiting(api: Api, key: str, endpoint_id: str, count: int) -> None:
    """Until the endpoint has `count` deliveries waiting on the retry ladder."""

    async def settled() -> bool:
        found = await deliveries(api, key, endpoint_id)
        return len(found) == count and all(
            d["waitingReason"] == "retry_scheduled" and d["attemptCount"] == 2 for d in found
        )

    assert await eventually(settled)


def table(tab: Tab, name: str) -> Locator:
    return tab.page.get_by_role("table", name=name, exact=True)


async def test_on_call_finds_the_failing_endpoint_sees_why_and_replays_until_it_succeeds(
    api: Api, tab: Tab
) -> None:
    """The failing endpoint is listed; its deliveries show they wait for a scheduled retry
    (with the attempts' status and failure kind); a bulk replay of them shows the dry-run
    count, asks for confirmation, shows progress, and they are then delivered."""
    org = await api.org("flow")
    key = await api.writer(org)
    state = {"code": 500}
    page = tab.page
    async with (
        api.hooked(key, description="Healthy feed"),
        api.hooked(key, switchable(state), description="Orders feed") as (receiver, endpoint),
    ):
        events = {await api.publish(org) for _ in range(3)}
        await waiting(api, key, endpoint["id"], 3)
        await tab.sign_in(key)
        listed = table(tab, "Endpoints").locator("tbody tr")
        await expect(listed).to_have_count(2)
        await expect(listed.first).to_contain_text("Orders feed")  # failing first
        await expect(listed.first).to_contain_text("failing ×6")
        await page.get_by_role("link", name="Orders feed").click()
        await expect(page.get_by_role("heading", name="Orders feed")).to_be_visible()
        chart = page.get_by_role("img", name=re.compile("attempts in the last 24 h"))
        await expect(chart).to_have_attribute(
            "aria-label", "6 attempts in the last 24 h: 0 succeeded, 6 failed."
        )
        await page.get_by_role("button", name="1 h").click()
        await expect(page.get_by_role("button", name="1 h")).to_have_attribute(
            "aria-pressed", "true"
        )
        await expect(
            page.get_by_role("img", name=re.compile("attempts in the last 1 h"))
        ).to_be_visible()
        rows = table(tab, "Deliveries").locator("tbody tr")
        await expect(rows).to_have_count(3)
        await expect(table(tab, "Deliveries").get_by_text("retry_scheduled")).to_have_count(3)

        await rows.first.get_by_role("link").click()
        await expect(page.get_by_text("retry_scheduled — a failed attempt")).to_be_visible()
        await expect(page.get_by_text(re.compile(r"UTC \(in (59|60) min\)"))).to_be_visible()
        attempts = table(tab, "Attempts").locator("tbody tr")
        await expect(attempts).to_have_count(2)
        await expect(attempts.first).to_contain_text("http_status")
        await expect(attempts.first).to_contain_text("answered 500")
        await page.go_back()

        state["code"] = 200
        await page.get_by_role("checkbox", name="failed").uncheck()
        await page.get_by_role("checkbox", name="pending").check()
        await page.get_by_label("Replay reason").fill("receiver fixed")
        await page.get_by_role("button", name="Count matching deliveries").click()
        await expect(page.get_by_text("3 deliveries match (dry run). Replay them?")).to_be_visible()
        assert receiver.delivered() == set()  # a dry run replays nothing
        await page.get_by_role("button", name="Replay 3 deliveries").click()
        await expect(page.get_by_text("3 of 3 replayed (succeeded)")).to_be_visible()
        await expect(table(tab, "Deliveries").get_by_text("succeeded")).to_have_count(3)
        assert receiver.delivered() == events
    tab.assert_clean()


async def test_a_test_event_is_sent_and_its_delivery_replayed(api: Api, tab: Tab) -> None:
    """The test-event picker sends the chosen type; its delivery page shows the attempt,
    and replaying it records who asked and why in the replay history."""
    org = await api.org("testevent")
    key = await api.writer(org)
    page = tab.page
    async with api.hooked(key, description="Test target") as (receiver, endpoint):
        await tab.sign_in(key, f"#/endpoints/{endpoint['id']}")
        await page.get_by_label("Test event type").select_option("webhook.test")
        await page.get_by_role("button", name="Send test event").click()
        sent = page.get_by_role("link", name=re.compile(r"^delivery dlv_"))
        await sent.click()
        await expect(page.get_by_role("heading", name=re.compile("^Delivery dlv_"))).to_be_visible()

        async def attempted() -> bool:
            return receiver.arrived >= 1

        assert await eventually(attempted)
        await page.reload()
        await expect(table(tab, "Attempts").locator("tbody tr")).to_have_count(1)
        await page.get_by_label("Reason").fill("checking the replay")
        await page.get_by_role("button", name="Replay this delivery").click()
        history = table(tab, "Replay history").locator("tbody tr")
        await expect(history).to_have_count(1)
        await expect(history).to_contain_text("checking the replay")
        assert await receiver.wait_until(lambda r: r.arrived >= 2, 30)
    tab.assert_clean()


async def test_rotating_shows_the_new_secret_once(api: Api, tab: Tab) -> None:
    """Rotating asks first, then shows the new secret with a copy button; after leaving
    the page it is gone, and no read ever shows it again."""
    org = await api.org("rotate")
    key = await api.writer(org)
    page = tab.page
    async with api.hooked(key, description="Rotating") as (_, endpoint):
        await tab.sign_in(key, f"#/endpoints/{endpoint['id']}")
        await page.get_by_role("button", name="Rotate secret…").click()
        await page.get_by_role("button", name="Rotate now").click()
        shown = page.locator("#new-secret")
        await expect(shown).to_have_text(re.compile(r"^whsec_"))
        secret = await shown.text_content()
        assert secret is not None
        assert secret != endpoint["secret"]
        await expect(page.get_by_role("button", name="Copy")).to_be_focused()
        await page.get_by_role("link", name="Endpoints", exact=True).click()
        await expect(page.get_by_role("heading", name="Endpoints", exact=True)).to_be_visible()
        await page.go_back()
        await expect(page.get_by_role("heading", name="Rotating")).to_be_visible()
        assert secret not in await page.content()
        read = await api.call("GET", f"/v1/webhooks/{endpoint['id']}", key)
        assert secret not in str(read.body)
    tab.assert_clean()


async def test_disable_and_enable_show_the_state_and_reason(api: Api, tab: Tab) -> None:
    """Disabling asks first and shows the endpoint disabled with its reason; enabling
    turns it back on; the API agrees at each step."""
    org = await api.org("toggle")
    key = await api.writer(org)
    page = tab.page
    async with api.hooked(key, description="Toggled") as (_, endpoint):
        path = f"/v1/webhooks/{endpoint['id']}"
        await tab.sign_in(key, f"#/endpoints/{endpoint['id']}")
        await page.get_by_role("button", name="Disable…").click()
        await page.get_by_role("button", name="Disable endpoint").click()
        await expect(page.get_by_text("Disabled (reason: manual).", exact=False)).to_be_visible()
        await expect(page.get_by_text("disabled: manual").first).to_be_visible()
        assert (await api.call("GET", path, key)).body["status"] == "disabled"
        await page.get_by_role("button", name="Enable endpoint").click()
        await expect(page.get_by_text("Enabled: deliveries flow.")).to_be_visible()
        assert (await api.call("GET", path, key)).body["status"] == "enabled"
    tab.assert_clean()
