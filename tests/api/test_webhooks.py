"""`/v1/webhooks` through real HTTP: registration checks, secrets shown once and never
logged or stored in plaintext, rotation with a grace period, manual disable announcing
itself, and send-test reaching that endpoint only."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from aiohttp import web

from devtools.receivers import Behaviour, Receiver
from dispatcher.logs import JSONFormatter
from tests.api.harness import PLACEHOLDER_URL, Api, raw_database_bytes

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

URL = "https://hooks.example.com/in"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url: must start with http:// or https://"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url: must not contain credentials"),
        ({"url": "http://10.0.0.8/x"}, "url: host 10.0.0.8 is in a private network"),
        ({"url": "http://localhost/x"}, "url: host 'localhost' is a local"),
        ({"url": URL, "events": ["content.generated", "nope.nope"]}, "events[1]: 'nope.nope'"),
        ({"url": URL, "events": []}, "events: name at least one type"),
        ({"url": URL, "metadata": {"k" * 41: "v"}}, "metadata: key"),
        ({"url": URL, "metadata": {"team": "v" * 501}}, "metadata.team: longer than 500"),
        ({"url": URL, "metadata": {f"k{i}": "v" for i in range(51)}}, "metadata: more than 50"),
        ({"url": URL, "metadata": {"n": 1}}, "metadata.n: must be a string"),
        ({"url": URL, "rateLimit": 0}, "rateLimit: must be from"),
        ({"url": URL, "rateLimit": 1e6}, "rateLimit: must be from"),
        ({"url": URL, "rateLimit": True}, "rateLimit: must be a number"),
    ],
)
async def test_registration_is_validated_with_a_422_naming_the_problem(
    api: Api, body: dict[str, Any], message: str
) -> None:
    """Bad URLs (scheme, userinfo, private or local hosts), unknown event types, oversized
    metadata and out-of-range rate limits are 422 VALIDATION with the reason."""
    secret = await api.writer(await api.org("reg"))
    reply = await api.call("POST", "/v1/webhooks", secret, body)
    assert (reply.status, reply.code) == (422, "VALIDATION")
    assert reply.body["error"]["message"].startswith(message), reply.body


async def test_an_endpoint_reads_back_in_camel_case_and_pages(api: Api) -> None:
    """Create answers every field (camelCase, RFC 3339 Z times); listings page by cursor."""
    key = await api.writer(await api.org("crud"))
    body = {
        "url": "https://Hooks.Example.com/in?x=1",
        "events": ["content.generated", "approval.approved"],
        "description": "billing",
        "metadata": {"team": "billing"},
        "rateLimit": 5,
    }
    created = [await api.create(key, body)] + [await api.create(key, {"url": URL}) for _ in "ab"]
    first = created[0]
    assert first["url"] == "https://hooks.example.com/in?x=1"
    assert first["events"] == ["approval.approved", "content.generated"]
    assert (first["scope"], first["status"], first["rateLimit"]) == ("own", "enabled", 5.0)
    assert first["createdAt"].endswith("Z")

    page1 = await api.call("GET", "/v1/webhooks?limit=2", key)
    page2 = await api.call("GET", f"/v1/webhooks?limit=2&after={page1.body['nextCursor']}", key)
    listed = [e["id"] for e in page1.body["data"] + page2.body["data"]]
    assert listed == sorted(e["id"] for e in created)
    assert page2.body["nextCursor"] is None
    bad = await api.call("GET", "/v1/webhooks?limit=101", key)
    assert (bad.status, bad.code) == (422, "VALIDATION")


async def test_patch_changes_only_what_is_sent_and_rechecks_the_url(api: Api) -> None:
    """PATCH keeps unsent fields, null clears the filter and rate limit, a new URL is
    checked again, and DELETE makes the endpoint 404."""
    key = await api.writer(await api.org("patch"))
    created = await api.create(
        key, {"url": URL, "events": ["content.generated"], "rateLimit": 2, "description": "d"}
    )
    path = f"/v1/webhooks/{created['id']}"
    patched = await api.call("PATCH", path, key, {"events": None, "rateLimit": None})
    refused = await api.call("PATCH", path, key, {"url": "http://192.168.1.1/x"})

    assert (patched.body["events"], patched.body["rateLimit"]) == (None, None)
    assert (patched.body["description"], patched.body["url"]) == ("d", URL)
    assert (refused.status, refused.code) == (422, "VALIDATION")
    assert (await api.call("DELETE", path, key)).status == 204
    assert (await api.call("GET", path, key)).status == 404


async def test_the_secret_is_shown_once_never_logged_never_stored_in_plaintext(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Only create and rotate answer a `secret`; reads, lists, patches and state changes
    never do; no log line and no database byte holds either secret."""
    caplog.set_level(logging.DEBUG)
    key = await api.writer(await api.org("secret"))
    created = await api.create(key, {"url": URL})
    path = f"/v1/webhooks/{created['id']}"
    rotated = await api.call("POST", f"{path}/rotate-secret", key, {"graceSeconds": 60})
    secrets = [created["secret"], rotated.body["secret"]]
    others = [
        await api.call("GET", path, key),
        await api.call("GET", "/v1/webhooks", key),
        await api.call("PATCH", path, key, {"description": "x"}),
        await api.call("POST", f"{path}/disable", key),
        await api.call("POST", f"{path}/enable", key),
        await api.call("POST", f"{path}/test", key),
    ]

    assert all(s.startswith("whsec_") for s in secrets)
    assert secrets[0] != secrets[1]
    for reply in others:
        assert reply.status in (200, 202), reply.body
        text = orjson.dumps(reply.body)
        assert b'"secret"' not in text
        assert not any(secret.encode() in text for secret in secrets)
    formatter = JSONFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    database = await raw_database_bytes(api)
    for secret in secrets:
        assert secret not in logged
        assert secret.encode() not in database
        assert secret.removeprefix("whsec_").encode() not in database


def _capturing(seen: list[str]) -> Behaviour:
    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        seen.append(request.headers["webhook-signature"])
        return web.Response(status=200)

    return answer


async def test_rotation_signs_with_both_secrets_during_the_grace_period_then_drops_the_old(
    api: Api,
) -> None:
    """After rotation with graceSeconds=1 a delivery carries two v1 signatures and verifies
    with the old secret; after the grace period it carries one, made with the new secret."""
    key = await api.writer(await api.org("rotate"))
    during: list[str] = []
    after: list[str] = []
    async with api.hooked(key, _capturing(during)) as (old_only, endpoint):
        path = f"/v1/webhooks/{endpoint['id']}"
        rotated = await api.call("POST", f"{path}/rotate-secret", key, {"graceSeconds": 1})
        assert rotated.body["previousSecretExpiresAt"].endswith("Z")
        await api.call("POST", f"{path}/test", key)
        assert await old_only.wait_until(lambda r: len(r.delivered()) == 1, 30)
        await asyncio.sleep(1.2)
        api.stack.running.directory.invalidate(endpoint["id"])
        async with Receiver(rotated.body["secret"], _capturing(after)) as new_only:
            await api.call("PATCH", path, key, {"url": new_only.url})
            await api.call("POST", f"{path}/test", key)
            assert await new_only.wait_until(lambda r: len(r.delivered()) == 1, 30)

    assert [len(header.split()) for header in during + after] == [2, 1]
    assert all(r.verified for r in old_only.received + new_only.received)


async def test_a_v1a_endpoint_signs_with_ed25519_and_shows_only_its_public_key(
    api: Api,
) -> None:
    """`signatureScheme: v1a`: the response and every read carry `publicKey` (whpk_…) and no
    secret; deliveries verify with the public key alone (`v1a`); a rotation returns the new
    public key, no secret, and during its grace period each attempt carries two `v1a`
    signatures, old and new, each verifying alone."""
    key = await api.writer(await api.org("v1a"))
    created = await api.call(
        "POST", "/v1/webhooks", key, {"url": PLACEHOLDER_URL, "signatureScheme": "v1a"}
    )
    assert created.status == 201, created.body
    public = created.body["publicKey"]
    assert (created.body["signatureScheme"], public[:5]) == ("v1a", "whpk_")
    assert "secret" not in created.body
    path = f"/v1/webhooks/{created.body['id']}"
    read = await api.call("GET", path, key)
    assert (read.body["publicKey"], "secret" in read.body) == (public, False)
    during: list[str] = []
    async with Receiver(public, _capturing(during)) as old_key:
        await api.call("PATCH", path, key, {"url": old_key.url})
        await api.call("POST", f"{path}/test", key)
        assert await old_key.wait_until(lambda r: len(r.delivered()) == 1, 30)
        rotated = await api.call("POST", f"{path}/rotate-secret", key, {"graceSeconds": 60})
        assert "secret" not in rotated.body
        new_public = rotated.body["publicKey"]
        assert new_public.startswith("whpk_")
        assert new_public != public
        api.stack.running.directory.invalidate(created.body["id"])
        await api.call("POST", f"{path}/test", key)
        assert await old_key.wait_until(lambda r: len(r.delivered()) == 2, 30)
    assert all(r.verified for r in old_key.received)
    assert [[s.split(",")[0] for s in h.split()] for h in during] == [["v1a"], ["v1a", "v1a"]]
    async with Receiver(new_public) as new_key:  # the newest signature verifies with the new key
        replayed = await api.call("PATCH", path, key, {"url": new_key.url})
        assert replayed.status == 200
        await api.call("POST", f"{path}/test", key)
        assert await new_key.wait_until(lambda r: len(r.delivered()) == 1, 30)
    assert all(r.verified for r in new_key.received)


async def test_manual_disable_announces_itself_to_subscribed_endpoints(api: Api) -> None:
    """POST /disable records reason manual, counts it, and delivers webhook.endpoint.disabled
    to the org's endpoints subscribed to it (and not to the disabled one)."""
    org = await api.org("disable")
    key = await api.writer(org)
    metrics = api.stack.running.metrics
    before = metrics.endpoints_disabled.labels("manual")._value.get()
    async with api.hooked(key, events=["webhook.endpoint.disabled"]) as (watcher, _):
        target = await api.create(key, {"url": URL})
        reply = await api.call("POST", f"/v1/webhooks/{target['id']}/disable", key)
        assert (reply.body["status"], reply.body["disabledReason"]) == ("disabled", "manual")
        assert await watcher.wait_until(lambda r: len(r.delivered()) == 1, 30)

    data = orjson.loads(watcher.received[0].body)["data"]
    assert (data["endpointId"], data["reason"], data["organizationId"]) == (
        target["id"],
        "manual",
        org,
    )
    assert metrics.endpoints_disabled.labels("manual")._value.get() == before + 1


async def test_send_test_delivers_the_example_to_that_endpoint_only(api: Api) -> None:
    """POST /test delivers the type's catalog example, with this org and endpoint filled in,
    to this endpoint only; an unknown type is 422 and a disabled endpoint 409."""
    org = await api.org("test")
    key = await api.writer(org)
    async with (
        api.hooked(key) as (tested, endpoint),
        api.hooked(key, events=["webhook.test", "content.generated"]) as (bystander, _),
    ):
        path = f"/v1/webhooks/{endpoint['id']}/test"
        ping = await api.call("POST", path, key)
        typed = await api.call("POST", path, key, {"type": "content.generated"})
        assert (ping.status, typed.status) == (202, 202)
        assert await tested.wait_until(lambda r: len(r.delivered()) == 2, 30)
        unknown = await api.call("POST", path, key, {"type": "nope.nope"})
        await api.call("POST", f"/v1/webhooks/{endpoint['id']}/disable", key)
        disabled = await api.call("POST", path, key)

    bodies = [orjson.loads(r.body) for r in tested.received]
    assert [b["type"] for b in bodies] == ["webhook.test", "content.generated"]
    assert bodies[0]["data"]["endpointId"] == endpoint["id"]
    assert {b["data"]["organizationId"] for b in bodies} == {org}
    assert bodies[0]["id"] == ping.body["eventId"]
    assert all(r.verified for r in tested.received)
    assert bystander.received == []
    assert (unknown.status, disabled.status) == (422, 409)


async def test_a_firehose_needs_org_admin_to_create_or_change(api: Api) -> None:
    """Creating or widening to scope all_children, or changing a firehose, needs org:admin;
    the key that widens an endpoint becomes the one its authorisation rests on."""
    org = await api.org("hose")
    plain, admin = await api.writer(org), await api.writer(org, ",org:admin")
    own = await api.create(plain, {"url": URL})
    path = f"/v1/webhooks/{own['id']}"
    refused = await api.call("PATCH", path, plain, {"scope": "all_children"})
    widened = await api.call("PATCH", path, admin, {"scope": "all_children"})
    changed = await api.call("PATCH", path, plain, {"description": "x"})
    whoami = await api.call("GET", "/v1/whoami", admin)

    assert (refused.status, widened.status, changed.status) == (403, 200, 403)
    assert widened.body["createdByKeyId"] == whoami.body["id"]
