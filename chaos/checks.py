"""Expectations several scenarios share, each stated as a check in the report.

* `delivered`       — for endpoints that eventually accept: the ledger holds for each, and
                      the store has exactly one delivery per (event, endpoint), succeeded;
* `no_dead_letters` — infrastructure faults are never bad input;
* `graceful_exit`   — SIGTERM ends the service with status 0 within its shutdown deadline;
* `never_crashed`   — no service process exited without being asked to.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp

from chaos.harness import Report, Rig
from dispatcher.core.models import DeliveryStatus

# Seconds allowed past WEBHOOKS_SHUTDOWN_TIMEOUT for what follows the drain (leaving the
# consumer group, closing the store) and for interpreter teardown; measured at 0.1–0.5 s.
EXIT_GRACE = 2.0


async def delivered(rig: Rig, report: Report, names: list[str]) -> None:
    """Ledger per endpoint, then the store: one succeeded delivery per published event."""
    published = rig.published()
    for name in names:
        report.pairs(rig.pairs(name))
        deliveries = await rig.deliveries(name)
        statuses = Counter(d.status.value for d in deliveries)
        pairs = Counter(d.event_id for d in deliveries)
        extra = sum(count - 1 for count in pairs.values() if count > 1)
        report.check(
            len(deliveries) == len(published)
            and set(pairs) == published.keys()
            and statuses == Counter({DeliveryStatus.SUCCEEDED.value: len(published)}),
            f"{name}: the store holds exactly one delivery per event, all succeeded "
            f"({len(deliveries)} deliveries for {len(published)} events, {extra} duplicated "
            f"pairs, statuses {dict(statuses)})",
        )


async def no_dead_letters(rig: Rig, report: Report) -> None:
    count = await rig.dead_letters()
    report.check(count == 0, f"no dead letters ({count})")


async def graceful_exit(rig: Rig, report: Report, *, what: str = "SIGTERM") -> None:
    deadline = float(rig.env["WEBHOOKS_SHUTDOWN_TIMEOUT"].removesuffix("s"))
    code, seconds = await rig.service.terminate(within=deadline + 30.0)
    report.check(
        code == 0 and seconds <= deadline + EXIT_GRACE,
        f"{what}: exit status {code} after {seconds:.1f}s "
        f"(expected 0 within the {deadline:g}s shutdown timeout + {EXIT_GRACE:g}s)",
    )


def never_crashed(rig: Rig, report: Report) -> None:
    exits = rig.service.unexpected_exits
    if rig.service.process is not None and rig.service.process.poll() is not None:
        exits = [*exits, rig.service.process.returncode]
    report.check(
        not exits,
        f"no service process exited on its own ({len(exits)} did: {exits})"
        if exits
        else f"no service process exited on its own ({rig.service.starts} started)",
    )


async def store_errors(rig: Rig) -> dict[str, float]:
    """`webhooks_store_errors_total` by operation, from the live service's /metrics (empty
    when the service does not answer: `never_crashed` reports why)."""
    found: dict[str, float] = {}
    try:
        text = await rig.service.metrics()
    except (aiohttp.ClientError, TimeoutError):
        return found
    for line in text.splitlines():
        if line.startswith("webhooks_store_errors_total{"):
            labels, _, value = line.partition("} ")
            operation = labels.partition('operation="')[2].partition('"')[0]
            found[operation] = found.get(operation, 0.0) + float(value)
    return found


async def sample_while(
    condition: Callable[[], Awaitable[bool]], *, seconds: float, every: float = 0.5
) -> tuple[int, int]:
    """Evaluate `condition` every `every` s for `seconds`; return (true count, samples)."""
    hits = samples = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples += 1
        hits += bool(await condition())
        await asyncio.sleep(min(every, max(deadline - time.monotonic(), 0.0)))
    return hits, samples
