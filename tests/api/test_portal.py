"""The partner portal's sessions through real HTTP: minting, opening a one-time link, the
cookie it sets, a cookie session using `/v1` with its CSRF token and scopes, expiry,
signing out, and the secrets never logged nor stored in clear."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from dispatcher.core.scopes import hash_key
from dispatcher.logs import JSONFormatter
from tests.api.harness import PLACEHOLDER_URL, Api, eventually, raw_database_bytes
from tests.api.portal_harness import Browser, Signed, browser

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

ADMIN = "webhooks:read,webhooks:write,org:admin"
BOTH = ["webhooks:read", "webhooks:write"]


@pytest_asyncio.fixture(loop_scope="module")
async def portal(api: Api) -> AsyncIterator[Browser]:
    async with browser(api) as opened:
        yield opened


async def admin(api: Api, prefix: str = "portal") -> tuple[str, str]:
    """A fresh organization and a key of it holding every organization scope."""
    org = await api.org(prefix)
    return org, (await api.key(org, ADMIN))[1]


async def test_a_link_opens_a_session_that_reads_and_with_its_csrf_token_writes(
    api: Api, portal: Browser
) -> None:
    """Opening a minted link redirects to the console with an HttpOnly, SameSite=Strict
    cookie on Path=/ (not Secure over plain HTTP) lasting the session; the cookie then reads
    and, with the CSRF token from whoami, creates webhooks in the session's organization."""
    org, key = await admin(api)
    minted = await portal.mint(key, {"scopes": BOTH, "ttlSeconds": 600})
    assert minted.status == 201, minted.body
    assert minted.body["url"].startswith(f"{api.url}/console/portal/lwp_")
    assert minted.body["organizationId"] == org
    opened = await portal.open(minted.body["url"])
    cookie = opened.cookie
    assert (opened.status, opened.headers["Location"]) == (303, "/console/")
    assert cookie is not None
    assert cookie.value.startswith("lws_")
    assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == (True, "Strict", "/")
    assert not cookie["secure"]
    assert 590 <= int(cookie["max-age"]) <= 600
    assert opened.headers["Referrer-Policy"] == "no-referrer"

    signed = Signed(cookie=cookie.value, csrf="", organization=org)
    whoami = await portal.call("GET", "/v1/whoami", signed)
    assert whoami.status == 200, whoami.body
    assert {k: whoami.body[k] for k in ("session", "organizationId", "scopes", "expiresAt")} == {
        "session": "portal",
        "organizationId": org,
        "scopes": BOTH,
        "expiresAt": minted.body["expiresAt"],
    }
    signed = Signed(cookie=cookie.value, csrf=whoami.body["csrfToken"], organization=org)
    created = await portal.call("POST", "/v1/webhooks", signed, {"url": PLACEHOLDER_URL})
    assert created.status == 201, created.body
    listed = await portal.call("GET", "/v1/webhooks", signed)
    assert [e["id"] for e in listed.body["data"]] == [created.body["id"]]
    seen_by_key = await api.call("GET", f"/v1/webhooks/{created.body['id']}", key)
    assert seen_by_key.body["organizationId"] == org


async def test_a_forwarded_proto_header_does_not_make_cookies_secure(
    api: Api, portal: Browser
) -> None:
    """X-Forwarded-Proto is whatever a client sends: without an https WEBHOOKS_PUBLIC_URL,
    a plain-HTTP request gets a cookie without Secure, and the link uses its own Host."""
    _, key = await admin(api)
    url = await portal.link(key, ["webhooks:read"])
    opened = await portal.open(url, headers={"X-Forwarded-Proto": "https"})
    assert opened.cookie is not None
    assert not opened.cookie["secure"]


@pytest.mark.parametrize("csrf", ["", "not-the-token"])
async def test_a_change_without_the_csrf_token_is_forbidden(
    api: Api, portal: Browser, csrf: str
) -> None:
    """A cookie-authenticated POST without X-CSRF-Token, or with a wrong one, is 403
    FORBIDDEN saying what to send, and changes nothing."""
    _, key = await admin(api)
    signed = await portal.sign_in(key, BOTH)
    refused = await portal.call("POST", "/v1/webhooks", signed, {"url": PLACEHOLDER_URL}, csrf=csrf)
    assert (refused.status, refused.code) == (403, "FORBIDDEN")
    assert "X-CSRF-Token" in refused.body["error"]["message"]
    assert (await portal.call("GET", "/v1/webhooks", signed)).body["data"] == []


async def test_a_read_only_session_cannot_write(api: Api, portal: Browser) -> None:
    """A session given webhooks:read only is refused a POST (403) even with its CSRF token."""
    _, key = await admin(api)
    signed = await portal.sign_in(key, ["webhooks:read"])
    refused = await portal.call("POST", "/v1/webhooks", signed, {"url": PLACEHOLDER_URL})
    assert (refused.status, refused.code) == (403, "FORBIDDEN")
    assert (await portal.call("GET", "/v1/webhooks", signed)).status == 200


async def test_a_link_works_once_and_then_shows_a_plain_page(api: Api, portal: Browser) -> None:
    """A HEAD does not spend a link; its second opening gets the 410 page: HTML under a
    strict CSP, no token in it, no cookie, no stack trace."""
    _, key = await admin(api)
    url = await portal.link(key, BOTH)
    token = url.rsplit("/", 1)[1]
    async with portal.session.head(url.removeprefix(api.url)) as head:  # a link checker's
        assert head.status == 405
    assert (await portal.open(url)).status == 303
    again = await portal.open(url)
    assert again.status == 410
    assert again.headers["Content-Type"].startswith("text/html")
    assert "This portal link cannot be used" in again.text
    assert token not in again.text
    assert "Traceback" not in again.text
    assert again.cookie is None
    csp = again.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert "unsafe" not in csp
    unknown = await portal.open("/console/portal/lwp_" + "A" * 43)
    malformed = await portal.open("/console/portal/<script>")
    assert (unknown.status, malformed.status) == (410, 410)
    assert "<script>" not in malformed.text


async def test_racing_openings_of_one_link_yield_exactly_one_session(
    api: Api, portal: Browser
) -> None:
    """Eight concurrent openings of one link: exactly one 303 with a cookie, seven 410s."""
    _, key = await admin(api)
    url = await portal.link(key, BOTH)
    opened = await asyncio.gather(*(portal.open(url) for _ in range(8)))
    assert sorted(o.status for o in opened) == [303] + [410] * 7
    assert sum(o.cookie is not None for o in opened) == 1


async def test_an_expired_link_shows_the_plain_page(api: Api, portal: Browser) -> None:
    """A link whose fuse has run out is refused with the 410 page and sets no cookie."""
    org, key = await admin(api)
    key_id = (await api.stack.running.store.api_key_by_hash(hash_key(key))).id  # type: ignore[union-attr]
    now = datetime.now(UTC)
    path = await portal.stored_link(
        key_id, org, link_expires_at=now - timedelta(seconds=1), expires_at=now + timedelta(hours=1)
    )
    opened = await portal.open(path)
    assert (opened.status, opened.cookie) == (410, None)


async def test_an_expired_session_is_unauthenticated(api: Api, portal: Browser) -> None:
    """Once a session's time is up, its cookie is 401 UNAUTHENTICATED (checked by the
    server at every request) and the answer clears the cookie."""
    org, key = await admin(api)
    key_id = (await api.stack.running.store.api_key_by_hash(hash_key(key))).id  # type: ignore[union-attr]
    now = datetime.now(UTC)
    end = now + timedelta(seconds=2)
    opened = await portal.open(
        await portal.stored_link(key_id, org, link_expires_at=end, expires_at=end)
    )
    assert opened.status == 303
    assert opened.cookie is not None
    signed = Signed(cookie=opened.cookie.value, csrf="", organization=org)
    assert (await portal.call("GET", "/v1/webhooks", signed)).status == 200

    async def expired() -> bool:
        return (await portal.call("GET", "/v1/webhooks", signed)).status == 401

    assert await eventually(expired, within=10)
    refused = await portal.call("GET", "/v1/whoami", signed)
    assert refused.code == "UNAUTHENTICATED"
    assert "Max-Age=0" in refused.headers["Set-Cookie"]


async def test_signing_out_ends_the_session(api: Api, portal: Browser) -> None:
    """DELETE /v1/portal-sessions/current (with the CSRF token) answers 204, clears the
    cookie, and the cookie is 401 afterwards; without the token it is 403; with an API key
    there is no current session (404)."""
    _, key = await admin(api)
    signed = await portal.sign_in(key, ["webhooks:read"])
    path = "/v1/portal-sessions/current"
    assert (await portal.call("DELETE", path, signed, csrf="")).status == 403
    assert (await api.call("DELETE", path, key)).status == 404
    ended = await portal.call("DELETE", path, signed)
    assert ended.status == 204
    assert "Max-Age=0" in ended.headers["Set-Cookie"]
    assert (await portal.call("GET", "/v1/whoami", signed)).status == 401


async def test_revoking_the_minting_key_ends_its_sessions(api: Api, portal: Browser) -> None:
    """A session stops working as soon as the key that minted it is revoked."""
    _, key = await admin(api)
    signed = await portal.sign_in(key, ["webhooks:read"])
    record = await api.stack.running.store.api_key_by_hash(hash_key(key))
    assert record is not None
    await api.stack.running.store.revoke_api_key(record.id, now=datetime.now(UTC))
    assert (await portal.call("GET", "/v1/webhooks", signed)).status == 401


async def test_a_bearer_key_wins_over_a_cookie(api: Api, portal: Browser) -> None:
    """A request with both a key and a cookie is the key's: it sees the key's organization,
    and a bad key is 401 whatever the cookie."""
    _, key = await admin(api)
    signed = await portal.sign_in(key, ["webhooks:read"])
    other = await api.org("other")
    other_key = await api.writer(other)
    as_key = await portal.call("GET", "/v1/whoami", signed, key=other_key)
    assert as_key.body["organizationId"] == other
    assert "session" not in as_key.body
    bad = await portal.call("GET", "/v1/whoami", signed, key="lwk_" + "A" * 43)
    assert bad.status == 401


@pytest.mark.parametrize(
    ("scopes", "body", "status", "named"),
    [
        ("webhooks:read,webhooks:write", {"scopes": ["webhooks:read"]}, 403, "org:admin"),
        ("org:admin", {"scopes": ["webhooks:read"]}, 422, "scopes[0]"),
        (ADMIN, {"scopes": ["org:admin"]}, 422, "scopes[0]"),
        (ADMIN, {"scopes": ["webhooks:read", "ops:read"]}, 422, "scopes[1]"),
        (ADMIN, {}, 422, "scopes"),
        (ADMIN, {"scopes": ["webhooks:read"], "ttlSeconds": 86_401}, 422, "ttlSeconds"),
        (ADMIN, {"scopes": ["webhooks:read"], "organizationId": "org_nobody"}, 404, "org_"),
        (ADMIN, {"scopes": ["webhooks:read"], "extra": 1}, 422, "extra"),
    ],
)
async def test_minting_is_refused_beyond_the_keys_rights(
    api: Api, portal: Browser, scopes: str, body: dict[str, object], status: int, named: str
) -> None:
    """Without org:admin 403; scopes the key lacks, admin or operator scopes, none, a ttl out
    of bounds or an unknown field 422 naming it; an organization out of reach 404."""
    org = await api.org("mint")
    key = (await api.key(org, scopes))[1]
    refused = await portal.mint(key, body)
    assert refused.status == status, refused.body
    assert named in refused.body["error"]["message"]


async def test_operator_keys_and_sessions_cannot_mint(api: Api, portal: Browser) -> None:
    """An operator key is 403, and so is a portal session (it never holds org:admin)."""
    operator = (await api.key(None, "ops:read,ops:replay,platform:orgs"))[1]
    assert (await portal.mint(operator, {"scopes": ["webhooks:read"]})).status == 403
    _, key = await admin(api)
    signed = await portal.sign_in(key, BOTH)
    again = await portal.call("POST", "/v1/portal-sessions", signed, {"scopes": ["webhooks:read"]})
    assert (again.status, again.code) == (403, "FORBIDDEN")


async def test_no_portal_secret_is_logged_or_stored_in_clear(
    api: Api, portal: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the link token, the cookie nor the CSRF token reaches a log line or a database
    byte; the store holds the token's SHA-256 only."""
    caplog.set_level(logging.DEBUG)
    _, key = await admin(api)
    url = await portal.link(key, BOTH)
    token = url.rsplit("/", 1)[1]
    opened = await portal.open(url)
    assert opened.cookie is not None
    assert (await portal.open(url)).status == 410
    signed = Signed(cookie=opened.cookie.value, csrf="", organization="")
    csrf = (await portal.call("GET", "/v1/whoami", signed)).body["csrfToken"]
    signed = Signed(cookie=signed.cookie, csrf=csrf, organization="")
    await portal.call("POST", "/v1/webhooks", signed, {"url": PLACEHOLDER_URL})
    await portal.call("POST", "/v1/webhooks", signed, {"url": 1}, csrf="wrong")
    formatter = JSONFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    database = await raw_database_bytes(api)
    assert "portal link opened" in logged
    assert hash_key(token).encode() in database
    for secret in (token, token[4:], signed.cookie, signed.cookie[4:], csrf):
        assert secret not in logged
        assert secret.encode() not in database
