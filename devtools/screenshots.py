"""`python -m devtools.screenshots`: the console's screenshots in docs/screenshots/.

Starts the embedded stack (as `webhooks dev` does, in a throwaway directory), registers the
dev organization's endpoints against local receivers — one healthy, one failing, one flaky —
publishes events and two bad records, waits until the failing endpoint's deliveries wait
for a retry, then drives Debian's chromium (Playwright, launched by path) through the main
pages at 1280 px and one at phone width. The README's Console section shows the result.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, async_playwright

from devtools import devstate, receivers
from devtools.demo import DEV_ORG, _broker, _create_topic, _start, embedded_environ
from devtools.receivers import Receiver
from dispatcher.clock import new_id
from dispatcher.core.catalog import Catalog
from dispatcher.settings import Settings

OUT = Path("docs/screenshots")
WIDE = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
EVENTS = 24
WAIT = 60.0  # seconds for the deliveries to reach the state shown (a bound)


@dataclass(frozen=True)
class Shown:
    name: str
    description: str
    behaviour: receivers.Behaviour
    metadata: dict[str, str]


ENDPOINTS = [
    Shown("orders", "Orders — production", receivers.healthy(), {"team": "commerce"}),
    Shown(
        "billing",
        "Billing sync — staging",
        receivers.status(503, body='{"error": "upstream unavailable"}'),
        {"team": "billing", "owner": "ops@partner.example"},
    ),
    Shown("search", "Search indexer", receivers.flaky(0.3, seed=3), {"team": "search"}),
]


async def _register(
    session: aiohttp.ClientSession, key: str, stack: AsyncExitStack
) -> dict[str, str]:
    """Each endpoint through the API, pointed at a receiver that verifies its signatures."""
    headers = {"Authorization": f"Bearer {key}"}
    ids = {}
    for shown in ENDPOINTS:
        body = {"url": "http://127.0.0.1:9/placeholder", "description": shown.description}
        async with session.post(
            "/v1/webhooks", json={**body, "metadata": shown.metadata}, headers=headers
        ) as reply:
            created = await reply.json()
        receiver = await stack.enter_async_context(Receiver(created["secret"], shown.behaviour))
        async with session.patch(
            f"/v1/webhooks/{created['id']}", json={"url": receiver.url}, headers=headers
        ) as reply:
            reply.raise_for_status()
        ids[shown.name] = created["id"]
    return ids


async def _publish(settings: Settings, catalog: Catalog) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False
    )
    await producer.start()
    try:
        types = ["content.generated", "ads.write.executed", "approval.approved"]
        for n in range(EVENTS):
            event_type = types[n % len(types)]
            data = {**catalog.examples(event_type)[0], "organizationId": DEV_ORG}
            created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            body = {"id": new_id("evt"), "type": event_type, "created": created, "data": data}
            await producer.send(settings.kafka_topics[0], orjson.dumps(body), key=b"org_dev")
        await producer.send(settings.kafka_topics[0], b'{"id": "evt_1", "type": ', key=b"x")
        await producer.send(settings.kafka_topics[0], b"\xff\xfe\x00 binary", key=b"x")
        await producer.flush()
    finally:
        await producer.stop()


async def _settled(session: aiohttp.ClientSession, key: str, endpoint_id: str) -> None:
    """Until every delivery of the failing endpoint waits on the retry ladder."""
    headers = {"Authorization": f"Bearer {key}"}
    path = f"/v1/webhooks/{endpoint_id}/deliveries?limit=100"
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        async with session.get(path, headers=headers) as reply:
            found = (await reply.json())["data"]
        if len(found) >= EVENTS // 2 and all(d["waitingReason"] for d in found):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("the failing endpoint's deliveries did not settle in time")


async def _shoot(page: Page, out: Path, name: str) -> None:
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=out / f"{name}.png", full_page=True)
    print(f"wrote {out / name}.png")


async def _sign_in(browser: Browser, url: str, key: str, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{url}/console/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Sign out").wait_for()
    return page


async def _pages(url: str, keys: tuple[str, str], ids: dict[str, str], out: Path) -> None:
    operator_key, org_key = keys
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("chromium is not installed (make install installs it)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable)
        page = await _sign_in(browser, url, org_key, WIDE)
        await page.get_by_role("link", name="Search indexer").wait_for()
        await _shoot(page, out, "endpoints")
        await page.get_by_role("link", name="Billing sync — staging").click()
        await page.get_by_role("heading", name="Billing sync — staging").wait_for()
        await page.get_by_role("button", name="1 h").click()
        await page.get_by_role("img", name=re.compile("in the last 1 h")).wait_for()
        await page.get_by_role("checkbox", name="pending").check()
        await page.get_by_role("button", name="Count matching deliveries").click()
        await page.get_by_text("deliveries match (dry run)").wait_for()
        await _shoot(page, out, "endpoint")
        rows = page.get_by_role("table", name="Deliveries").locator("tbody tr")
        await rows.first.get_by_role("link").click()
        await page.get_by_role("heading", name="Attempts").wait_for()
        await _shoot(page, out, "delivery")
        phone = await _sign_in(browser, url, org_key, PHONE)
        await phone.get_by_role("link", name="Search indexer").wait_for()
        await _shoot(phone, out, "phone-endpoints")
        ops = await _sign_in(browser, url, operator_key, WIDE)
        await ops.get_by_role("table", name="Failing endpoints").wait_for()
        await _shoot(ops, out, "operator-failing")
        await ops.get_by_role("link", name="Dead letters").click()
        await ops.get_by_role("table", name="Dead letters").locator("a").first.click()
        await ops.get_by_role("heading", name="Value").wait_for()
        await _shoot(ops, out, "dead-letter")
        await browser.close()


async def run(out: Path) -> None:
    with tempfile.TemporaryDirectory() as state:
        env = embedded_environ({}, Path(state))
        env.update(
            WEBHOOKS_HTTP_PORT="0",
            WEBHOOKS_RETRY_SCHEDULE="300ms,1h",  # two failed attempts, then an hour's wait
            WEBHOOKS_BREAKER_THRESHOLD="1000",
            WEBHOOKS_POLL_INTERVAL="200ms",
            WEBHOOKS_KAFKA_TOPICS=f"screens.{new_id('evt')[4:].lower()}",
            WEBHOOKS_KAFKA_GROUP=f"screens-{new_id('evt')[4:].lower()}",
        )
        async with AsyncExitStack() as stack:
            _broker(stack, env)
            settings = Settings.from_env(env)
            await _create_topic(settings)
            running, _ = await _start(settings, stack)
            keys = await devstate.dev_keys(running.store, Path(state))
            session = await stack.enter_async_context(aiohttp.ClientSession(running.url))
            ids = await _register(session, keys[1], stack)
            await running.directory.refresh()
            await _publish(settings, running.catalog)
            await _settled(session, keys[1], ids["billing"])
            await _pages(running.url, keys, ids, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
