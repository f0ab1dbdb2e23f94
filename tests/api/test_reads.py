"""Listings and on-call reads through the running service: deliveries filtered and paged,
an event with its deliveries, the event catalog, and dead letters (show, retry)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from dispatcher.clock import new_id
from dispatcher.core.models import DeadLetter
from dispatcher.store import IngestBatch
from tests.api.harness import Api, eventually
from tests.e2e.harness import catalog, envelope

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]


async def test_deliveries_are_filtered_and_paged_newest_first(api: Api) -> None:
    """An endpoint's deliveries filter by type, status and time, and page by cursor."""
    org = await api.org("list")
    key = await api.writer(org)
    async with api.hooked(key) as (receiver, endpoint):
        sent = [await api.publish(org) for _ in range(3)]
        sent += [await api.publish(org, "approval.approved") for _ in range(2)]
        assert await receiver.wait_until(lambda r: len(r.delivered()) == 5, 30)
    path = f"/v1/webhooks/{endpoint['id']}/deliveries"

    async def all_succeeded() -> bool:
        listing = await api.call("GET", f"{path}?status=succeeded", key)
        return len(listing.body["data"]) == 5

    assert await eventually(all_succeeded)
    typed = await api.call("GET", f"{path}?type=approval.approved", key)
    first = await api.call("GET", f"{path}?limit=3", key)
    rest = await api.call("GET", f"{path}?limit=3&after={first.body['nextCursor']}", key)
    future = await api.call("GET", f"{path}?since=2999-01-01T00:00:00Z", key)
    bad_time = await api.call("GET", f"{path}?since=yesterday", key)
    bad_status = await api.call("GET", f"{path}?status=lost", key)

    assert sorted(d["eventId"] for d in typed.body["data"]) == sorted(sent[3:])
    paged = [d["id"] for d in first.body["data"] + rest.body["data"]]
    assert paged == sorted(paged, reverse=True)
    assert len(paged) == 5
    assert rest.body["nextCursor"] is None
    assert future.body == {"data": [], "nextCursor": None}
    assert bad_time.body["error"]["message"].startswith("since: not an RFC 3339")
    assert bad_status.body["error"]["message"].startswith("status: 'lost' is not one of")


async def test_an_event_shows_its_data_and_the_organizations_deliveries(api: Api) -> None:
    """GET /v1/events/{id} answers the envelope's data and this org's deliveries of it."""
    org = await api.org("event")
    key = await api.writer(org)
    async with api.hooked(key) as (receiver, endpoint):
        event_id = await api.publish(org)
        assert await receiver.wait_until(lambda r: event_id in r.delivered(), 30)
    shown = await api.call("GET", f"/v1/events/{event_id}", key)
    assert shown.status == 200
    assert (shown.body["type"], shown.body["data"]["organizationId"]) == (
        "content.generated",
        org,
    )
    assert [d["endpointId"] for d in shown.body["deliveries"]] == [endpoint["id"]]
    assert shown.body["created"].endswith("Z")


async def test_event_types_list_the_catalog_with_schemas_and_examples(api: Api) -> None:
    """GET /v1/event-types answers every catalog type with its schema and examples."""
    key = await api.writer(await api.org("types"))
    reply = await api.call("GET", "/v1/event-types", key)
    types = {t["type"]: t for t in reply.body["data"]}
    assert sorted(types) == list(catalog().types)
    generated = types["content.generated"]
    assert generated["schema"]["type"] == "object"
    assert generated["examples"] == list(catalog().examples("content.generated"))


async def test_dead_letters_show_their_bytes_and_retry_only_when_now_valid(api: Api) -> None:
    """Dead letters list by reason and show their original bytes in base64; retrying a
    still-invalid one is 422 naming the reason; one valid under today's catalog enters the
    fan-out, is delivered, and is marked retried."""
    org = await api.org("dead")
    key = await api.writer(org)
    _, operator = await api.key(None, "ops:read,ops:replay")
    bad = b'{"id": "evt_broken", "type": '
    await api.stack.publish(bad, key=org)
    event_id, good = envelope(org)
    letter = DeadLetter(
        id=new_id("dl"),
        topic="layers.events",
        partition=0,
        offset=int(datetime.now(UTC).timestamp() * 1000),
        key=org.encode(),
        value=good,
        reason="unknown_type",
        detail="type was not in the catalog then",
        received_at=datetime.now(UTC),
    )
    await api.stack.running.store.ingest(IngestBatch(dead_letters=[letter]))

    async def dead_lettered() -> list[dict[str, object]]:
        listing = await api.call("GET", "/v1/dead-letters?reason=malformed_json", operator)
        return [d for d in listing.body["data"] if d["size"] == len(bad)]

    async def arrived() -> bool:
        return bool(await dead_lettered())

    assert await eventually(arrived)
    [malformed] = await dead_lettered()
    shown = await api.call("GET", f"/v1/dead-letters/{malformed['id']}", operator)
    still_bad = await api.call("POST", f"/v1/dead-letters/{malformed['id']}/retry", operator)
    assert base64.b64decode(shown.body["value"]) == bad
    assert (still_bad.status, still_bad.code) == (422, "VALIDATION")
    assert still_bad.body["error"]["message"].startswith("still invalid: malformed_json")

    async with api.hooked(key) as (receiver, _):
        retried = await api.call("POST", f"/v1/dead-letters/{letter.id}/retry", operator)
        assert retried.status == 200
        assert await receiver.wait_until(lambda r: event_id in r.delivered(), 30)
    assert (retried.body["eventId"], retried.body["deliveriesCreated"]) == (event_id, 1)
    after = await api.call("GET", f"/v1/dead-letters/{letter.id}", operator)
    assert after.body["retriedAt"] is not None
