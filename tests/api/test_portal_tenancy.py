"""A portal session sees exactly its organization: a child's portal never reaches a sibling's
or the parent's objects (the parent's firehose included), and the origins allowed to frame
an organization's portal are set by its administrators and sent as `frame-ancestors`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from dispatcher.core.envelope import decode_event
from dispatcher.core.models import Event
from tests.api.harness import PLACEHOLDER_URL, Api, eventually
from tests.api.portal_harness import Browser, Signed, browser
from tests.e2e.harness import catalog, envelope

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

ADMIN = "webhooks:read,webhooks:write,org:admin"


@dataclass
class Family:
    orgs: dict[str, str]  # p, c1, c2
    keys: dict[str, str]  # p_admin, c1_admin, c2_admin, c1_rw, platform
    ids: dict[str, str]  # ep_p, hose_p, ep_c1, ep_c2, evt_c1, dlv_hose, dlv_c1
    c1: Signed  # a portal session of c1, minted by p's admin

    def fill(self, text: str) -> str:
        return text.format(**self.orgs, **self.ids)


@pytest_asyncio.fixture(loop_scope="module")
async def portal(api: Api) -> AsyncIterator[Browser]:
    async with browser(api) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="module")
async def family(api: Api, portal: Browser) -> Family:
    p = await api.org("p")
    c1, c2 = await api.org("c1", p), await api.org("c2", p)
    keys = {
        "p_admin": (await api.key(p, ADMIN))[1],
        "c1_admin": (await api.key(c1, ADMIN))[1],
        "c2_admin": (await api.key(c2, ADMIN))[1],
        "c1_rw": await api.writer(c1),
        "platform": (await api.key(None, "platform:orgs"))[1],
    }
    ids = {
        "ep_p": (await api.create(keys["p_admin"], {"url": PLACEHOLDER_URL}))["id"],
        "hose_p": (
            await api.create(keys["p_admin"], {"url": PLACEHOLDER_URL, "scope": "all_children"})
        )["id"],
        "ep_c1": (await api.create(keys["c1_rw"], {"url": PLACEHOLDER_URL}))["id"],
        "ep_c2": (await api.create(keys["c2_admin"], {"url": PLACEHOLDER_URL}))["id"],
    }
    event_id, body = envelope(c1)
    event = decode_event(body, catalog=catalog(), max_bytes=1 << 20)
    assert isinstance(event, Event), event
    await api.stack.running.intake.ingest([event])
    deliveries = {
        d.endpoint_id: d.id for d in await api.stack.running.store.list_event_deliveries(event_id)
    }
    ids |= {
        "evt_c1": event_id,
        "dlv_hose": deliveries[ids["hose_p"]],
        "dlv_c1": deliveries[ids["ep_c1"]],
    }
    both = ["webhooks:read", "webhooks:write"]
    signed = await portal.sign_in(keys["p_admin"], both, organizationId=c1)
    return Family(orgs={"p": p, "c1": c1, "c2": c2}, keys=keys, ids=ids, c1=signed)


async def test_a_parent_mints_a_portal_for_its_direct_child(api: Api, family: Family) -> None:
    """p's admin key mints a session of c1; it lists c1's endpoints and nothing else."""
    assert family.c1.organization == family.orgs["c1"]
    async with browser(api) as portal:
        listed = await portal.call("GET", "/v1/webhooks", family.c1)
    assert [e["id"] for e in listed.body["data"]] == [family.ids["ep_c1"]]


OUT_OF_REACH = [
    ("GET", "/v1/webhooks/{ep_p}", None, 404),
    ("GET", "/v1/webhooks/{hose_p}", None, 404),
    ("GET", "/v1/webhooks/{ep_c2}", None, 404),
    ("PATCH", "/v1/webhooks/{ep_c2}", {"description": "mine now"}, 404),
    ("POST", "/v1/webhooks/{hose_p}/disable", {}, 404),
    ("GET", "/v1/webhooks/{hose_p}/deliveries", None, 404),
    ("GET", "/v1/deliveries/{dlv_hose}", None, 404),
    ("POST", "/v1/deliveries/{dlv_hose}/replay", {}, 404),
    ("POST", "/v1/webhooks/{hose_p}/replay", {"since": "2020-01-01T00:00:00Z"}, 404),
    ("GET", "/v1/organizations/{p}/portal", None, 403),  # sessions never hold org:admin
    ("POST", "/v1/portal-sessions", {"scopes": ["webhooks:read"]}, 403),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), OUT_OF_REACH)
async def test_a_childs_portal_never_reaches_its_parent_or_sibling(
    api: Api, family: Family, method: str, path: str, body: Any, status: int
) -> None:
    """Every read and change of the parent's endpoints (its firehose included), their
    deliveries, or a sibling's endpoint is 404 from a child's portal, ids never confirmed;
    what needs org:admin is 403."""
    async with browser(api) as portal:
        reply = await portal.call(method, family.fill(path), family.c1, body)
    assert reply.status == status, reply.body


async def test_a_childs_event_shows_only_the_childs_deliveries(api: Api, family: Family) -> None:
    """c1's event, read in c1's portal, lists c1's delivery and not the parent's firehose's."""
    async with browser(api) as portal:
        reply = await portal.call("GET", family.fill("/v1/events/{evt_c1}"), family.c1)
    assert reply.status == 200, reply.body
    assert [d["id"] for d in reply.body["deliveries"]] == [family.ids["dlv_c1"]]


@pytest.mark.parametrize("acting", ["p", "c2"])
async def test_a_portal_cannot_act_in_another_organization(
    api: Api, family: Family, acting: str
) -> None:
    """X-Layers-Organization naming the parent or a sibling is refused (a session never
    holds org:admin)."""
    async with browser(api) as portal:
        reply = await portal.call("GET", "/v1/webhooks", family.c1, org=family.orgs[acting])
    assert (reply.status, reply.code) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("key", "org", "status"),
    [
        ("p_admin", "c1", 200),  # a direct child's
        ("p_admin", "p", 200),  # its own
        ("c1_admin", "c1", 200),
        ("platform", "c1", 200),  # operators with platform:orgs
        ("c1_admin", "p", 404),  # not a parent's
        ("c2_admin", "c1", 404),  # not a sibling's
        ("c1_rw", "c1", 403),  # org:admin is needed
    ],
)
async def test_portal_origins_are_set_by_the_organizations_administrators(
    api: Api, family: Family, key: str, org: str, status: int
) -> None:
    """PATCH /v1/organizations/{id}/portal is for an org:admin key of the organization or its
    parent, and for platform keys; another organization's is 404, no org:admin 403."""
    path = f"/v1/organizations/{family.orgs[org]}/portal"
    body = {"portalOrigins": ["https://dash.example.com"]}
    patched = await api.call("PATCH", path, family.keys[key], body)
    assert patched.status == status, patched.body
    read = await api.call("GET", path, family.keys[key])
    assert read.status == status, read.body


@pytest.mark.parametrize(
    "origins", [["https://dash.example.com/app"], ["https://*.example.com"], ["http://x.com"], "x"]
)
async def test_bad_portal_origins_are_refused_naming_the_field(
    api: Api, family: Family, origins: Any
) -> None:
    """An origin with a path or a wildcard, plain http, or not a list is 422 naming it."""
    path = family.fill("/v1/organizations/{c2}/portal")
    refused = await api.call("PATCH", path, family.keys["c2_admin"], {"portalOrigins": origins})
    assert (refused.status, refused.code) == (422, "VALIDATION")
    assert refused.body["error"]["message"].startswith("portalOrigins")


async def test_the_portal_is_framed_only_by_its_organizations_origins(
    api: Api, family: Family
) -> None:
    """Opening a link answers with frame-ancestors listing the organization's origins (or
    'none'); the organization's record shows them, and a change of its parent keeps them."""
    a = await api.org("framed")
    admin = (await api.key(a, ADMIN))[1]
    origins = ["https://dash.example.com", "https://admin.example.com:8443"]
    async with browser(api) as portal:
        unframed = await portal.open(await portal.link(admin, ["webhooks:read"]))
        path = f"/v1/organizations/{a}/portal"
        set_origins = await api.call("PATCH", path, admin, {"portalOrigins": origins})
        assert set_origins.body == {"organizationId": a, "portalOrigins": origins}
        url = await portal.link(admin, ["webhooks:read"])
        framed, spent = await portal.open(url), await portal.open(url)
    assert "frame-ancestors 'none'" in unframed.headers["Content-Security-Policy"]
    for reply in (framed, spent):  # a spent link's page shows inside the partner's frame too
        assert reply.headers["Content-Security-Policy"].endswith(
            "frame-ancestors https://dash.example.com https://admin.example.com:8443"
        )
    platform = family.keys["platform"]
    body = {"parentOrganizationId": None}
    moved = await api.call("PUT", f"/v1/organizations/{a}", platform, body)
    assert moved.body["portalOrigins"] == origins


async def test_console_pages_are_framed_only_for_a_portal_session_of_a_listing_org(
    api: Api, family: Family
) -> None:
    """The console page served to a portal session says frame-ancestors with its
    organization's origins; served without a session, with an ended one, or with an API key
    next to the cookie, it says 'none'."""
    c2, admin = family.orgs["c2"], family.keys["c2_admin"]
    origins = ["https://partner.example.com"]
    patched = await api.call(
        "PATCH", f"/v1/organizations/{c2}/portal", admin, {"portalOrigins": origins}
    )
    assert patched.status == 200, patched.body

    async with browser(api) as portal:
        signed = await portal.sign_in(admin, ["webhooks:read"])

        async def policy(headers: dict[str, str]) -> str:
            async with portal.session.get("/console/", headers=headers) as response:
                assert response.status == 200
                return response.headers["Content-Security-Policy"]

        cookie = {"Cookie": f"lw_portal={signed.cookie}"}
        framed = await policy(cookie)
        with_key = await policy({**cookie, "Authorization": f"Bearer {admin}"})
        anonymous = await policy({})
        await portal.call("DELETE", "/v1/portal-sessions/current", signed)
        ended = await policy(cookie)
    assert framed.endswith("frame-ancestors https://partner.example.com")
    assert "unsafe" not in framed
    for other in (with_key, anonymous, ended):
        assert other.endswith("frame-ancestors 'none'")


async def test_a_portal_replay_names_the_session_as_its_actor(api: Api, family: Family) -> None:
    """A replay asked for in a portal session is recorded with the session's id (pss_…) as
    its actor, so the history tells a partner's action from the platform's."""
    path = family.fill("/v1/deliveries/{dlv_c1}")
    async with browser(api) as portal:
        me = (await portal.call("GET", "/v1/whoami", family.c1)).body["id"]

        async def replayed() -> bool:  # 409 while an attempt is in flight: ask again
            reply = await portal.call("POST", f"{path}/replay", family.c1, {"reason": "fixed"})
            assert reply.status in (202, 409), reply.body
            return reply.status == 202

        assert await eventually(replayed)
        detail = await portal.call("GET", path, family.c1)
    assert me.startswith("pss_")
    assert [(r["actor"], r["reason"]) for r in detail.body["replays"]] == [(me, "fixed")]
