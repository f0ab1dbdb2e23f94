"""On-call's pages with an operator key: failing endpoints across organizations, the
organizations, dead letters (text when UTF-8, else base64) with retry, and replay jobs."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from devtools import receivers
from tests.api.harness import Api, eventually
from tests.console.browser import Tab

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka, pytest.mark.slow]

STACK_ENV = {"WEBHOOKS_RETRY_SCHEDULE": "100ms,1h", "WEBHOOKS_BREAKER_THRESHOLD": "1000"}

TEXT_RECORD = b"<script>alert('dead letter')</script>"
BINARY_RECORD = b"\xff\xfe\x00 not utf-8"


async def dead_letters(api: Api, operator: str, count: int) -> dict[str, str]:
    """Wait for `count` dead letters; their ids by reason."""

    async def arrived() -> bool:
        return len((await api.call("GET", "/v1/dead-letters", operator)).body["data"]) >= count

    assert await eventually(arrived)
    found = (await api.call("GET", "/v1/dead-letters", operator)).body["data"]
    return {d["reason"]: d["id"] for d in found}


async def test_operator_pages_show_failing_endpoints_orgs_dead_letters_and_jobs(
    api: Api, tab: Tab
) -> None:
    """An operator sees another organization's failing endpoint, finds the organization
    and its endpoints, reads dead letters as text or base64, retries one (the refusal is
    shown, not swallowed), and sees the organization's replay job."""
    org = await api.org("oncall")
    key = await api.writer(org)
    _, operator = await api.key(None, "ops:read,ops:replay,platform:orgs")
    page = tab.page
    async with api.hooked(key, receivers.status(503), description="Broken partner") as (
        receiver,
        endpoint,
    ):
        await api.publish(org)
        assert await receiver.wait_until(lambda r: r.arrived >= 2, 30)
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        job = await api.call(
            "POST",
            f"/v1/webhooks/{endpoint['id']}/replay",
            key,
            {"since": since.replace("+00:00", "Z"), "status": ["succeeded"], "reason": "audit"},
        )
        assert job.status == 202, job.body
        await api.stack.publish(TEXT_RECORD, key=org)
        await api.stack.publish(BINARY_RECORD, key=org)
        letters = await dead_letters(api, operator, 2)

        await tab.sign_in(operator)
        await expect(page.get_by_role("heading", name="Failing endpoints")).to_be_visible()
        failing = page.get_by_role("table", name="Failing endpoints").locator("tbody tr")
        await expect(failing.filter(has_text="Broken partner")).to_contain_text(org)

        await page.get_by_role("link", name="Organizations").click()
        orgs = page.get_by_role("table", name="Organizations").locator("tbody tr")
        await orgs.filter(has_text=org).get_by_role("link", name="Endpoints").click()
        await expect(page.get_by_role("heading", name=f"Endpoints of {org}")).to_be_visible()
        await expect(page.get_by_role("link", name="Broken partner")).to_be_visible()

        await page.get_by_role("link", name="Dead letters").click()
        await page.get_by_role("link", name=letters["malformed_json"]).click()
        await expect(page.get_by_label("Value")).to_have_text(TEXT_RECORD.decode())
        await expect(page.get_by_text("Value: 37 bytes, UTF-8 text")).to_be_visible()
        await page.get_by_role("button", name="Retry this record").click()
        await expect(page.get_by_role("alert")).to_contain_text("still invalid: malformed_json")
        await page.go_back()
        await page.get_by_role("link", name=letters["invalid_utf8"]).click()
        await expect(page.get_by_label("Value")).to_have_text(
            base64.b64encode(BINARY_RECORD).decode()
        )
        await expect(
            page.get_by_text(re.compile("^Value: .* not UTF-8 — shown as base64"))
        ).to_be_visible()

        await page.get_by_role("link", name="Replay jobs").click()
        jobs = page.get_by_role("table", name="Replay jobs").locator("tbody tr")
        await expect(jobs.filter(has_text=job.body["id"])).to_contain_text("audit")
        assert await page.locator("script:not([src='js/main.js'])").count() == 0
    tab.assert_clean(allowed_console=("status of 422",))
