"""Authentication, the error shape, request validation and the per-key rate limit, through
real HTTP against the running service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.api.harness import Api, raw_database_bytes

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

STACK_ENV = {"WEBHOOKS_API_RATE_LIMIT": "2"}  # burst 4: the fifth quick write is refused
URL = "https://hooks.example.com/in"


async def test_missing_malformed_unknown_and_revoked_keys_are_401(api: Api) -> None:
    """No key, a non-Bearer header, an unknown key and a revoked key all get 401
    UNAUTHENTICATED; revocation takes effect on the very next request."""
    org = await api.org("auth")
    key_id, secret = await api.key(org, "webhooks:read")
    assert (await api.call("GET", "/v1/webhooks", secret)).status == 200

    await api.stack.running.store.revoke_api_key(key_id, now=datetime.now(UTC))

    for key in (None, "lwk_" + "A" * 43, "not-a-key", secret):
        reply = await api.call("GET", "/v1/webhooks", key)
        assert (reply.status, reply.code) == (401, "UNAUTHENTICATED"), key
    basic = await api.session.get("/v1/webhooks", headers={"Authorization": f"Basic {secret}"})
    assert basic.status == 401


async def test_every_reply_carries_its_request_id_in_body_and_header(api: Api) -> None:
    """Errors carry {code, message, requestId}; every reply has x-request-id, equal to it."""
    org = await api.org("reqid")
    secret = await api.writer(org)
    ok = await api.call("GET", "/v1/webhooks", secret)
    missing = await api.call("GET", "/v1/webhooks/ep_nothing", secret)
    route = await api.call("GET", "/v1/nowhere", secret)

    assert ok.headers["x-request-id"].startswith("req_")
    assert (missing.status, missing.code) == (404, "NOT_FOUND")
    assert missing.body["error"]["requestId"] == missing.headers["x-request-id"]
    assert set(missing.body["error"]) == {"code", "message", "requestId"}
    assert (route.status, route.code) == (404, "NOT_FOUND")


async def test_whoami_names_the_organization_its_parent_and_scopes(api: Api) -> None:
    """GET /v1/whoami answers the key's id, organization, parent and scopes."""
    parent = await api.org("parent")
    child = await api.org("child", parent)
    key_id, secret = await api.key(child, "webhooks:read,org:admin")
    _, operator = await api.key(None, "ops:read")

    mine = await api.call("GET", "/v1/whoami", secret)
    theirs = await api.call("GET", "/v1/whoami", operator)

    assert mine.status == 200
    assert {k: mine.body[k] for k in ("id", "organizationId", "parentOrganizationId")} == {
        "id": key_id,
        "organizationId": child,
        "parentOrganizationId": parent,
    }
    assert mine.body["scopes"] == ["org:admin", "webhooks:read"]
    assert (theirs.body["kind"], theirs.body["organizationId"]) == ("operator", None)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body: not valid JSON"),
        (b"[1, 2]", "body: must be a JSON object"),
        (b'{"url": 42}', "url: must be a string"),
        (b'{"url": "https://hooks.example.com/x", "colour": "red"}', "colour: unknown field"),
        (
            b'{"url": "https://hooks.example.com/x", "rateLimit": "5"}',
            "rateLimit: must be a number",
        ),
        (b'{"url": "https://hooks.example.com/x", "events": "a"}', "events: must be an array"),
        (b'{"url": "https://hooks.example.com/x", "events": [1]}', "events[0]: must be a string"),
        (b'{"url": "https://hooks.example.com/x", "scope": "all"}', "scope: must be one of"),
        (b'{"url": "https://hooks.example.com/x", "metadata": []}', "metadata: must be an object"),
        (b"{}", "url: required"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(api: Api, raw: bytes, field: str) -> None:
    """Invalid JSON, wrong types and unknown fields are 422 VALIDATION naming the field."""
    org = await api.org("bodies")
    reply = await api.call("POST", "/v1/webhooks", await api.writer(org), raw=raw)
    assert (reply.status, reply.code) == (422, "VALIDATION")
    assert reply.body["error"]["message"].startswith(field)


async def test_an_oversized_body_is_413(api: Api) -> None:
    """A body over the 64 KiB cap is refused with 413 PAYLOAD_TOO_LARGE."""
    org = await api.org("big")
    body = b'{"url": "https://hooks.example.com/x", "description": "' + b"x" * 70_000 + b'"}'
    reply = await api.call("POST", "/v1/webhooks", await api.writer(org), raw=body)
    assert (reply.status, reply.code) == (413, "PAYLOAD_TOO_LARGE")


async def test_writes_are_rate_limited_per_key_with_retry_after(api: Api) -> None:
    """With WEBHOOKS_API_RATE_LIMIT=2 a key's fifth immediate write is 429 RATE_LIMITED
    with Retry-After; reads are not limited, and another key is unaffected."""
    org = await api.org("limited")
    secret, other = await api.writer(org), await api.writer(org)
    replies = [
        await api.call("POST", "/v1/webhooks", secret, {"url": URL, "description": str(i)})
        for i in range(5)
    ]
    assert [r.status for r in replies] == [201, 201, 201, 201, 429]
    assert replies[-1].code == "RATE_LIMITED"
    assert int(replies[-1].headers["Retry-After"]) >= 1
    assert (await api.call("GET", "/v1/webhooks", secret)).status == 200
    assert (await api.call("POST", "/v1/webhooks", other, {"url": URL})).status == 201


async def test_keys_are_stored_only_as_hashes(api: Api) -> None:
    """The database holds a key's SHA-256, never the key itself."""
    org = await api.org("hashed")
    _, secret = await api.key(org, "webhooks:read")
    contents = await raw_database_bytes(api)
    assert secret.encode() not in contents
    assert (await api.call("GET", "/v1/whoami", secret)).status == 200
