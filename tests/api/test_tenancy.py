"""The tenancy matrix: two unrelated organizations, a parent with two children and a
grandchild, keys with and without org:admin, and operator keys. Another organization's
object is 404, a missing privilege 403; firehoses reach exactly one level down; suspended
and archived organizations' events are suppressed and recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from dispatcher.core.envelope import decode_event
from dispatcher.core.models import DisabledReason, EndpointStatus, Event
from tests.api.harness import PLACEHOLDER_URL, Api, eventually
from tests.e2e.harness import catalog, envelope

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]


@dataclass
class World:
    orgs: dict[str, str]  # a, b, p, c1, c2, g
    keys: dict[str, str]  # name → secret
    ids: dict[str, str]  # ep_a, dlv_a, evt_a, rpl_a, ep_c1

    def fill(self, text: str) -> str:
        return text.format(**self.orgs, **self.ids)


async def _event_for(api: Api, org: str) -> str:
    event_id, body = envelope(org)
    event = decode_event(body, catalog=catalog(), max_bytes=1 << 20)
    assert isinstance(event, Event), event
    await api.stack.running.intake.ingest([event])
    return event_id


@pytest_asyncio.fixture(loop_scope="module")
async def world(api: Api) -> World:
    a, b, p = await api.org("a"), await api.org("b"), await api.org("p")
    c1, c2 = await api.org("c1", p), await api.org("c2", p)
    g = await api.org("g", c1)
    keys: dict[str, str] = {}
    for name, org, scopes in [
        ("a_read", a, "webhooks:read"),
        ("a_write", a, "webhooks:read,webhooks:write"),
        ("b_rw", b, "webhooks:read,webhooks:write"),
        ("b_admin", b, "webhooks:read,webhooks:write,org:admin"),
        ("p_rw", p, "webhooks:read,webhooks:write"),
        ("p_admin", p, "webhooks:read,webhooks:write,org:admin"),
        ("p_admin_only", p, "org:admin"),
        ("c1_admin", c1, "webhooks:read,webhooks:write,org:admin"),
        ("ops_read", None, "ops:read"),
        ("ops_replay", None, "ops:replay"),
        ("platform", None, "platform:orgs"),
    ]:
        keys[name] = (await api.key(org, scopes))[1]
    ep_a = (await api.create(keys["a_write"], {"url": PLACEHOLDER_URL}))["id"]
    endpoint = await api.stack.running.store.get_endpoint(ep_a)
    assert endpoint is not None
    await api.stack.running.scheduler.disable(endpoint, DisabledReason.MANUAL)  # no leases
    await api.stack.running.directory.refresh()
    ep_c1 = (await api.create(keys["p_admin"], {"url": PLACEHOLDER_URL}, org=c1))["id"]
    evt_a = await _event_for(api, a)
    [delivery] = await api.stack.running.store.list_event_deliveries(evt_a)
    replay = await api.call(
        "POST", f"/v1/webhooks/{ep_a}/replay", keys["a_write"], {"since": "2020-01-01T00:00:00Z"}
    )
    assert replay.status == 202, replay.body
    ids = {"ep_a": ep_a, "dlv_a": delivery.id, "evt_a": evt_a, "rpl_a": replay.body["id"]}
    return World(
        orgs={"a": a, "b": b, "p": p, "c1": c1, "c2": c2, "g": g},
        keys=keys,
        ids={**ids, "ep_c1": ep_c1},
    )


CROSS_ORG = [
    ("GET", "/v1/webhooks/{ep_a}", None),
    ("PATCH", "/v1/webhooks/{ep_a}", {"description": "mine now"}),
    ("DELETE", "/v1/webhooks/{ep_a}", None),
    ("POST", "/v1/webhooks/{ep_a}/rotate-secret", {}),
    ("POST", "/v1/webhooks/{ep_a}/enable", {}),
    ("POST", "/v1/webhooks/{ep_a}/disable", {}),
    ("POST", "/v1/webhooks/{ep_a}/test", {}),
    ("POST", "/v1/webhooks/{ep_a}/replay", {"since": "2020-01-01T00:00:00Z", "dryRun": True}),
    ("GET", "/v1/webhooks/{ep_a}/deliveries", None),
    ("GET", "/v1/deliveries/{dlv_a}", None),
    ("POST", "/v1/deliveries/{dlv_a}/replay", {}),
    ("GET", "/v1/events/{evt_a}", None),
    ("GET", "/v1/replays/{rpl_a}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), CROSS_ORG)
@pytest.mark.parametrize(("key", "acting"), [("b_rw", None), ("b_admin", None), ("p_admin", None)])
async def test_another_organizations_objects_are_404(
    api: Api, world: World, key: str, acting: str | None, method: str, path: str, body: Any
) -> None:
    """Every read and write of another organization's webhook, delivery, event or replay is
    404 NOT_FOUND — never 403, so ids do not leak."""
    reply = await api.call(method, world.fill(path), world.keys[key], body)
    assert (reply.status, reply.code) == (404, "NOT_FOUND"), reply.body


@pytest.mark.parametrize(
    ("key", "method", "path", "body", "acting", "status"),
    [
        # org:admin lets a key act inside a *direct* child only.
        ("p_admin", "GET", "/v1/webhooks/{ep_c1}", None, None, 404),
        ("p_admin", "GET", "/v1/webhooks/{ep_c1}", None, "c1", 200),
        ("p_admin", "GET", "/v1/webhooks", None, "g", 404),
        ("p_admin", "GET", "/v1/webhooks", None, "a", 404),
        ("c1_admin", "GET", "/v1/webhooks", None, "c2", 404),
        ("c1_admin", "GET", "/v1/webhooks", None, "p", 404),
        ("c1_admin", "GET", "/v1/webhooks", None, "g", 200),
        ("b_admin", "GET", "/v1/webhooks/{ep_a}", None, "a", 404),
        ("p_rw", "GET", "/v1/webhooks", None, "c1", 403),
        # Scopes are never implied.
        ("a_read", "POST", "/v1/webhooks", {"url": PLACEHOLDER_URL}, None, 403),
        ("a_read", "POST", "/v1/deliveries/{dlv_a}/replay", {}, None, 403),
        (
            "a_write",
            "POST",
            "/v1/webhooks",
            {"url": PLACEHOLDER_URL, "scope": "all_children"},
            None,
            403,
        ),
        ("p_admin_only", "GET", "/v1/webhooks", None, None, 403),
        ("a_write", "GET", "/v1/dead-letters", None, None, 403),
        ("a_write", "PUT", "/v1/organizations/{a}", {"status": "active"}, None, 403),
        ("ops_read", "POST", "/v1/webhooks", {"url": PLACEHOLDER_URL}, "a", 403),
        ("ops_read", "POST", "/v1/deliveries/{dlv_a}/replay", {}, None, 403),
        ("ops_read", "PUT", "/v1/organizations/{a}", {"status": "active"}, None, 403),
        ("ops_replay", "GET", "/v1/webhooks/{ep_a}", None, None, 403),
        ("platform", "GET", "/v1/webhooks/{ep_a}", None, None, 403),
        # Operators read and replay across organizations, or inside the one they name.
        ("ops_read", "GET", "/v1/webhooks/{ep_a}", None, None, 200),
        ("ops_read", "GET", "/v1/deliveries/{dlv_a}", None, None, 200),
        ("ops_read", "GET", "/v1/events/{evt_a}", None, None, 200),
        ("ops_read", "GET", "/v1/replays/{rpl_a}", None, None, 200),
        ("ops_read", "GET", "/v1/dead-letters", None, None, 200),
        ("ops_read", "GET", "/v1/webhooks", None, "a", 200),
        ("ops_read", "GET", "/v1/webhooks/{ep_a}", None, "b", 404),
        ("ops_replay", "POST", "/v1/deliveries/{dlv_a}/replay", {"reason": "on-call"}, None, 202),
        ("platform", "PUT", "/v1/organizations/{a}", {"status": "active"}, None, 200),
        # The body never chooses the organization.
        (
            "a_write",
            "POST",
            "/v1/webhooks",
            {"url": PLACEHOLDER_URL, "organizationId": "{b}"},
            None,
            422,
        ),
        (
            "a_write",
            "POST",
            "/v1/webhooks/{ep_a}/replay",
            {"since": "2020-01-01T00:00:00Z", "organizationId": "{a}"},
            None,
            422,
        ),
    ],
)
async def test_privileges_and_acting_organizations(
    api: Api,
    world: World,
    key: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    acting: str | None,
    status: int,
) -> None:
    """Each (key, route, X-Layers-Organization) gets exactly the expected status."""
    filled = (
        None
        if body is None
        else {k: world.fill(v) if isinstance(v, str) else v for k, v in body.items()}
    )
    org = None if acting is None else world.orgs[acting]
    reply = await api.call(method, world.fill(path), world.keys[key], filled, org=org)
    assert reply.status == status, reply.body


async def test_firehoses_reach_exactly_one_level_down(api: Api, world: World) -> None:
    """p's firehose gets p, c1 and c2 events; c1's gets c1 and g; neither gets a parent's,
    a sibling's, a grandchild's or an unrelated org's event."""
    orgs = world.orgs
    async with (
        api.hooked(world.keys["p_admin"], scope="all_children") as (p_hose, _),
        api.hooked(world.keys["c1_admin"], scope="all_children") as (c1_hose, _),
    ):
        sent = {name: await api.publish(orgs[name]) for name in ("p", "c1", "c2", "g", "a")}
        assert await p_hose.wait_until(lambda r: len(r.delivered()) >= 3, 30)
        assert await c1_hose.wait_until(lambda r: len(r.delivered()) >= 2, 30)

        async def all_stored() -> bool:
            store = api.stack.running.store
            return all([await store.get_event(e) is not None for e in sent.values()])

        assert await eventually(all_stored)
        assert p_hose.delivered() == {sent["p"], sent["c1"], sent["c2"]}
        assert c1_hose.delivered() == {sent["c1"], sent["g"]}
        assert all(r.verified for r in p_hose.received + c1_hose.received)
        grandchild = await api.call("GET", f"/v1/events/{sent['g']}", world.keys["p_admin"])
        assert grandchild.status == 404


async def test_a_firehose_stops_receiving_children_when_its_key_is_revoked(
    api: Api, world: World
) -> None:
    """After the registering key is revoked, p's firehose keeps p's own events but no
    longer receives its children's."""
    orgs = world.orgs
    async with api.hooked(world.keys["p_admin"], scope="all_children") as (hose, endpoint):
        before = await api.publish(orgs["c1"])
        assert await hose.wait_until(lambda r: before in r.delivered(), 30)
        store = api.stack.running.store
        await store.revoke_api_key(endpoint["createdByKeyId"], now=datetime.now(UTC))
        await api.stack.running.directory.refresh()

        child, own = await api.publish(orgs["c1"]), await api.publish(orgs["p"])
        assert await hose.wait_until(lambda r: own in r.delivered(), 30)

        async def child_stored() -> bool:
            return await store.get_event(child) is not None

        assert await eventually(child_stored)
        assert child not in hose.ids()
        recorded = [d.endpoint_id for d in await store.list_event_deliveries(child)]
        assert endpoint["id"] not in recorded


@pytest.mark.parametrize("status", ["suspended", "archived"])
async def test_suspended_and_archived_orgs_are_suppressed_and_recorded(
    api: Api, world: World, status: str
) -> None:
    """An event of a suspended or archived child is recorded for its own endpoint and its
    parent's firehose as `suppressed` with the reason, and delivered to neither."""
    orgs = world.orgs
    c2_key = await api.writer(orgs["c2"])
    async with (
        api.hooked(world.keys["p_admin"], scope="all_children") as (hose, _),
        api.hooked(c2_key) as (own, own_endpoint),
    ):
        reply = await api.call(
            "PUT", f"/v1/organizations/{orgs['c2']}", world.keys["platform"], {"status": status}
        )
        assert reply.body == {
            "id": orgs["c2"],
            "parentOrganizationId": orgs["p"],
            "status": status,
            "portalOrigins": [],
        }
        event_id = await api.publish(orgs["c2"])
        path = f"/v1/webhooks/{own_endpoint['id']}/deliveries?status=suppressed"

        async def recorded() -> bool:
            listing = await api.call("GET", path, c2_key)
            return [d["eventId"] for d in listing.body["data"]] == [event_id]

        assert await eventually(recorded)
        deliveries = await api.stack.running.store.list_event_deliveries(event_id)
        assert (
            sorted((d.status.value, d.reason) for d in deliveries)
            == [("suppressed", f"org_{status}")] * 2
        )
        assert hose.received == []
        assert own.received == []
        endpoint = await api.stack.running.store.get_endpoint(own_endpoint["id"])
        assert endpoint is not None
        assert endpoint.status is EndpointStatus.ENABLED
