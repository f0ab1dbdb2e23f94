"""Throughput: end-to-end deliveries per second and service CPU per 1,000 deliveries.

For each store and fan-out (1, 10, 100): 1 KB events are PRE-PUBLISHED to a fresh topic,
then the service starts and drains them. The clock runs from the receiver's first accepted
delivery until the store records the last one `succeeded` (see `bench.drain`), so the
number measures the dispatcher — consume, validate, route, persist, sign, POST, record —
and neither the publisher nor the consumer-group join.

Every event goes to `fan-out` endpoints of its organization; with fan-out 1 there are ten
organizations of one endpoint each (so one endpoint's cap does not bound the run), with
10 and 100 one organization. The naive baseline (`bench.naive`) drains the same shape of
topic, the receiver's raw capacity is measured with wrk (`bench.capacity`), and the
delivery client's floor — `DeliveryClient` alone, signed POSTs to a bare receiver, its CPU
per request (`bench.delivery`) — in the same run, so the goals' ratios compare figures taken
under the same load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench import delivery
from bench.capacity import measure_capacity
from bench.drain import Drain, wait_drained
from bench.naive import measure_naive
from bench.procstat import Sampler
from bench.profile import Profiler
from bench.publisher import EventFactory, Publisher
from bench.stack import Layout, Stack
from dispatcher.setting_values import usable_cores

FANOUTS = (1, 10, 100)
# Settings on top of stack.BASE_SETTINGS (none: the service's defaults otherwise).
SETTINGS: dict[str, str] = {}

Log = Callable[[str], None]


def layout_for(fanout: int) -> Layout:
    return Layout.even(orgs=max(1, 10 // fanout), per_org=fanout)


async def measure_service(
    stack: Stack,
    store: str,
    layout: Layout,
    events: int,
    *,
    settings: Mapping[str, str],
    within: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Pre-publish `events`, start the service, time the drain; one run."""
    async with stack.prepare(store, layout) as prepared:
        factory = EventFactory(layout.orgs)
        async with Publisher(stack.broker.bootstrap_servers, prepared.topic, factory) as pub:
            publish_rate = await pub.burst(layout.orgs, events)
        await stack.receiver.control(reset=True, record=False, default="ok", behaviours={})
        each = events // len(layout.orgs)
        service = stack.service(prepared, settings)
        async with service, Sampler(service.pid) as sampler, Profiler(service.pid, profile):
            drain = await wait_drained(
                receiver=stack.receiver,
                database=prepared.database,
                sampler=sampler,
                indices=layout.indices,
                each=each,
                endpoint_ids=None,
                within=within,
            )
            metrics = await service.metrics()
        counts = await prepared.database.delivery_counts()
    return {
        **drain.as_dict(),
        "store_counts": counts,
        "publish_rate": round(publish_rate),
        "peak_rss_mb": round(sampler.peak_rss_kib / 1024, 1),
        "service_exit": service.exit_code,
        "metrics": metrics,
    }


async def run_throughput(
    stack: Stack,
    *,
    stores: list[str],
    runs: int,
    deliveries: int,
    naive_deliveries: int,
    log: Log,
    fanouts: tuple[int, ...] = FANOUTS,
    workers: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Every store × fan-out, the naive baseline per fan-out, the receiver capacity and the
    delivery client's floor."""
    result: dict[str, Any] = {
        "deliveries_per_run": deliveries,
        "settings": {**SETTINGS},
        "service": {},
        "naive": {},
    }
    log("receiver capacity (wrk)")
    result["capacity"] = await measure_capacity(stack, runs=runs)
    result["floor"] = []
    for run in range(runs):
        floor = await asyncio.to_thread(delivery.run, requests=max(deliveries // 2, 5000))
        result["floor"].append(floor)
        log(
            f"delivery client floor run {run + 1}: {floor['requests_per_s']:,}/s, "
            f"{floor['client_cpu_us_per_request']} µs CPU per request"
        )
    for fanout in fanouts:
        layout = layout_for(fanout)
        events = _events(deliveries, layout)
        samples: list[dict[str, Any]] = []
        for run in range(runs):
            started = time.monotonic()
            drain = await measure_naive(stack, layout, _events(naive_deliveries, layout), 300)
            samples.append(_naive_sample(drain))
            log(f"naive fan-out {fanout} run {run + 1}: {drain.rate:,.0f}/s ({_took(started)})")
        result["naive"][str(fanout)] = samples
        for store in stores:
            # The service's default worker count, then each count asked for (`--workers`).
            default = usable_cores()  # WEBHOOKS_WORKERS=auto
            for count in (None, *(w for w in workers if w != default)):
                label = store if count is None else f"{store}, --workers {count}"
                settings = (
                    SETTINGS if count is None else {**SETTINGS, "WEBHOOKS_WORKERS": str(count)}
                )
                samples = []
                for run in range(runs):
                    started = time.monotonic()
                    sample = await measure_service(
                        stack, store, layout, events, settings=settings, within=_budget(deliveries)
                    )
                    samples.append(sample)
                    log(
                        f"{label} fan-out {fanout} run {run + 1}: "
                        f"{sample['deliveries_per_s']:,.0f}/s, "
                        f"{sample['cpu_s_per_1k']:.3f} CPU s/1k ({_took(started)})"
                    )
                result["service"].setdefault(label, {})[str(fanout)] = samples
    return result


def _events(deliveries: int, layout: Layout) -> int:
    """Events for about `deliveries` deliveries, a multiple of the organization count."""
    orgs = len(layout.orgs)
    per_event = len(layout.indices) // orgs
    return max(orgs, deliveries // per_event // orgs * orgs)


def _budget(deliveries: int) -> float:
    return max(60.0, deliveries / 500)


def _naive_sample(drain: Drain) -> dict[str, Any]:
    return drain.as_dict()


def _took(started: float) -> str:
    return f"{time.monotonic() - started:.0f} s"
