"""Routing: own endpoints, the parent's firehose one level deep, suppression, filters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.core.models import (
    DeliveryStatus,
    Endpoint,
    EndpointScope,
    EndpointStatus,
    Event,
    Organization,
    OrgStatus,
    SuppressedReason,
)
from dispatcher.core.routing import RoutingTable, attempt_suppression, route

# parent ─┬─ child_a ── grandchild
#         └─ child_b            unrelated (no parent)
ORGS = [
    Organization(id="org_parent"),
    Organization(id="org_child_a", parent_id="org_parent"),
    Organization(id="org_child_b", parent_id="org_parent"),
    Organization(id="org_grandchild", parent_id="org_child_a"),
    Organization(id="org_unrelated"),
]


def endpoint(
    ep_id: str,
    org: str,
    *,
    scope: EndpointScope = EndpointScope.OWN,
    types: frozenset[str] | None = None,
    status: EndpointStatus = EndpointStatus.ENABLED,
) -> Endpoint:
    return Endpoint(
        id=ep_id,
        organization_id=org,
        url=f"https://example.com/{ep_id}",
        scope=scope,
        event_types=types,
        status=status,
    )


ENDPOINTS = [
    endpoint("ep_parent_own", "org_parent"),
    endpoint("ep_parent_fire", "org_parent", scope=EndpointScope.ALL_CHILDREN),
    endpoint("ep_a", "org_child_a"),
    endpoint("ep_a_fire", "org_child_a", scope=EndpointScope.ALL_CHILDREN),
    endpoint("ep_b", "org_child_b"),
    endpoint("ep_grand", "org_grandchild"),
    endpoint("ep_unrelated", "org_unrelated"),
]


def event(org: str, event_type: str = "content.generated") -> Event:
    return Event(
        id="evt_1",
        type=event_type,
        created=datetime(2026, 6, 9, tzinfo=UTC),
        organization_id=org,
        body=b"{}",
    )


def targets(table: RoutingTable, evt: Event) -> dict[str, tuple[DeliveryStatus, str | None]]:
    return {t.endpoint.id: (t.status, t.reason) for t in route(table, evt)}


PENDING = (DeliveryStatus.PENDING, None)


@pytest.mark.parametrize(
    ("org", "expected"),
    [
        ("org_parent", {"ep_parent_own", "ep_parent_fire"}),
        ("org_child_a", {"ep_a", "ep_a_fire", "ep_parent_fire"}),
        ("org_child_b", {"ep_b", "ep_parent_fire"}),
        # the grandchild feeds its parent's firehose, never the grandparent's
        ("org_grandchild", {"ep_grand", "ep_a_fire"}),
        ("org_unrelated", {"ep_unrelated"}),
        ("org_never_seen", set()),
    ],
)
def test_fan_out_reaches_own_endpoints_and_the_direct_parents_firehose(
    org: str, expected: set[str]
) -> None:
    """An event reaches its org's endpoints plus the parent's firehose, one level deep only."""
    table = RoutingTable.build(ORGS, ENDPOINTS)
    assert targets(table, event(org)) == dict.fromkeys(expected, PENDING)


def test_event_filters_select_types_and_operational_events_need_an_explicit_filter() -> None:
    """A filtered endpoint gets only its types; `webhook.*` types go only to those naming them."""
    table = RoutingTable.build(
        [Organization(id="org_x")],
        [
            endpoint("ep_all", "org_x"),
            endpoint("ep_ads", "org_x", types=frozenset({"ads.write.executed"})),
            endpoint("ep_ops", "org_x", types=frozenset({"webhook.endpoint.disabled"})),
        ],
    )
    assert set(targets(table, event("org_x", "ads.write.executed"))) == {"ep_all", "ep_ads"}
    assert set(targets(table, event("org_x", "content.generated"))) == {"ep_all"}
    assert set(targets(table, event("org_x", "webhook.endpoint.disabled"))) == {"ep_ops"}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (OrgStatus.SUSPENDED, SuppressedReason.ORG_SUSPENDED),
        (OrgStatus.ARCHIVED, SuppressedReason.ORG_ARCHIVED),
    ],
)
def test_events_of_an_inactive_org_are_recorded_suppressed(
    status: OrgStatus, reason: SuppressedReason
) -> None:
    """A suspended or archived org's events are suppressed for every target, never dropped."""
    orgs = [
        o
        if o.id != "org_child_a"
        else Organization(id="org_child_a", parent_id="org_parent", status=status)
        for o in ORGS
    ]
    table = RoutingTable.build(orgs, ENDPOINTS)
    expected = (DeliveryStatus.SUPPRESSED, reason)
    assert targets(table, event("org_child_a")) == {
        "ep_a": expected,
        "ep_a_fire": expected,
        "ep_parent_fire": expected,
    }


def test_a_suspended_parent_firehose_is_suppressed_but_the_child_still_gets_its_own() -> None:
    """When the firehose owner is suspended, its copy is suppressed; the child's are pending."""
    orgs = [
        o if o.id != "org_parent" else Organization(id="org_parent", status=OrgStatus.SUSPENDED)
        for o in ORGS
    ]
    table = RoutingTable.build(orgs, ENDPOINTS)
    assert targets(table, event("org_child_b")) == {
        "ep_b": PENDING,
        "ep_parent_fire": (DeliveryStatus.SUPPRESSED, SuppressedReason.ORG_SUSPENDED),
    }


def test_disabled_endpoints_get_suppressed_records() -> None:
    """A disabled endpoint's deliveries are kept as suppressed (replayable after re-enable)."""
    table = RoutingTable.build(
        [Organization(id="org_x")],
        [endpoint("ep_off", "org_x", status=EndpointStatus.DISABLED), endpoint("ep_on", "org_x")],
    )
    assert targets(table, event("org_x")) == {
        "ep_off": (DeliveryStatus.SUPPRESSED, SuppressedReason.ENDPOINT_DISABLED),
        "ep_on": PENDING,
    }


def test_a_firehose_whose_key_lost_org_admin_keeps_only_its_own_orgs_events() -> None:
    """Firehose authorisation is evaluated at fan-out: without org:admin, no children's events."""
    table = RoutingTable.build(
        ORGS, ENDPOINTS, unauthorised_firehoses=frozenset({"ep_parent_fire"})
    )
    assert set(targets(table, event("org_child_a"))) == {"ep_a", "ep_a_fire"}
    assert set(targets(table, event("org_parent"))) == {"ep_parent_own", "ep_parent_fire"}


# -- authorisation again at every attempt ---------------------------------------------

FIRE = ENDPOINTS[1]  # ep_parent_fire, org_parent's all_children endpoint


def _table(
    *,
    orgs: list[Organization] = ORGS,
    endpoints: list[Endpoint] = ENDPOINTS,
    refused: frozenset[str] = frozenset(),
) -> RoutingTable:
    return RoutingTable.build(orgs, endpoints, unauthorised_firehoses=refused)


@pytest.mark.parametrize(
    ("table", "org", "target", "expected"),
    [
        (_table(), "org_child_a", FIRE, None),
        (_table(), "org_parent", FIRE, None),  # its own org's event
        (_table(), "org_child_a", None, SuppressedReason.ENDPOINT_DELETED),
        # the registering key was revoked or lost org:admin since the delivery was created
        (_table(refused=frozenset({FIRE.id})), "org_child_a", FIRE, SuppressedReason.UNAUTHORIZED),
        (_table(refused=frozenset({FIRE.id})), "org_parent", FIRE, None),
        # the child moved under another parent
        (
            _table(orgs=[*ORGS[:1], Organization(id="org_child_a", parent_id="org_unrelated")]),
            "org_child_a",
            FIRE,
            SuppressedReason.UNAUTHORIZED,
        ),
        # an org this snapshot does not know yet is not held against it
        (_table(), "org_brand_new", FIRE, None),
        (
            _table(
                orgs=[
                    *ORGS[:1],
                    Organization(
                        id="org_child_a", parent_id="org_parent", status=OrgStatus.SUSPENDED
                    ),
                ]
            ),
            "org_child_a",
            FIRE,
            SuppressedReason.ORG_SUSPENDED,
        ),
        (
            _table(orgs=[Organization(id="org_parent", status=OrgStatus.ARCHIVED), *ORGS[1:]]),
            "org_child_a",
            FIRE,
            SuppressedReason.ORG_ARCHIVED,
        ),
        (
            _table(endpoints=[endpoint("ep_a", "org_child_a", status=EndpointStatus.DISABLED)]),
            "org_child_a",
            endpoint("ep_a", "org_child_a", status=EndpointStatus.DISABLED),
            SuppressedReason.ENDPOINT_DISABLED,
        ),
        (_table(), "org_child_a", ENDPOINTS[2], None),  # ep_a, its own endpoint
    ],
    ids=[
        "child-event-authorised",
        "own-event",
        "endpoint-deleted",
        "key-revoked",
        "key-revoked-own-event",
        "re-parented",
        "unknown-org",
        "child-suspended",
        "parent-archived",
        "endpoint-disabled",
        "own-endpoint",
    ],
)
def test_every_attempt_is_authorised_against_the_latest_snapshot(
    table: RoutingTable, org: str, target: Endpoint | None, expected: SuppressedReason | None
) -> None:
    """A delivery created while allowed is suppressed, with its reason, once it is not."""
    assert attempt_suppression(table, org, target) is expected
