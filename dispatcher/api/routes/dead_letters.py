"""`/v1/dead-letters`: on-call's view of the records that could not become events.

Operator-only: reading needs `ops:read`, retrying `ops:replay`. A retry re-validates the
original bytes against the *current* catalog (a schema fixed since, say): a valid record
enters the one fan-out path (Intake) and the dead letter is marked retried; a record still
invalid is a 422 naming the reason, and stays as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from dispatcher.api import views
from dispatcher.api.auth import Principal, context, guarded
from dispatcher.api.context import ApiContext, json_response
from dispatcher.api.validation import Query, invalid, page, read_body, resource_id
from dispatcher.core.envelope import Rejection, RejectReason, decode_event
from dispatcher.core.scopes import Scope
from dispatcher.errors import ApiError
from dispatcher.store.records import DeadLetterRecord

operator_reads = guarded(org=None, operator=Scope.OPS_READ)
operator_retries = guarded(org=None, operator=Scope.OPS_REPLAY, mutating=True)


async def _load(ctx: ApiContext, dead_letter_id: str) -> DeadLetterRecord:
    found = await ctx.store.get_dead_letter(dead_letter_id)
    if found is None:
        raise ApiError("NOT_FOUND", "no such dead letter")
    return found


@operator_reads
async def list_dead_letters(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    query = Query(request.query)
    limit = query.limit()
    reason = query.choice("reason", RejectReason)
    found = await ctx.store.list_dead_letters(
        reason=None if reason is None else reason.value, after=query.after("dl"), limit=limit + 1
    )
    return json_response(page(found, limit, views.dead_letter, lambda dl: dl.id))


@operator_reads
async def get_dead_letter(request: web.Request, principal: Principal) -> web.Response:
    found = await _load(context(request), resource_id(request, "dead letter"))
    return json_response(views.dead_letter(found, with_bytes=True))


@operator_retries
async def retry_dead_letter(request: web.Request, principal: Principal) -> web.Response:
    ctx = context(request)
    found = await _load(ctx, resource_id(request, "dead letter"))
    (await read_body(request)).finish()
    if found.reason == RejectReason.UNDECODABLE_BATCH:
        raise invalid(
            "an undecodable record batch kept no record bytes to retry: re-publish the events "
            f"it held ({found.detail})"
        )
    decoded = decode_event(found.value, catalog=ctx.catalog, max_bytes=ctx.settings.max_event_bytes)
    if isinstance(decoded, Rejection):
        raise invalid(f"still invalid: {decoded.reason.value}: {decoded.detail}")
    result = await ctx.intake.ingest([decoded])
    await ctx.store.mark_dead_letter_retried(found.id, now=datetime.now(UTC))
    return json_response(
        {
            "deadLetterId": found.id,
            "eventId": decoded.id,
            "deliveriesCreated": len(result.created),
            "duplicate": result.duplicate_events > 0,
        }
    )


def register(app: web.Application) -> None:
    app.router.add_get("/v1/dead-letters", list_dead_letters)
    app.router.add_get("/v1/dead-letters/{id}", get_dead_letter)
    app.router.add_post("/v1/dead-letters/{id}/retry", retry_dead_letter)
