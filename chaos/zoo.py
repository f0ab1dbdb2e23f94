"""The endpoint fault zoo: one service, one burst of events, an endpoint per misbehaviour.

Endpoints that eventually accept must receive every event (the ledger). Endpoints failing
by design have a precise expectation instead: the exact attempts each delivery made (failure
kind and status code of each, from the store), its final status, and how many times each
event reached the receiver. The ladder is compressed to 8 attempts 200 ms apart, without
jitter, and the breaker is kept out of the way (threshold 1000) so attempt counts are exact.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass

import orjson

from chaos.endpoints import (
    Behaviour,
    accept,
    always,
    blackhole,
    drip,
    huge,
    reset_first,
    status_first,
)
from chaos.harness import ATTEMPTS, Report, Rig, service_env
from chaos.ledger import arrivals_per_id, integrity_problems
from chaos.proxy import ProxiedBroker
from chaos.scenarios import Context
from dispatcher.core.models import DeliveryStatus, EndpointStatus
from dispatcher.core.operational import ENDPOINT_DISABLED
from dispatcher.engine.fetching import UNDECODABLE_BATCH
from dispatcher.store.secretbox import new_endpoint_secret

TIMEOUT = 1.0  # WEBHOOKS_DELIVERY_TIMEOUT in the zoo
STEP = 0.2  # the ladder step
EXCERPT_CAP = 4096
LATE_EVENTS = 3  # published once `gone` is disabled
CORRUPT_MARKER = b"ZOO:CORRUPT-THIS-BATCH-IN-FLIGHT"  # a record key the proxy alters
Try = tuple[str | None, int | None]  # one attempt: (failure kind or None, status code)
OK: Try = (None, 200)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    says: str
    status: DeliveryStatus
    attempts: tuple[Try, ...]  # every delivery's attempts, in order
    accepts: bool  # the ledger applies: every event accepted by the receiver

    @property
    def arrivals(self) -> int:
        """Arrivals per event at the receiver: one per attempt."""
        return len(self.attempts)


def zoo(huge_bytes: int) -> dict[str, tuple[Behaviour, Expectation]]:
    fail = DeliveryStatus.FAILED
    done = DeliveryStatus.SUCCEEDED
    timeouts = (("timeout", None),) * ATTEMPTS
    return {
        "healthy": (
            accept(),
            Expectation(says="answers 200", status=done, attempts=(OK,), accepts=True),
        ),
        "drip-within": (
            drip(10, 0.03),
            Expectation(
                says="drips a 10-byte body over 0.3 s", status=done, attempts=(OK,), accepts=True
            ),
        ),
        "huge": (
            huge(huge_bytes),
            Expectation(
                says=f"answers 200 with a {huge_bytes >> 20} MiB body",
                status=done,
                attempts=(OK,),
                accepts=True,
            ),
        ),
        "reset": (
            reset_first(2),
            Expectation(
                says="resets the connection twice per event, then 200",
                status=done,
                attempts=(("connect", None), ("connect", None), OK),
                accepts=True,
            ),
        ),
        "throttled": (
            status_first(2, 429, {"Retry-After": "5"}),
            Expectation(
                says="429 Retry-After: 5 twice per event, then 200",
                status=done,
                attempts=(("http_status", 429), ("http_status", 429), OK),
                accepts=True,
            ),
        ),
        "recovering": (
            status_first(3, 503),
            Expectation(
                says="503 three times per event, then 200",
                status=done,
                attempts=(("http_status", 503),) * 3 + (OK,),
                accepts=True,
            ),
        ),
        "timeout": (
            blackhole(),
            Expectation(
                says=f"never answers ({TIMEOUT:g} s deadline)",
                status=fail,
                attempts=timeouts,
                accepts=False,
            ),
        ),
        "drip-slow": (
            drip(64, 0.1),
            Expectation(
                says="200, then a 64-byte body over 6.4 s",
                status=fail,
                attempts=timeouts,
                accepts=False,
            ),
        ),
        "redirect": (
            always(302),  # Location is set once the target's URL is known
            Expectation(
                says="302 to another receiver, never followed",
                status=fail,
                attempts=(("http_status", 302),) * ATTEMPTS,
                accepts=False,
            ),
        ),
    }


async def endpoint_zoo(ctx: Context, report: Report) -> None:
    """Every zoo endpoint ends as its expectation says; 410 disables its endpoint and is
    announced once; a redirect target is never contacted; nothing anywhere is unknown,
    unverified or corrupted."""
    # The zoo's broker is reached through a proxy that corrupts, in flight, every record batch
    # carrying CORRUPT_MARKER: one event published that way must become an
    # `undecodable_batch` dead letter while everything published after it is delivered.
    async with ProxiedBroker(corrupt=(CORRUPT_MARKER, CORRUPT_MARKER.lower())) as broker:
        env = service_env(
            f"sqlite:///{ctx.run_dir / 'zoo.db'}",
            broker.bootstrap_servers,
            WEBHOOKS_DELIVERY_TIMEOUT=f"{TIMEOUT:g}s",
            WEBHOOKS_BREAKER_THRESHOLD="1000",
        )
        await _zoo(ctx, report, env)
        report.check(
            broker.proxy.stats.corrupted >= 1,
            f"the proxy corrupted the marked batch in flight ({broker.proxy.stats.corrupted}×)",
        )


async def _zoo(ctx: Context, report: Report, env: dict[str, str]) -> None:
    params = ctx.params
    async with Rig("endpoint-zoo", ctx.run_dir, env) as rig:
        target = rig.hub.add("redirect-target", new_endpoint_secret(), accept())
        table = zoo(params.huge_bytes)
        table["redirect"] = (always(302, {"Location": target}), table["redirect"][1])
        for name, (behaviour, _) in table.items():
            rig.endpoint(name, behaviour)
        gone = rig.endpoint("gone", always(410))
        rig.endpoint("ops", accept(), event_types=frozenset({ENDPOINT_DISABLED}))
        await rig.provision()
        rig.service.start()
        await rig.service.wait_healthy()
        await rig.publish_marked(CORRUPT_MARKER)  # before the zoo's events: they must pass it
        # The zoo's events follow once the bad batch is dead-lettered. Tansu may answer a fetch
        # just past a batch with that batch first, so records sharing its fetch response are
        # walked past with it (the note of the consumer's `_end_of_undecodable`).
        await _until_dead_lettered(rig, within=30.0)
        await rig.publish(params.zoo_events)
        # Once the 410 disabled `gone` (its announcement reached `ops`), a few more events:
        # their deliveries to `gone` must be suppressed at once, never sent.
        announced = await rig.journal.wait_until(lambda: bool(rig.journal.at("ops")), 30.0)
        report.check(announced, "the 410 was announced to `ops` within 30 s")
        late = set(await rig.publish(LATE_EVENTS))
        names = [*table, "gone"]
        settled = await _settle(rig, names, params.converge)
        report.check(
            settled, f"every zoo delivery reached a final status within {params.converge:g}s"
        )
        await asyncio.sleep(0.5)  # arrivals answered after the last attempt was recorded
        for name, (_, expectation) in table.items():
            await _expect(rig, report, name, expectation)
        await _expect_gone(rig, report, gone.endpoint.id, late)
        disabled = [orjson.loads(a.body) for a in rig.journal.at("ops") if a.accepted]
        about = Counter(
            (e["data"]["endpointId"], e["data"]["reason"])
            for e in disabled
            if e["type"] == ENDPOINT_DISABLED
        )
        report.check(
            about == Counter({(gone.endpoint.id, "gone"): len(disabled)})
            and len({e["id"] for e in disabled}) == 1,
            f"ops: exactly one {ENDPOINT_DISABLED} event, about the gone endpoint ({dict(about)})",
        )
        hits = len(rig.journal.at("redirect-target"))
        report.check(
            hits == 0, f"redirect-target: never contacted — redirects are not followed ({hits})"
        )
        problems = integrity_problems(
            rig.published(),
            [a for a in rig.journal.arrivals if a.endpoint not in {"ops", "redirect-target"}],
        )
        report.check(
            not problems,
            f"no unknown id, unverified signature or corrupted body anywhere ({len(problems)})",
        )
        report.notes.extend(problems[:5])
        reasons = await rig.dead_letter_reasons()
        report.check(
            reasons == Counter({UNDECODABLE_BATCH: 1}),
            f"the corrupted batch is one `{UNDECODABLE_BATCH}` dead letter ({dict(reasons)})",
        )
        _gaps(rig, report, "throttled", 2 * STEP, "Retry-After 5 s clamped to 2× the step")
        _gaps(rig, report, "recovering", STEP, "the ladder step")
        await _excerpts(rig, report, "huge")
        await rig.service.terminate(within=30)


async def _until_dead_lettered(rig: Rig, *, within: float) -> None:
    """Wait (at most `within` s) for the corrupted batch's `undecodable_batch` dead letter."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await rig.dead_letter_reasons())["undecodable_batch"]:
            return
        await asyncio.sleep(0.2)


async def _settle(rig: Rig, names: list[str], within: float) -> bool:
    """Wait until every endpoint has one delivery per event and none is pending."""
    expected = len(rig.published())
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        counts = [await rig.deliveries(name) for name in names]
        if all(
            len(ds) == expected and all(d.status is not DeliveryStatus.PENDING for d in ds)
            for ds in counts
        ):
            return True
        await asyncio.sleep(0.5)
    return False


async def _attempts(rig: Rig, name: str) -> dict[str, tuple[Try, ...]]:
    """Each delivery's attempts as (failure kind, status code), by event id."""
    found: dict[str, tuple[Try, ...]] = {}
    deliveries = await rig.deliveries(name)
    async with rig.store() as store:
        for delivery in deliveries:
            attempts = await store.list_attempts(delivery.id)
            found[delivery.event_id] = tuple(
                (a.failure.value if a.failure else None, a.status_code) for a in attempts
            )
    return found


async def _expect(rig: Rig, report: Report, name: str, expectation: Expectation) -> None:
    published = rig.published()
    deliveries = await rig.deliveries(name)
    statuses = Counter(d.status.value for d in deliveries)
    ladders = Counter((await _attempts(rig, name)).values())
    arrivals = Counter(arrivals_per_id(rig.journal.arrivals, name).values())
    wanted_ladder = Counter({expectation.attempts: len(published)})
    ok = (
        statuses == Counter({expectation.status.value: len(published)})
        and ladders == wanted_ladder
        and arrivals == Counter({expectation.arrivals: len(published)})
    )
    report.check(
        ok,
        f"{name} ({expectation.says}): every delivery {expectation.status.value} after "
        f"{len(expectation.attempts)} attempt(s) {_ladder(expectation.attempts)}, "
        f"{expectation.arrivals} arrival(s) per event — got statuses {dict(statuses)}, "
        f"arrivals per event {dict(arrivals)}"
        + ("" if ladders == wanted_ladder else f", ladders {[_ladder(k) for k in ladders]}"),
    )
    if expectation.accepts:
        report.pairs(rig.pairs(name))


async def _expect_gone(rig: Rig, report: Report, endpoint_id: str, late: set[str]) -> None:
    """410: the endpoint is disabled (gone); each delivery either failed on its one attempt
    (a 410) or was suppressed once the endpoint was disabled — every `late` one (published
    after the announcement) suppressed; never retried or succeeded."""
    async with rig.store() as store:
        endpoint = await store.get_endpoint(endpoint_id)
    deliveries = await rig.deliveries("gone")
    ladders = await _attempts(rig, "gone")
    arrivals = arrivals_per_id(rig.journal.arrivals, "gone")
    failed = [d for d in deliveries if d.status is DeliveryStatus.FAILED]
    suppressed = [d for d in deliveries if d.status is DeliveryStatus.SUPPRESSED]
    odd = [  # deliveries that ended any other way, with what happened to them
        f"{d.status.value}/{d.reason}: {_ladder(ladders[d.event_id])} ×{arrivals[d.event_id]}"
        for d in deliveries
        if not (
            d.status is DeliveryStatus.FAILED
            and ladders[d.event_id] == (("http_status", 410),)
            and arrivals[d.event_id] == 1
        )
        and not (
            d.status is DeliveryStatus.SUPPRESSED
            and d.reason == "endpoint_disabled"
            and ladders[d.event_id] == ()
            and arrivals[d.event_id] == 0
        )
    ]
    disabled = (
        endpoint is not None
        and endpoint.status is EndpointStatus.DISABLED
        and endpoint.disabled_reason is not None
        and endpoint.disabled_reason.value == "gone"
    )
    state = "missing" if endpoint is None else f"{endpoint.status.value}/{endpoint.disabled_reason}"
    late_suppressed = {d.event_id for d in suppressed} >= late
    report.check(
        disabled
        and bool(failed)
        and not odd
        and late_suppressed
        and len(deliveries) == len(rig.published()),
        f"gone (410): endpoint disabled with reason gone ({state}); each delivery failed on "
        f"its single 410 attempt ({len(failed)}) or suppressed, never sent ({len(suppressed)}, "
        f"the {len(late)} published after the announcement among them: {late_suppressed})"
        + (f"; otherwise: {odd[:3]}" if odd else ""),
    )


def _gaps(rig: Rig, report: Report, name: str, at_least: float, why: str) -> None:
    """Seconds between consecutive arrivals of the same event at `name`."""
    times: dict[str, list[float]] = {}
    for arrival in rig.journal.at(name):
        times.setdefault(arrival.webhook_id, []).append(arrival.at)
    gaps = [b - a for ts in times.values() for a, b in itertools.pairwise(ts)]
    low, high = (min(gaps), max(gaps)) if gaps else (0.0, 0.0)
    report.check(
        bool(gaps) and low >= at_least - 0.01 and high < at_least + 1.5,
        f"{name}: retries wait {why}, {at_least:g} s (gaps {low:.2f}–{high:.2f} s)",
    )


async def _excerpts(rig: Rig, report: Report, name: str) -> None:
    sizes: list[int] = []
    for delivery in await rig.deliveries(name):
        async with rig.store() as store:
            sizes.extend(len(a.response_excerpt) for a in await store.list_attempts(delivery.id))
    report.check(
        bool(sizes) and max(sizes) <= EXCERPT_CAP,
        f"{name}: the stored response excerpt is capped at {EXCERPT_CAP} bytes "
        f"(largest {max(sizes, default=0)})",
    )


def _ladder(attempts: tuple[Try, ...]) -> str:
    """`[connect ×2, ok 200]`: each attempt's failure kind (or ok) and status code."""
    runs = [(key, len(list(group))) for key, group in itertools.groupby(attempts)]
    return (
        "["
        + ", ".join(
            f"{kind or 'ok'}{'' if code is None else f' {code}'}{f' ×{n}' if n > 1 else ''}"
            for (kind, code), n in runs
        )
        + "]"
    )
