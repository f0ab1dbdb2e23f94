"""The on-call commands, over the HTTP API: `endpoints`, `deliveries`, `replay`,
`dead-letters`, `events`, `orgs`. Listings are tables, details `key  value` lines, `--json`
prints the API's JSON for scripts; every failure is one line (see `apiclient`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from dispatcher.core.envelope import RejectReason
from dispatcher.core.models import DeliveryStatus
from dispatcher.errors import ConfigurationError, UsageError
from dispatcher.ops.apiclient import ApiClient, ClientConfig
from dispatcher.ops.console import (
    ProgressLine,
    details,
    enum_values,
    flag_choices,
    flag_period,
    record_bytes,
    table,
)
from dispatcher.setting_values import parse_duration

ENDPOINT_COLUMNS = [
    ("id", "id"),
    ("status", "status"),
    ("disabledReason", "reason"),
    ("success24h", "success/24h"),
    ("breaker", "breaker"),
    ("scope", "scope"),
    ("url", "url"),
    ("events", "events"),
    ("rateLimit", "rate"),
]
DELIVERY_COLUMNS = [
    ("id", "id"),
    ("status", "status"),
    ("eventType", "type"),
    ("attemptCount", "attempts"),
    ("lastStatusCode", "last"),
    ("nextAttemptAt", "next attempt"),
    ("createdAt", "created"),
]
ATTEMPT_COLUMNS = [
    ("attempt", "#"),
    ("startedAt", "started"),
    ("durationMs", "ms"),
    ("statusCode", "status"),
    ("failureKind", "failure"),
    ("responseExcerpt", "response"),
]
DEAD_LETTER_COLUMNS = [
    ("id", "id"),
    ("reason", "reason"),
    ("topic", "topic"),
    ("partition", "part"),
    ("offset", "offset"),
    ("receivedAt", "received"),
    ("retriedAt", "retried"),
]
POLL_INTERVAL = 0.25  # seconds between looks at a replay job
Handler = Callable[[ApiClient, argparse.Namespace], Coroutine[Any, Any, None]]


def emit(args: argparse.Namespace, data: Any, human: str) -> None:
    print(orjson.dumps(data).decode() if args.json else human)


def _metadata(pairs: list[str] | None) -> dict[str, str] | None:
    if pairs is None:
        return None
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--metadata {pair!r}: use KEY=VALUE")
        metadata[key] = value
    return metadata


def _endpoint_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.url is not None:
        body["url"] = args.url
    if args.event:
        body["events"] = args.event
    elif getattr(args, "all_events", False):
        body["events"] = None
    if args.scope is not None:
        body["scope"] = args.scope
    if args.description is not None:
        body["description"] = args.description
    if (metadata := _metadata(args.metadata)) is not None:
        body["metadata"] = metadata
    if getattr(args, "scheme", None) is not None:
        body["signatureScheme"] = args.scheme
    if args.rate_limit is not None:
        body["rateLimit"] = args.rate_limit
    elif getattr(args, "no_rate_limit", False):
        body["rateLimit"] = None
    return body


def _page_params(args: argparse.Namespace, **extra: str | None) -> dict[str, str]:
    params = {"limit": str(args.limit), "after": args.after, **extra}
    return {k: v for k, v in params.items() if v is not None}


def _listing(args: argparse.Namespace, page: Any, columns: list[tuple[str, str]]) -> None:
    human = table(page["data"], columns)
    if page.get("nextCursor"):
        human += f"\n(more: --after {page['nextCursor']})"
    emit(args, page, human)


# -- endpoints --------------------------------------------------------------------------------


def _percent(rate: float | None) -> str | None:
    return None if rate is None else f"{rate * 100:.1f}%"


def _endpoint_row(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """An endpoint with the health columns of the listing lifted to the top level."""
    health = endpoint.get("health") or {}
    return {
        **endpoint,
        "success24h": _percent(health.get("successRate24h")),
        "breaker": health.get("breaker"),
    }


async def endpoints_list(api: ApiClient, args: argparse.Namespace) -> None:
    page = await api.get("/v1/webhooks", _page_params(args, health=args.health))
    human = table([_endpoint_row(e) for e in page["data"]], ENDPOINT_COLUMNS)
    if page.get("nextCursor"):
        human += f"\n(more: --after {page['nextCursor']})"
    emit(args, page, human)


async def endpoints_get(api: ApiClient, args: argparse.Namespace) -> None:
    endpoint = await api.get(f"/v1/webhooks/{args.id}")
    health = dict(endpoint.get("health") or {})
    for rate in ("successRate1h", "successRate24h"):
        health[rate] = _percent(health.get(rate))
    shown = details({k: v for k, v in endpoint.items() if k != "health"})
    block = "\n".join("  " + line for line in details(health).splitlines())
    emit(args, endpoint, f"{shown}\nhealth\n{block}" if health else shown)


async def endpoints_create(api: ApiClient, args: argparse.Namespace) -> None:
    endpoint = await api.post("/v1/webhooks", _endpoint_body(args))
    if "secret" in endpoint:
        human = details(endpoint) + "\n\nsigning secret (shown once, store it now):\n"
        emit(args, endpoint, human + endpoint["secret"])
    else:  # v1a: partners verify with the public key, shown on every read
        emit(args, endpoint, details(endpoint) + "\n\npublic key (v1a):\n" + endpoint["publicKey"])


async def endpoints_update(api: ApiClient, args: argparse.Namespace) -> None:
    body = _endpoint_body(args)
    if not body:
        raise UsageError("nothing to change: give --url, --event, --scope, … ")
    endpoint = await api.request("PATCH", f"/v1/webhooks/{args.id}", body=body)
    emit(args, endpoint, details(endpoint))


async def endpoints_delete(api: ApiClient, args: argparse.Namespace) -> None:
    endpoint = await api.get(f"/v1/webhooks/{args.id}")  # a typo'd id fails before asking
    question = f"Delete {args.id} ({endpoint['url']}) with its deliveries and history?"
    if not args.yes and not await _confirm(question, "delete"):
        raise UsageError("not confirmed; nothing was deleted")
    await api.request("DELETE", f"/v1/webhooks/{args.id}")
    emit(args, {"id": args.id, "deleted": True}, f"deleted {args.id}")


async def endpoints_rotate(api: ApiClient, args: argparse.Namespace) -> None:
    try:
        grace = int(parse_duration(args.grace))
    except ConfigurationError as exc:
        raise UsageError(f"--grace: {exc}") from None
    rotated = await api.post(f"/v1/webhooks/{args.id}/rotate-secret", {"graceSeconds": grace})
    new = (
        f"new signing secret (shown once, store it now):\n{rotated['secret']}\n"
        if "secret" in rotated
        else f"new public key (v1a):\n{rotated['publicKey']}\n"
    )
    human = new + f"the previous key keeps signing until {rotated['previousSecretExpiresAt']}"
    emit(args, rotated, human)


async def endpoints_state(api: ApiClient, args: argparse.Namespace) -> None:
    endpoint = await api.post(f"/v1/webhooks/{args.id}/{args.action}")
    emit(args, endpoint, f"{endpoint['id']} is {endpoint['status']}")


async def endpoints_test(api: ApiClient, args: argparse.Namespace) -> None:
    body = {} if args.type is None else {"type": args.type}
    sent = await api.post(f"/v1/webhooks/{args.id}/test", body)
    emit(args, sent, f"sent {sent['type']} {sent['eventId']} as delivery {sent['deliveryId']}")


# -- deliveries, events, replay ----------------------------------------------------------------


async def deliveries_list(api: ApiClient, args: argparse.Namespace) -> None:
    statuses = flag_choices("--status", args.status, DeliveryStatus)
    since, until = flag_period(args.since, args.until, now=datetime.now(UTC))
    params = _page_params(
        args,
        status=None if statuses is None else ",".join(statuses),
        type=args.type,
        since=since,
        until=until,
    )
    page = await api.get(f"/v1/webhooks/{args.endpoint}/deliveries", params)
    _listing(args, page, DELIVERY_COLUMNS)


def _delivery_text(delivery: Mapping[str, Any]) -> str:
    summary = {k: v for k, v in delivery.items() if k not in ("attempts", "replays")}
    parts = [details(summary), "", "attempts:", table(delivery["attempts"], ATTEMPT_COLUMNS)]
    if delivery["replays"]:
        columns = [("at", "at"), ("actor", "by"), ("reason", "reason"), ("replayJobId", "job")]
        parts += ["", "replays:", table(delivery["replays"], columns)]
    return "\n".join(parts)


async def deliveries_show(api: ApiClient, args: argparse.Namespace) -> None:
    delivery = await api.get(f"/v1/deliveries/{args.id}")
    emit(args, delivery, _delivery_text(delivery))


async def events_show(api: ApiClient, args: argparse.Namespace) -> None:
    event = await api.get(f"/v1/events/{args.id}")
    summary = {k: v for k, v in event.items() if k not in ("data", "deliveries")}
    human = "\n".join(
        [
            details(summary),
            "",
            "data:",
            orjson.dumps(event["data"], option=orjson.OPT_INDENT_2).decode(),
            "",
            "deliveries:",
            table(event["deliveries"], [("endpointId", "endpoint"), *DELIVERY_COLUMNS]),
        ]
    )
    emit(args, event, human)


async def replay(api: ApiClient, args: argparse.Namespace) -> None:
    if args.delivery_id is not None:
        if args.endpoint is not None:
            raise UsageError("give a DELIVERY_ID or --endpoint, not both")
        body = {} if args.reason is None else {"reason": args.reason}
        replayed = await api.post(f"/v1/deliveries/{args.delivery_id}/replay", body)
        emit(args, replayed, f"replaying {replayed['id']} (webhook-id {replayed['eventId']})")
        return
    if args.endpoint is None or args.since is None:
        raise UsageError("give a DELIVERY_ID, or --endpoint ID --since TIME for a bulk replay")
    await _bulk_replay(api, args)


async def _bulk_replay(api: ApiClient, args: argparse.Namespace) -> None:
    since, until = flag_period(args.since, args.until, now=datetime.now(UTC))
    statuses = flag_choices("--status", args.status, DeliveryStatus) or ["failed"]
    body: dict[str, Any] = {"since": since, "status": statuses}
    if until is not None:
        body["until"] = until
    if args.type:
        body["types"] = args.type
    if args.reason is not None:
        body["reason"] = args.reason
    path = f"/v1/webhooks/{args.endpoint}/replay"
    counted = await api.post(path, {**body, "dryRun": True})
    count = counted["count"]
    if args.dry_run:
        emit(args, counted, f"{count} deliveries of {args.endpoint} would be replayed")
        return
    question = f"Replay {count} deliveries of {args.endpoint}?"
    if not args.yes and not await _confirm(question, "replay"):
        raise UsageError("not confirmed; nothing was replayed")
    job = await api.post(path, body)
    progress = ProgressLine(sys.stderr)
    try:
        while True:
            progress.update(job["done"], job["total"], job["status"])
            if job["status"] == "succeeded":
                break
            await asyncio.sleep(POLL_INTERVAL)
            job = await api.get(f"/v1/replays/{job['id']}")
    finally:
        progress.close()
    emit(args, job, f"replayed {job['done']}/{job['total']} deliveries (job {job['id']})")


async def _confirm(question: str, verb: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to confirm on: pass --yes to {verb}")
    answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


# -- dead letters and organizations ---------------------------------------------------------


async def dead_letters_list(api: ApiClient, args: argparse.Namespace) -> None:
    if args.reason is not None and args.reason not in enum_values(RejectReason):
        raise UsageError(f"--reason {args.reason!r} is not one of {', '.join(RejectReason)}")
    page = await api.get("/v1/dead-letters", _page_params(args, reason=args.reason))
    _listing(args, page, DEAD_LETTER_COLUMNS)


async def dead_letters_show(api: ApiClient, args: argparse.Namespace) -> None:
    letter = await api.get(f"/v1/dead-letters/{args.id}")
    summary = {k: v for k, v in letter.items() if k not in ("key", "value")}
    human = "\n\n".join(
        [
            details(summary),
            record_bytes("key", letter.get("key")),
            record_bytes("value", letter.get("value")),
        ]
    )
    emit(args, letter, human)


async def dead_letters_retry(api: ApiClient, args: argparse.Namespace) -> None:
    retried = await api.post(f"/v1/dead-letters/{args.id}/retry")
    human = f"{args.id} ingested as {retried['eventId']}: {retried['deliveriesCreated']} deliveries"
    emit(args, retried, human)


async def orgs_set(api: ApiClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {}
    if args.parent is not None:
        body["parentOrganizationId"] = args.parent
    elif args.no_parent:
        body["parentOrganizationId"] = None
    if args.status is not None:
        body["status"] = args.status
    org = await api.request("PUT", f"/v1/organizations/{args.org_id}", body=body)
    emit(args, org, details(org))


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("endpoints", "list"): endpoints_list,
    ("endpoints", "get"): endpoints_get,
    ("endpoints", "create"): endpoints_create,
    ("endpoints", "update"): endpoints_update,
    ("endpoints", "delete"): endpoints_delete,
    ("endpoints", "rotate-secret"): endpoints_rotate,
    ("endpoints", "enable"): endpoints_state,
    ("endpoints", "disable"): endpoints_state,
    ("endpoints", "test"): endpoints_test,
    ("deliveries", "list"): deliveries_list,
    ("deliveries", "show"): deliveries_show,
    ("events", "show"): events_show,
    ("replay", None): replay,
    ("dead-letters", "list"): dead_letters_list,
    ("dead-letters", "show"): dead_letters_show,
    ("dead-letters", "retry"): dead_letters_retry,
    ("orgs", "set"): orgs_set,
}
COMMANDS = frozenset(command for command, _ in HANDLERS)


async def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run an on-call command against the API named by the environment."""
    handler = HANDLERS[(args.command, getattr(args, "action", None))]
    config = ClientConfig.from_environ(environ)
    async with ApiClient(config, organization=getattr(args, "org", None)) as api:
        await handler(api, args)
    return 0


__all__ = ["COMMANDS", "run"]
