"""Routing: which endpoints receive an event. Pure — the shell builds the table from the store.

An event of organization E goes to:
  * E's endpoints (scope `own` or `all_children`) whose event filter matches, and
  * the `all_children` endpoints of E's parent P (one level only: never grandchildren,
    siblings or the parent's parent), when the key that registered the firehose still holds
    `org:admin` (authorisation is evaluated at fan-out, not only at registration).

Nothing is dropped silently: a target is `suppressed` (kept, replayable, reason recorded)
when the event's organization or the endpoint's organization is suspended or archived, or
when the endpoint is disabled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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

# Operational event types are delivered only to endpoints that name them explicitly: an
# endpoint subscribed to "everything" wants the platform's events, not our own chatter.
OPERATIONAL_PREFIX = "webhook."

_ORG_SUPPRESSION = {
    OrgStatus.SUSPENDED: SuppressedReason.ORG_SUSPENDED,
    OrgStatus.ARCHIVED: SuppressedReason.ORG_ARCHIVED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One endpoint an event must be recorded for, and in which state."""

    endpoint: Endpoint
    status: DeliveryStatus  # PENDING or SUPPRESSED
    reason: SuppressedReason | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingTable:
    """An immutable snapshot of the directory, indexed for fan-out."""

    organizations: Mapping[str, Organization] = field(default_factory=dict)
    # org id → every endpoint the org owns (both scopes)
    owned: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    # org id → the org's authorised `all_children` endpoints (what its children feed)
    firehoses: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    # their ids, for the check at every attempt
    firehose_ids: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        organizations: Iterable[Organization],
        endpoints: Iterable[Endpoint],
        *,
        unauthorised_firehoses: frozenset[str] = frozenset(),
    ) -> RoutingTable:
        """Index orgs and endpoints. `unauthorised_firehoses` are `all_children` endpoints
        whose registering key lost `org:admin`: they keep their own org's events only."""
        owned: dict[str, list[Endpoint]] = defaultdict(list)
        firehoses: dict[str, list[Endpoint]] = defaultdict(list)
        for endpoint in sorted(endpoints, key=lambda e: e.id):
            owned[endpoint.organization_id].append(endpoint)
            if (
                endpoint.scope is EndpointScope.ALL_CHILDREN
                and endpoint.id not in unauthorised_firehoses
            ):
                firehoses[endpoint.organization_id].append(endpoint)
        return cls(
            organizations={org.id: org for org in organizations},
            owned={k: tuple(v) for k, v in owned.items()},
            firehoses={k: tuple(v) for k, v in firehoses.items()},
            firehose_ids=frozenset(e.id for fire in firehoses.values() for e in fire),
        )

    def organization(self, org_id: str) -> Organization:
        """The directory entry; an unknown org is active with no parent."""
        return self.organizations.get(org_id) or Organization(id=org_id)


def subscribes(endpoint: Endpoint, event_type: str) -> bool:
    if endpoint.event_types is None:
        return not event_type.startswith(OPERATIONAL_PREFIX)
    return event_type in endpoint.event_types


def route(table: RoutingTable, event: Event) -> list[Target]:
    """Every endpoint that must get a delivery record for `event`, each exactly once."""
    org = table.organization(event.organization_id)
    candidates = list(table.owned.get(org.id, ()))
    if org.parent_id is not None:
        candidates.extend(table.firehoses.get(org.parent_id, ()))
    targets: list[Target] = []
    seen: set[str] = set()
    for endpoint in candidates:
        if endpoint.id in seen or not subscribes(endpoint, event.type):
            continue
        seen.add(endpoint.id)
        reason = _suppression(table, org, endpoint)
        status = DeliveryStatus.PENDING if reason is None else DeliveryStatus.SUPPRESSED
        targets.append(Target(endpoint=endpoint, status=status, reason=reason))
    return targets


def _suppression(
    table: RoutingTable, event_org: Organization, endpoint: Endpoint
) -> SuppressedReason | None:
    if event_org.status is not OrgStatus.ACTIVE:
        return _ORG_SUPPRESSION[event_org.status]
    if endpoint.organization_id != event_org.id:
        owner = table.organization(endpoint.organization_id)
        if owner.status is not OrgStatus.ACTIVE:
            return _ORG_SUPPRESSION[owner.status]
    if endpoint.status is not EndpointStatus.ENABLED:
        return SuppressedReason.ENDPOINT_DISABLED
    return None


def attempt_suppression(
    table: RoutingTable, organization_id: str, endpoint: Endpoint | None
) -> SuppressedReason | None:
    """Why a delivery already created must not be attempted now, or None.

    Authorisation is decided again at every attempt (and so after every replay), against
    the latest snapshot: the endpoint deleted or disabled, the event's or the endpoint's
    organization suspended or archived, or — for a firehose delivery of a child's event —
    the firehose no longer authorised (its key revoked or without org:admin) or the event's
    organization no longer its child.
    """
    if endpoint is None:
        return SuppressedReason.ENDPOINT_DELETED
    event_org = table.organization(organization_id)
    reason = _suppression(table, event_org, endpoint)
    if reason is not None or endpoint.organization_id == organization_id:
        return reason
    authorised = endpoint.id in table.firehose_ids
    # An organization this snapshot does not know yet (created moments ago on another
    # replica) is not held against the delivery: only a known other parent is.
    known = organization_id in table.organizations
    if not authorised or (known and event_org.parent_id != endpoint.organization_id):
        return SuppressedReason.UNAUTHORIZED
    return None
