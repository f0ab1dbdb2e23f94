"""The API under test: one running service (Tansu + a real store) per test module, reached
through real HTTP, with helpers to mint keys and organizations and to hook verifying
receivers to endpoints registered through the API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
from multidict import CIMultiDict

from devtools import receivers
from devtools.receivers import Behaviour, Receiver
from dispatcher.clock import new_id, random_bytes
from dispatcher.core.models import Organization, OrgStatus
from dispatcher.core.scopes import KEY_ENTROPY_BYTES, hash_key, new_api_key, parse_scopes
from tests.conftest import fresh_postgres_database
from tests.e2e.harness import Stack, envelope, running_stack, stack_settings

WAIT = 30.0  # seconds: a bound for things to arrive, not a speed assertion
PLACEHOLDER_URL = "http://127.0.0.1:9/placeholder"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def code(self) -> str | None:
        """The error code of an error reply."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code: str = self.body["error"]["code"]
            return code
        return None


@dataclass
class Api:
    stack: Stack
    session: aiohttp.ClientSession
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.stack.running.url

    async def call(
        self,
        method: str,
        path: str,
        key: str | None,
        body: Any = None,
        *,
        org: str | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        if org is not None:
            headers["X-Layers-Organization"] = org
        data = raw if raw is not None else None if body is None else orjson.dumps(body)
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

    async def key(self, org: str | None, scopes: str, *, name: str = "test") -> tuple[str, str]:
        """A new key (id, secret) for `org` (None: an operator key) with `scopes`."""
        record, secret = new_api_key(
            organization_id=org,
            scopes=parse_scopes(scopes, operator=org is None),
            name=name,
            now=datetime.now(UTC),
            key_id=new_id("key"),
            entropy=random_bytes(KEY_ENTROPY_BYTES),
        )
        await self.stack.running.store.create_api_key(record, hash_key(secret))
        return record.id, secret

    async def org(
        self, prefix: str, parent: str | None = None, status: OrgStatus = OrgStatus.ACTIVE
    ) -> str:
        """A fresh organization (unique per call) under `parent`."""
        org_id = f"org_{prefix}_{uuid.uuid4().hex[:8]}"
        await self.stack.running.store.put_organization(
            Organization(id=org_id, parent_id=parent, status=status)
        )
        self.stack.running.directory.invalidate()
        await self.stack.running.directory.refresh()
        return org_id

    async def writer(self, org: str, extra: str = "") -> str:
        """A read+write key of `org` (plus `extra` scopes)."""
        _, secret = await self.key(org, "webhooks:read,webhooks:write" + extra)
        return secret

    async def create(self, key: str, body: Mapping[str, Any], *, org: str | None = None) -> Any:
        reply = await self.call("POST", "/v1/webhooks", key, dict(body), org=org)
        assert reply.status == 201, reply.body
        return reply.body

    @asynccontextmanager
    async def hooked(
        self,
        key: str,
        behaviour: Behaviour | None = None,
        *,
        org: str | None = None,
        **fields: Any,
    ) -> AsyncIterator[tuple[Receiver, dict[str, Any]]]:
        """An endpoint registered through the API, pointed at a verifying receiver that
        knows its secret; yields the receiver and the endpoint (with `secret`)."""
        created = await self.create(key, {"url": PLACEHOLDER_URL, **fields}, org=org)
        async with Receiver(created["secret"], behaviour or receivers.healthy()) as receiver:
            patched = await self.call(
                "PATCH", f"/v1/webhooks/{created['id']}", key, {"url": receiver.url}, org=org
            )
            assert patched.status == 200, patched.body
            yield receiver, {**patched.body, "secret": created["secret"]}

    async def publish(self, org: str, event_type: str = "content.generated") -> str:
        event_id, body = envelope(org, event_type)
        await self.stack.publish(body, key=org)
        return event_id


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> bool:
    """Poll `check` until it holds or `within` seconds pass (a bound, not a speed claim)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


@asynccontextmanager
async def running_api(
    backend: str, directory: str, bootstrap: str, env: Mapping[str, str]
) -> AsyncIterator[Api]:
    """The service on `backend` ("sqlite" or "postgres") with an HTTP session to it."""
    async with _database(backend, directory) as database_url:
        settings = stack_settings(database_url, bootstrap, **env)
        async with (
            running_stack(settings) as stack,
            aiohttp.ClientSession(stack.running.url) as session,
        ):
            yield Api(stack=stack, session=session, database_url=database_url, env=dict(env))


@asynccontextmanager
async def _database(backend: str, directory: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory}/webhooks.db"
        return
    async with fresh_postgres_database("whapi") as url:
        yield url


async def raw_database_bytes(api: Api) -> bytes:
    """Everything the database holds, as bytes (to prove a plaintext secret is absent)."""
    url = api.database_url
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")

        def read() -> bytes:
            chunks = []
            for suffix in ("", "-wal"):
                try:
                    with open(path + suffix, "rb") as handle:
                        chunks.append(handle.read())
                except FileNotFoundError:
                    pass
            return b"".join(chunks)

        return await asyncio.to_thread(read)
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        chunks: list[bytes] = []
        for (table,) in tables:
            for row in await conn.fetch(f'SELECT * FROM "{table}"'):  # noqa: S608 - catalog names
                chunks.extend(
                    value if isinstance(value, bytes) else str(value).encode()
                    for value in row.values()
                )
        return b"\n".join(chunks)
    finally:
        await conn.close()
