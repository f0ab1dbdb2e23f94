"""Authorisation again at every attempt: a delivery created while allowed stops as soon as it
is not, with its reason, even with a retry already scheduled — and nobody refreshes anything
by hand: the changes are written straight to the store, as another replica or the
`webhooks keys revoke` command would, and the service's own periodic refresh picks them up.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from devtools import receivers
from dispatcher.core.models import DeliveryStatus, Organization, OrgStatus
from tests.api.harness import Api, eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

# Retries a second apart, so a retry is scheduled when the change lands (the directory
# refreshes every 2 s).
STACK_ENV = {"WEBHOOKS_RETRY_SCHEDULE": "1s,1s,1s,1s,1s,1s,1s", "WEBHOOKS_RETRY_JITTER": "0"}
WITHIN = 20.0  # seconds: refresh interval + one retry, with a wide margin


async def _delivery_of(api: Api, event_id: str, endpoint_id: str) -> object:
    for record in await api.stack.running.store.list_event_deliveries(event_id):
        if record.endpoint_id == endpoint_id:
            return record
    return None


async def _ends_suppressed(api: Api, event_id: str, endpoint_id: str, reason: str) -> bool:
    async def suppressed() -> bool:
        record = await _delivery_of(api, event_id, endpoint_id)
        return (
            record is not None
            and getattr(record, "status", None) is DeliveryStatus.SUPPRESSED
            and getattr(record, "reason", None) == reason
        )

    return await eventually(suppressed, WITHIN)


async def test_a_revoked_firehose_key_stops_a_scheduled_retry_and_its_replays(api: Api) -> None:
    """The key that registered p's firehose is revoked while a child's delivery waits for
    its next retry: the delivery ends `suppressed: unauthorized`, the receiver hears nothing
    more, and a replay of it is refused the same way at its attempt."""
    parent = await api.org("p")
    child = await api.org("c", parent)
    key_id, admin = await api.key(parent, "webhooks:read,webhooks:write,org:admin")
    async with api.hooked(admin, receivers.status(503), scope="all_children") as (hose, ep):
        event_id = await api.publish(child)
        assert await hose.wait_until(lambda r: len(r.received) >= 1, WITHIN)
        await api.stack.running.store.revoke_api_key(key_id, now=datetime.now(UTC))

        assert await _ends_suppressed(api, event_id, ep["id"], "unauthorized")
        heard = len(hose.received)
        assert heard <= 1 + 4  # the first attempt, then at most the retries of ~4 s
        await asyncio.sleep(1.5)  # longer than a retry interval
        assert len(hose.received) == heard

        record = await _delivery_of(api, event_id, ep["id"])
        ops_key = (await api.key(None, "ops:replay,ops:read"))[1]
        replayed = await api.call(
            "POST", f"/v1/deliveries/{getattr(record, 'id', '')}/replay", ops_key, {}
        )
        assert replayed.status in {200, 202}, replayed.body
        assert await _ends_suppressed(api, event_id, ep["id"], "unauthorized")
        await asyncio.sleep(1.0)
        assert len(hose.received) == heard


async def test_a_suspended_child_stops_its_scheduled_retries(api: Api) -> None:
    """The child organization is suspended (written by another replica) while its delivery
    waits for a retry: `suppressed: org_suspended`, and no further request."""
    parent = await api.org("p")
    child = await api.org("c", parent)
    _, writer = await api.key(child, "webhooks:read,webhooks:write")
    async with api.hooked(writer, receivers.status(503)) as (hook, ep):
        event_id = await api.publish(child)
        assert await hook.wait_until(lambda r: len(r.received) >= 1, WITHIN)
        await api.stack.running.store.put_organization(
            Organization(id=child, parent_id=parent, status=OrgStatus.SUSPENDED)
        )

        assert await _ends_suppressed(api, event_id, ep["id"], "org_suspended")
        heard = len(hook.received)
        await asyncio.sleep(1.5)
        assert len(hook.received) == heard
