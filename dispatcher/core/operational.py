"""Operational events the service emits about itself (`webhook.*` types in the catalog)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from dispatcher.core.models import DisabledReason, Endpoint, Event

ENDPOINT_DISABLED = "webhook.endpoint.disabled"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def endpoint_disabled_event(
    endpoint: Endpoint, reason: DisabledReason, *, event_id: str, now: datetime
) -> Event:
    """`webhook.endpoint.disabled` for the endpoint's org (routed to its subscribers)."""
    moment = now
    envelope = {
        "id": event_id,
        "type": ENDPOINT_DISABLED,
        "created": _rfc3339(moment),
        "data": {
            "organizationId": endpoint.organization_id,
            "endpointId": endpoint.id,
            "url": endpoint.url,
            "reason": reason.value,
            "disabledAt": _rfc3339(moment),
        },
    }
    return Event(
        id=event_id,
        type=ENDPOINT_DISABLED,
        created=moment.replace(microsecond=0),
        organization_id=endpoint.organization_id,
        body=orjson.dumps(envelope),
    )
