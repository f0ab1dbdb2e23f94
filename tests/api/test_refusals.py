"""Queries that used to answer an empty page, now refused with a 422 naming the parameter:
a cursor this API never returned, a period that ends before it starts, an unknown dead-letter
reason or status; and the `Server` header, which names no Python or aiohttp version."""

from __future__ import annotations

import asyncio

import pytest

from dispatcher.clock import new_id
from tests.api.harness import Api

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]


async def test_a_cursor_not_returned_by_this_api_is_a_422_on_every_listing(api: Api) -> None:
    """`?after=garbage`, and an id of another kind, are refused by each paged listing."""
    key = await api.writer(await api.org("cursor"))
    _, operator = await api.key(None, "ops:read")
    endpoint = await api.create(key, {"url": "https://hooks.example.com/in"})
    listings = [
        ("/v1/webhooks", key),
        (f"/v1/webhooks/{endpoint['id']}/deliveries", key),
        ("/v1/dead-letters", operator),
    ]
    for path, caller in listings:
        for cursor in ("garbage", new_id("evt"), f"{endpoint['id']}x"):
            reply = await api.call("GET", f"{path}?after={cursor}", caller)
            assert (reply.status, reply.code) == (422, "VALIDATION"), (path, cursor)
            assert reply.body["error"]["message"].startswith("after: not a cursor returned")
    good = await api.call("GET", f"/v1/webhooks?after={new_id('ep')}", key)
    assert good.status == 200


async def test_statuses_are_a_comma_list_and_a_reversed_period_is_refused(api: Api) -> None:
    """`status=pending,failed` lists both; an unknown status is named; `until` before
    `since` is a 422 instead of an empty page."""
    key = await api.writer(await api.org("period"))
    endpoint = await api.create(key, {"url": "https://hooks.example.com/in"})
    path = f"/v1/webhooks/{endpoint['id']}/deliveries"

    both = await api.call("GET", f"{path}?status=pending,failed", key)
    bad = await api.call("GET", f"{path}?status=pending,lost", key)
    reversed_ = await api.call(
        "GET", f"{path}?since=2026-06-09T12:00:00Z&until=2026-06-09T11:00:00Z", key
    )

    assert (both.status, both.body["data"]) == (200, [])
    assert (bad.status, bad.code) == (422, "VALIDATION")
    assert bad.body["error"]["message"].startswith("status: 'lost' is not one of pending")
    assert (reversed_.status, reversed_.body["error"]["message"]) == (
        422,
        "until: must be later than since",
    )


async def test_an_unknown_dead_letter_reason_is_refused_listing_the_reasons(api: Api) -> None:
    """`?reason=bogus` is a 422 naming every reason code; a real one answers."""
    _, operator = await api.key(None, "ops:read")
    bogus = await api.call("GET", "/v1/dead-letters?reason=bogus", operator)
    real = await api.call("GET", "/v1/dead-letters?reason=malformed_json", operator)
    assert (bogus.status, bogus.code) == (422, "VALIDATION")
    message = bogus.body["error"]["message"]
    assert message.startswith("reason: must be one of ")
    assert "malformed_json" in message
    assert "undecodable_batch" in message
    assert real.status == 200


async def test_the_server_header_names_no_versions_on_any_response(api: Api) -> None:
    """200, 401, 404, 405, 422 and /metrics all answer `Server: layers-webhooks`."""
    key = await api.writer(await api.org("server"))
    replies = [
        await api.call("GET", "/healthz", None),
        await api.call("GET", "/metrics", None),
        await api.call("GET", "/v1/webhooks", None),
        await api.call("GET", "/v1/nothing-here", key),
        await api.call("DELETE", "/v1/webhooks", key),
        await api.call("GET", "/v1/webhooks?limit=0", key),
    ]
    assert [r.status for r in replies] == [200, 200, 401, 404, 405, 422]
    assert {r.headers.get("Server") for r in replies} == {"layers-webhooks"}


async def test_a_malformed_request_line_does_not_reveal_versions_either(api: Api) -> None:
    """Even aiohttp's own 400 for bytes that are not HTTP names no Python or aiohttp."""
    host, port = api.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    assert head.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    assert b"\r\nServer: layers-webhooks\r\n" in head
    assert b"Python/" not in head
    assert b"aiohttp/" not in head
