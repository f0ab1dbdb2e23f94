"""Endpoint health through the running service, with real deliveries: the `health` block on
every webhook, why a failing endpoint's deliveries wait, the failing filter (operators across
organizations), the stats series, and organizations by page."""

from __future__ import annotations

from typing import Any

import pytest

from devtools import receivers
from tests.api.harness import Api, eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

STACK_ENV = {
    "WEBHOOKS_RETRY_SCHEDULE": "1s,1s,1s,1s,1s,1s,1s",
    "WEBHOOKS_RETRY_JITTER": "0",
    "WEBHOOKS_BREAKER_THRESHOLD": "3",
    "WEBHOOKS_BREAKER_COOLDOWN": "120s",  # stays open for the test
}
HEALTH_KEYS = {
    "successRate1h",
    "successRate24h",
    "lastSuccessAt",
    "lastFailureAt",
    "consecutiveFailures",
    "breaker",
    "nextProbeAt",
    "latencyP50Ms",
    "latencyP99Ms",
    "pending",
    "failed",
}


async def _health(api: Api, key: str, endpoint_id: str) -> dict[str, Any]:
    reply = await api.call("GET", f"/v1/webhooks/{endpoint_id}", key)
    assert reply.status == 200, reply.body
    health: dict[str, Any] = reply.body["health"]
    return health


async def test_a_healthy_endpoint_shows_rates_latency_and_its_last_success(api: Api) -> None:
    """After real deliveries succeed, the endpoint (read alone or listed) reports a success
    rate of 1, latency percentiles, its last success, no run of failures, a closed breaker."""
    org = await api.org("healthy")
    key = await api.writer(org)
    async with api.hooked(key) as (receiver, endpoint):
        for _ in range(3):
            await api.publish(org)
        assert await receiver.wait_until(lambda r: len(r.delivered()) == 3, 30)

        async def recorded() -> bool:  # all three: none pending any more
            health = await _health(api, key, endpoint["id"])
            return bool(health["successRate1h"] == 1.0 and health["pending"] == 0)

        assert await eventually(recorded)
    health = await _health(api, key, endpoint["id"])
    listed = await api.call("GET", "/v1/webhooks", key)
    assert set(health) == HEALTH_KEYS
    assert listed.body["data"][0]["health"] == health
    assert (health["successRate24h"], health["consecutiveFailures"], health["breaker"]) == (
        1.0,
        0,
        "closed",
    )
    assert isinstance(health["latencyP50Ms"], int)
    assert isinstance(health["latencyP99Ms"], int)
    assert health["lastSuccessAt"].endswith("Z")
    assert (health["lastFailureAt"], health["nextProbeAt"], health["pending"]) == (None, None, 0)


async def test_a_failing_endpoint_shows_its_breaker_and_why_its_deliveries_wait(
    api: Api,
) -> None:
    """Three failures open the breaker: the endpoint reports it open with its probe time and
    its run of failures, and a delivery that arrives then waits with 0 attempts, saying
    `breaker_open` and when it is due."""
    org = await api.org("failing")
    key = await api.writer(org)
    async with api.hooked(key, receivers.status(503)) as (receiver, endpoint):
        for _ in range(3):
            await api.publish(org)
        assert await receiver.wait_until(lambda r: len(r.received) >= 3, 30)

        async def opened() -> bool:
            return bool((await _health(api, key, endpoint["id"]))["breaker"] == "open")

        assert await eventually(opened)
        await api.publish(org)
        path = f"/v1/webhooks/{endpoint['id']}/deliveries"

        async def parked() -> bool:
            listing = (await api.call("GET", path, key)).body["data"]
            fresh = [d for d in listing if d["attemptCount"] == 0]
            return (
                len(listing) == 4
                and len(fresh) == 1
                and fresh[0]["waitingReason"] == ("breaker_open")
            )

        assert await eventually(parked)
        health = await _health(api, key, endpoint["id"])
        listing = (await api.call("GET", path, key)).body["data"]
    waiting = next(d for d in listing if d["attemptCount"] == 0)
    assert (waiting["status"], waiting["nextAttemptAt"] is not None) == ("pending", True)
    retried = [d for d in listing if d["attemptCount"] > 0]
    assert {d["waitingReason"] for d in retried} <= {"retry_scheduled", "breaker_open", None}
    assert health["consecutiveFailures"] >= 3
    assert (health["successRate1h"], health["pending"], health["failed"]) == (0.0, 4, 0)
    assert health["lastFailureAt"] is not None
    assert health["nextProbeAt"] is not None
    assert health["lastSuccessAt"] is None


async def test_operators_list_failing_endpoints_across_organizations(api: Api) -> None:
    """`health=failing` lists an org's failing endpoints (not its healthy ones) for its key,
    and every organization's for an operator, most recent failure first, by pages."""
    first_org, second_org = await api.org("fa"), await api.org("fb")
    first_key, second_key = await api.writer(first_org), await api.writer(second_org)
    _, operator = await api.key(None, "ops:read")
    async with (
        api.hooked(first_key, receivers.status(500)) as (first_receiver, first),
        api.hooked(first_key) as (healthy_receiver, healthy),
        api.hooked(second_key, receivers.status(500)) as (second_receiver, second),
    ):
        await api.publish(first_org)
        assert await first_receiver.wait_until(lambda r: len(r.received) >= 2, 30)
        assert await healthy_receiver.wait_until(lambda r: len(r.delivered()) == 1, 30)
        await api.publish(second_org)
        assert await second_receiver.wait_until(lambda r: len(r.received) >= 1, 30)

        async def both_failing() -> bool:
            reply = await api.call("GET", "/v1/webhooks?health=failing", operator)
            ids = [e["id"] for e in reply.body["data"]]
            return first["id"] in ids and second["id"] in ids

        assert await eventually(both_failing)
    ours = await api.call("GET", "/v1/webhooks?health=failing", first_key)
    assert [e["id"] for e in ours.body["data"]] == [first["id"]]
    scoped = await api.call("GET", "/v1/webhooks?health=failing", operator, org=second_org)
    assert [e["id"] for e in scoped.body["data"]] == [second["id"]]
    walked: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):  # bounded walk, one endpoint a page
        suffix = "" if cursor is None else f"&after={cursor}"
        page = await api.call("GET", f"/v1/webhooks?health=failing&limit=1{suffix}", operator)
        walked += page.body["data"]
        cursor = page.body["nextCursor"]
        if cursor is None:
            break
    ids = [e["id"] for e in walked]
    assert healthy["id"] not in ids
    assert {first["id"], second["id"]} <= set(ids)
    times = [e["health"]["lastFailureAt"] or "" for e in walked]
    assert times == sorted(times, reverse=True)
    bad = await api.call("GET", "/v1/webhooks?health=sick", first_key)
    assert (bad.status, bad.body["error"]["message"].startswith("health: must be one of")) == (
        422,
        True,
    )


async def test_stats_chart_the_last_day_and_refuse_bad_ranges(api: Api) -> None:
    """The stats series covers the last day in five-minute points counting the deliveries;
    bad ranges are 422 and another organization's endpoint is 404."""
    org = await api.org("stats")
    key = await api.writer(org)
    stranger = await api.writer(await api.org("stranger"))
    async with api.hooked(key) as (receiver, endpoint):
        for _ in range(2):
            await api.publish(org)
        assert await receiver.wait_until(lambda r: len(r.delivered()) == 2, 30)
    path = f"/v1/webhooks/{endpoint['id']}/stats"

    async def counted() -> bool:
        body = (await api.call("GET", path, key)).body
        return bool(sum(b["succeeded"] for b in body["buckets"]) == 2)

    assert await eventually(counted)
    body = (await api.call("GET", path, key)).body
    assert (body["bucketSeconds"], len(body["buckets"])) == (300, 289)
    assert body["buckets"][-1]["latencyP50Ms"] is not None or any(
        b["latencyP50Ms"] is not None for b in body["buckets"]
    )
    week = await api.call(
        "GET", f"{path}?since=2026-01-01T00:00:00Z&until=2026-01-08T00:00:00Z", key
    )
    assert (week.status, week.body["bucketSeconds"], len(week.body["buckets"])) == (200, 2100, 288)
    for query, field in [
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("since=2025-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("since=yesterday", "since"),
        ("until=soon", "until"),
    ]:
        reply = await api.call("GET", f"{path}?{query}", key)
        assert (reply.status, reply.body["error"]["message"].split(":")[0]) == (422, field)
    hidden = await api.call("GET", path, stranger)
    assert (hidden.status, hidden.code) == (404, "NOT_FOUND")


async def test_operators_list_organizations_by_page(api: Api) -> None:
    """Operators with ops:read or platform:orgs list organizations by id in pages; an
    operator key without either, and an organization key, are refused."""
    created = sorted([await api.org("list") for _ in range(3)])
    _, reader = await api.key(None, "ops:read")
    _, platform = await api.key(None, "platform:orgs")
    _, replayer = await api.key(None, "ops:replay")
    org_key = await api.writer(created[0])
    for key in (reader, platform):
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(1000):  # bounded walk
            suffix = "" if cursor is None else f"&after={cursor}"
            page = await api.call("GET", f"/v1/organizations?limit=2{suffix}", key)
            assert page.status == 200, page.body
            assert len(page.body["data"]) <= 2
            seen += [o["id"] for o in page.body["data"]]
            cursor = page.body["nextCursor"]
            if cursor is None:
                break
        assert seen == sorted(seen)
        assert set(created) <= set(seen)
    for key in (replayer, org_key):
        refused = await api.call("GET", "/v1/organizations", key)
        assert (refused.status, refused.code) == (403, "FORBIDDEN")
