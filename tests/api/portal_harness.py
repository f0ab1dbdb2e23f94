"""A browser's view of the partner portal for the API tests: opening portal links without
following redirects, and calling `/v1` with a session cookie (and its CSRF token) instead of
an API key. Cookies are sent by hand, so nothing is kept between calls by accident."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import Morsel, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from multidict import CIMultiDict

from dispatcher.clock import new_id, random_bytes
from dispatcher.core.portal import SECRET_BYTES, PortalSession, link_token
from dispatcher.core.scopes import hash_key
from tests.api.harness import Api, Reply

COOKIE = "lw_portal"


@dataclass(frozen=True)
class Opened:
    """What a browser gets back for a portal link."""

    status: int
    headers: CIMultiDict[str]
    text: str

    @property
    def cookie(self) -> Morsel[str] | None:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.getall("Set-Cookie", []):
            jar.load(header)
        return jar.get(COOKIE)


@dataclass(frozen=True)
class Signed:
    """A signed-in portal session: its cookie value and CSRF token."""

    cookie: str
    csrf: str
    organization: str


@dataclass
class Browser:
    api: Api
    session: aiohttp.ClientSession

    async def mint(self, key: str, body: dict[str, Any], *, org: str | None = None) -> Reply:
        return await self.api.call("POST", "/v1/portal-sessions", key, body, org=org)

    async def link(self, key: str, scopes: list[str], **fields: Any) -> str:
        reply = await self.mint(key, {"scopes": scopes, **fields})
        assert reply.status == 201, reply.body
        url: str = reply.body["url"]
        return url

    async def open(self, url: str, headers: dict[str, str] | None = None) -> Opened:
        path = urlsplit(url).path
        async with self.session.get(path, allow_redirects=False, headers=headers) as response:
            text = await response.text()
            return Opened(response.status, CIMultiDict(response.headers), text)

    async def call(
        self,
        method: str,
        path: str,
        signed: Signed | None,
        body: Any = None,
        *,
        csrf: str | None = None,
        key: str | None = None,
        org: str | None = None,
    ) -> Reply:
        """A request with the session's cookie; `csrf` None sends the session's own token
        on changes, "" sends none."""
        headers: dict[str, str] = {}
        if signed is not None:
            headers["Cookie"] = f"{COOKIE}={signed.cookie}"
            token = signed.csrf if csrf is None else csrf
            if token and method not in ("GET", "HEAD"):
                headers["X-CSRF-Token"] = token
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if org is not None:
            headers["X-Layers-Organization"] = org
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, path, data=data, headers=headers) as response:
            content = await response.read()
            parsed = (
                orjson.loads(content)
                if content and response.content_type.endswith("json")
                else content
            )
            return Reply(response.status, parsed, CIMultiDict(response.headers))

    async def sign_in(self, key: str, scopes: list[str], **fields: Any) -> Signed:
        """Mint with `key`, open the link, and read the CSRF token from whoami."""
        opened = await self.open(await self.link(key, scopes, **fields))
        assert opened.status == 303, opened.text
        assert opened.cookie is not None
        signed = Signed(cookie=opened.cookie.value, csrf="", organization="")
        whoami = await self.call("GET", "/v1/whoami", signed)
        assert whoami.status == 200, whoami.body
        return Signed(
            cookie=signed.cookie,
            csrf=whoami.body["csrfToken"],
            organization=whoami.body["organizationId"],
        )

    async def stored_link(
        self, key_id: str, org: str, *, link_expires_at: datetime, expires_at: datetime
    ) -> str:
        """A link minted straight into the store with chosen expiry times."""
        token = link_token(random_bytes(SECRET_BYTES))
        session = PortalSession(
            id=new_id("pss"),
            organization_id=org,
            key_id=key_id,
            scopes=frozenset({"webhooks:read"}),
            created_at=datetime.now(UTC),
            link_expires_at=link_expires_at,
            expires_at=expires_at,
        )
        await self.api.stack.running.store.create_portal_session(session, hash_key(token))
        return f"/console/portal/{token}"


@asynccontextmanager
async def browser(api: Api) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(api.url, cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield Browser(api=api, session=session)
