"""Replay through the running service: one delivery, and bulk jobs drained at a capped
rate. Replays keep webhook-id, re-sign with the current secret at a fresh timestamp, restart
the ladder (attempts keep their numbers) and are recorded with who asked and why."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from devtools.receivers import Behaviour, Receiver
from dispatcher.engine.replay import batch_size
from tests.api.harness import Api, eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

RATE = 5
STACK_ENV = {
    "WEBHOOKS_REPLAY_RATE": str(RATE),
    "WEBHOOKS_RETRY_SCHEDULE": "50ms",  # two attempts, then failed
    "WEBHOOKS_BREAKER_THRESHOLD": "1000",
}


def switchable(state: dict[str, int]) -> Behaviour:
    """Answer `state["code"]`, changeable while the receiver runs."""

    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        return web.Response(status=state["code"])

    return answer


def since_a_minute_ago() -> str:
    moment = datetime.now(UTC) - timedelta(minutes=1)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def failed(api: Api, key: str, endpoint_id: str, count: int) -> list[dict[str, Any]]:
    """Wait until the endpoint has `count` failed deliveries; return them."""
    path = f"/v1/webhooks/{endpoint_id}/deliveries?status=failed&limit=100"

    async def settled() -> bool:
        return len((await api.call("GET", path, key)).body["data"]) == count

    assert await eventually(settled)
    data: list[dict[str, Any]] = (await api.call("GET", path, key)).body["data"]
    return data


async def test_replaying_one_delivery_keeps_its_id_and_records_who_and_why(api: Api) -> None:
    """A failed delivery replayed after the endpoint recovers arrives with the same
    webhook-id, a later timestamp and a valid signature; its ladder restarts (a replay into
    a still-failing endpoint gets the whole ladder again) while its attempts keep their
    numbers, and the delivery shows every attempt, the count of all of them and the
    replays (key id, reason)."""
    org = await api.org("one")
    key_id, key = await api.key(org, "webhooks:read,webhooks:write")
    state = {"code": 500}
    async with api.hooked(key, switchable(state)) as (receiver, endpoint):
        event_id = await api.publish(org)
        [delivery] = await failed(api, key, endpoint["id"], 1)
        reply = await api.call(
            "POST", f"/v1/deliveries/{delivery['id']}/replay", key, {"reason": "too soon"}
        )
        assert reply.status == 202
        assert await receiver.wait_until(lambda r: len(r.received) == 4, 30)
        [delivery] = await failed(api, key, endpoint["id"], 1)
        first_timestamp = int(receiver.received[-1].timestamp)
        await asyncio.sleep(max(0.0, first_timestamp + 1.05 - time.time()))  # a later second
        state["code"] = 200
        reply = await api.call(
            "POST", f"/v1/deliveries/{delivery['id']}/replay", key, {"reason": "fixed TLS"}
        )
        assert reply.status == 202
        assert await receiver.wait_until(lambda r: event_id in r.delivered(), 30)

    replayed = receiver.received[-1]
    assert (replayed.webhook_id, replayed.verified) == (event_id, True)
    assert int(replayed.timestamp) > first_timestamp
    path = f"/v1/deliveries/{delivery['id']}"

    async def succeeded() -> bool:
        return bool((await api.call("GET", path, key)).body["status"] == "succeeded")

    assert await eventually(succeeded)
    shown = (await api.call("GET", path, key)).body
    assert [(a["attempt"], a["statusCode"]) for a in shown["attempts"]] == [
        (1, 500),
        (2, 500),
        (3, 500),
        (4, 500),
        (5, 200),
    ]
    assert shown["attemptCount"] == 5
    assert all(a["startedAt"].endswith("Z") and a["durationMs"] >= 0 for a in shown["attempts"])
    assert [(r["actor"], r["reason"]) for r in shown["replays"]] == [
        (key_id, "too soon"),
        (key_id, "fixed TLS"),
    ]


async def test_a_replay_is_signed_with_the_current_secret(api: Api) -> None:
    """After a rotation without grace, a replay verifies with the new secret alone."""
    org = await api.org("resign")
    key = await api.writer(org)
    async with api.hooked(key, switchable({"code": 500})) as (_, endpoint):
        event_id = await api.publish(org)
        [delivery] = await failed(api, key, endpoint["id"], 1)
        path = f"/v1/webhooks/{endpoint['id']}"
        rotated = await api.call("POST", f"{path}/rotate-secret", key, {"graceSeconds": 0})
        async with Receiver(rotated.body["secret"]) as fresh:
            await api.call("PATCH", path, key, {"url": fresh.url})
            await api.call("POST", f"/v1/deliveries/{delivery['id']}/replay", key)
            assert await fresh.wait_until(lambda r: event_id in r.delivered(), 30)
    assert [r.verified for r in fresh.received] == [True]


async def test_a_bulk_replay_is_a_rate_capped_idempotent_job(api: Api) -> None:
    """A dry run counts what the job then takes; re-submitting returns the same job; the job
    progresses in steps no faster than WEBHOOKS_REPLAY_RATE and re-delivers every event."""
    org = await api.org("bulk")
    key_id, key = await api.key(org, "webhooks:read,webhooks:write")
    count = 12
    state = {"code": 500}
    async with api.hooked(key, switchable(state)) as (receiver, endpoint):
        events = {await api.publish(org) for _ in range(count)}
        await failed(api, key, endpoint["id"], count)
        state["code"] = 200
        path = f"/v1/webhooks/{endpoint['id']}/replay"
        body = {"since": since_a_minute_ago(), "status": ["failed"], "reason": "outage over"}
        dry = await api.call("POST", path, key, {**body, "dryRun": True})
        job = await api.call("POST", path, key, body)
        again = await api.call("POST", path, key, body)
        assert dry.body == {"dryRun": True, "count": count}
        assert (job.status, job.body["total"], job.body["status"]) == (202, count, "queued")
        assert (again.status, again.body["id"]) == (200, job.body["id"])

        progress: list[int] = []

        async def finished() -> bool:
            shown = (await api.call("GET", f"/v1/replays/{job.body['id']}", key)).body
            progress.append(shown["done"])
            return bool(shown["status"] == "succeeded")

        assert await eventually(finished)
        assert await receiver.wait_until(lambda r: r.delivered() == events, 30)

    final = (await api.call("GET", f"/v1/replays/{job.body['id']}", key)).body
    assert (final["done"], final["total"], final["actor"], final["reason"]) == (
        count,
        count,
        key_id,
        "outage over",
    )
    assert progress == sorted(progress)
    assert len({p for p in progress if 0 < p < count}) >= 3  # seen mid-way, step by step
    took = datetime.fromisoformat(final["finishedAt"]) - datetime.fromisoformat(final["createdAt"])
    assert took.total_seconds() >= (count - batch_size(RATE)) / RATE - 0.05  # the cap, a floor
    delivery = (await api.call("GET", f"/v1/webhooks/{endpoint['id']}/deliveries", key)).body
    shown = await api.call("GET", f"/v1/deliveries/{delivery['data'][0]['id']}", key)
    assert shown.body["replays"][0]["replayJobId"] == job.body["id"]


async def test_operators_replay_across_organizations_with_an_org_guard(api: Api) -> None:
    """An ops:replay key counts and replays another org's endpoint; naming a different
    organizationId is 404, and a filter error names the field."""
    org = await api.org("ops")
    key = await api.writer(org)
    _, operator = await api.key(None, "ops:replay,ops:read")
    endpoint = await api.create(key, {"url": "https://hooks.example.com/x"})
    path = f"/v1/webhooks/{endpoint['id']}/replay"
    body = {"since": since_a_minute_ago(), "dryRun": True}

    counted = await api.call("POST", path, operator, {**body, "organizationId": org})
    wrong = await api.call("POST", path, operator, {**body, "organizationId": "org_elsewhere"})
    bad = await api.call("POST", path, operator, {**body, "status": ["lost"]})
    backwards = await api.call("POST", path, operator, {**body, "until": "2000-01-01T00:00:00Z"})

    assert (counted.status, counted.body) == (200, {"dryRun": True, "count": 0})
    assert (wrong.status, wrong.code) == (404, "NOT_FOUND")
    assert bad.body["error"]["message"].startswith("status[0]: must be one of")
    assert backwards.body["error"]["message"].startswith("until: must be later than since")


async def test_the_list_of_replay_jobs_is_scoped_to_the_organization(api: Api) -> None:
    """GET /v1/replays shows an organization its own jobs, newest first; an operator sees
    every organization's, or the one it names; the cursor pages on."""
    jobs: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for prefix in ("lista", "listb"):
        org = await api.org(prefix)
        keys[org] = await api.writer(org)
        endpoint = await api.create(keys[org], {"url": "https://hooks.example.com/x"})
        path = f"/v1/webhooks/{endpoint['id']}/replay"
        for hours in (1, 2):  # two filters, two jobs (each matching nothing)
            since = datetime.now(UTC) - timedelta(hours=hours)
            body = {"since": since.isoformat(timespec="seconds").replace("+00:00", "Z")}
            created = await api.call("POST", path, keys[org], body)
            assert created.status == 202, created.body
            jobs.setdefault(org, []).append(created.body["id"])
    (org_a, org_b), (_, operator) = list(jobs), await api.key(None, "ops:read")

    own = await api.call("GET", "/v1/replays", keys[org_a])
    first = await api.call("GET", "/v1/replays?limit=1", keys[org_a])
    rest = await api.call("GET", f"/v1/replays?after={first.body['nextCursor']}", keys[org_a])
    every = await api.call("GET", "/v1/replays?limit=100", operator)
    named = await api.call("GET", "/v1/replays", operator, org=org_b)

    assert [j["id"] for j in own.body["data"]] == jobs[org_a][::-1]
    assert [j["id"] for j in first.body["data"] + rest.body["data"]] == jobs[org_a][::-1]
    assert {j["id"] for j in every.body["data"]} >= {*jobs[org_a], *jobs[org_b]}
    assert [j["id"] for j in named.body["data"]] == jobs[org_b][::-1]
