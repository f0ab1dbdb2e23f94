"""The API's JSON shapes of stored values: camelCase names, RFC 3339 UTC times with `Z`.

No view ever includes a signing secret; the two responses that carry one (create and
rotate) add it explicitly.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from dispatcher.clock import utcnow
from dispatcher.core.health import EndpointHealth, StatsBucket, percentile, success_rate
from dispatcher.core.models import (
    DeliveryStatus,
    Endpoint,
    Organization,
    WaitingReason,
    rfc3339,
)
from dispatcher.core.scopes import key_view
from dispatcher.store.records import (
    AttemptRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    ReplayJobRecord,
    ReplayRecord,
)

JSON = dict[str, Any]


def endpoint(e: Endpoint, h: EndpointHealth | None = None) -> JSON:
    """An endpoint, with its `health` when read with it (every webhook response is)."""
    view: JSON = {
        "id": e.id,
        "organizationId": e.organization_id,
        "url": e.url,
        "events": None if e.event_types is None else sorted(e.event_types),
        "scope": e.scope.value,
        "status": e.status.value,
        "disabledReason": None if e.disabled_reason is None else e.disabled_reason.value,
        "description": e.description,
        "metadata": dict(e.metadata),
        "rateLimit": e.rate_limit,
        "createdByKeyId": e.created_by_key_id,
        "signatureScheme": e.signature_scheme.value,
        "publicKey": e.public_key,  # whpk_… for v1a (public), null for v1
        "createdAt": rfc3339(e.created_at),
        "updatedAt": rfc3339(e.updated_at),
    }
    if h is not None:
        view["health"] = health(h)
    return view


def health(h: EndpointHealth) -> JSON:
    """Rates and percentiles from the rolled-up buckets (dispatcher.core.health)."""
    return {
        "successRate1h": success_rate(h.succeeded_1h, h.failed_1h),
        "successRate24h": success_rate(h.succeeded_24h, h.failed_24h),
        "lastSuccessAt": rfc3339(h.last_success_at),
        "lastFailureAt": rfc3339(h.last_failure_at),
        "consecutiveFailures": h.consecutive_failures,
        "breaker": h.breaker.value,
        "nextProbeAt": rfc3339(h.next_probe_at),
        "latencyP50Ms": percentile(h.latency_1h, 0.5),
        "latencyP99Ms": percentile(h.latency_1h, 0.99),
        "pending": h.pending,
        "failed": h.failed,
    }


def stats(buckets: list[StatsBucket], width: int) -> JSON:
    return {
        "bucketSeconds": width,
        "buckets": [
            {
                "start": rfc3339(b.start),
                "succeeded": b.succeeded,
                "failed": b.failed,
                "latencyP50Ms": percentile(b.latency, 0.5),
                "latencyP99Ms": percentile(b.latency, 0.99),
            }
            for b in buckets
        ],
    }


def delivery(d: DeliveryRecord) -> JSON:
    return {
        "id": d.id,
        "eventId": d.event_id,
        "eventType": d.event_type,
        "endpointId": d.endpoint_id,
        "status": d.status.value,
        "reason": d.reason,
        "attemptCount": d.attempts,
        "nextAttemptAt": rfc3339(d.next_attempt_at),
        # Why a pending delivery that is not in flight waits (null while leased or final).
        "waitingReason": _waiting_reason(d),
        "lastAttemptAt": rfc3339(d.last_attempt_at),
        "lastStatusCode": d.last_status_code,
        "createdAt": rfc3339(d.created_at),
        "updatedAt": rfc3339(d.updated_at),
    }


def _waiting_reason(d: DeliveryRecord) -> str | None:
    if d.status is not DeliveryStatus.PENDING:
        return None
    if d.lease_owner is not None:
        expired = d.lease_expires_at is not None and d.lease_expires_at <= utcnow()
        return WaitingReason.LEASE_EXPIRED.value if expired else None
    return None if d.waiting_reason is None else d.waiting_reason.value


def attempt(a: AttemptRecord) -> JSON:
    return {
        "id": a.id,
        "attempt": a.attempt,
        "startedAt": rfc3339(a.started_at),
        "durationMs": round(a.duration_ms, 3),
        "statusCode": a.status_code,
        "succeeded": a.failure is None,
        "failureKind": None if a.failure is None else a.failure.value,
        "detail": a.detail,
        "responseExcerpt": a.response_excerpt.decode("utf-8", errors="replace"),
    }


def replay(r: ReplayRecord) -> JSON:
    return {"actor": r.actor, "reason": r.reason, "at": rfc3339(r.at), "replayJobId": r.job_id}


def event(e: EventRecord) -> JSON:
    envelope = orjson.loads(e.body)
    return {
        "id": e.id,
        "type": e.type,
        "organizationId": e.organization_id,
        "created": rfc3339(e.created),
        "receivedAt": rfc3339(e.received_at),
        "deliveryCount": e.delivery_count,
        "data": envelope.get("data") if isinstance(envelope, dict) else None,
    }


def dead_letter(dl: DeadLetterRecord, *, with_bytes: bool = False) -> JSON:
    view: JSON = {
        "id": dl.id,
        "topic": dl.topic,
        "partition": dl.partition,
        "offset": dl.offset,
        "reason": dl.reason,
        "detail": dl.detail,
        "receivedAt": rfc3339(dl.received_at),
        "retriedAt": rfc3339(dl.retried_at),
        "size": None if dl.value is None else len(dl.value),
    }
    if with_bytes:
        view["key"] = None if dl.key is None else base64.b64encode(dl.key).decode()
        view["value"] = None if dl.value is None else base64.b64encode(dl.value).decode()
    return view


def replay_job(job: ReplayJobRecord) -> JSON:
    selection = job.filter
    return {
        "id": job.id,
        "endpointId": selection.endpoint_id,
        "organizationId": job.organization_id,
        "status": job.status.value,
        "total": job.total,
        "done": job.done,
        "since": rfc3339(selection.since),
        "until": rfc3339(selection.until),
        "statuses": sorted(s.value for s in selection.statuses),
        "types": None if selection.types is None else sorted(selection.types),
        "actor": job.actor,
        "reason": job.reason,
        "createdAt": rfc3339(job.created_at),
        "updatedAt": rfc3339(job.updated_at),
        "finishedAt": rfc3339(job.finished_at),
    }


def organization(org: Organization) -> JSON:
    return {
        "id": org.id,
        "parentOrganizationId": org.parent_id,
        "status": org.status.value,
        "portalOrigins": list(org.portal_origins),
    }


api_key = key_view  # the CLI's `keys list --json` prints the same shape
