"""Isolation: do 10 % black-holed and 10 % slow endpoints hurt the healthy ones?

One organization with 20 endpoints receives every event (fan-out 20). In the degraded
case endpoints 0–1 accept and never answer (black hole) and 2–3 answer after 2 s; 4–19 are
healthy. The baseline is the same run with all 20 healthy. Either way only the 16 healthy
endpoints are measured, in two phases on one service:

1. saturation — events pre-published, the service started: healthy deliveries per second
   until all of them are acknowledged and stored `succeeded` (as in `bench.throughput`);
2. steady — events published at a fixed rate while the bad endpoints' backlog still
   churns: publish-to-receipt p50/p99 of the healthy endpoints.

The per-endpoint cap is the service default (32), the attempt deadline the default 15 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.drain import wait_drained
from bench.procstat import Sampler
from bench.publisher import EventFactory, Publisher
from bench.stack import Layout, Stack
from bench.stats import latency_summary

LAYOUT = Layout.even(orgs=1, per_org=20)
BAD = {0: "blackhole", 1: "blackhole", 2: "slow:2", 3: "slow:2"}
HEALTHY = [i for i in LAYOUT.indices if i not in BAD]
SETTINGS = {"WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT": "32"}  # the service default
STEADY_RATE = 100  # events/s → 1,600 healthy deliveries/s

Log = Callable[[str], None]


async def measure_isolation(
    stack: Stack, store: str, *, degraded: bool, events: int, seconds: float
) -> dict[str, Any]:
    behaviours = BAD if degraded else {}
    receiver = stack.receiver
    async with stack.prepare(store, LAYOUT) as prepared:
        factory = EventFactory(LAYOUT.orgs)
        bootstrap = stack.broker.bootstrap_servers
        async with Publisher(bootstrap, prepared.topic, factory) as publisher:
            await publisher.burst(LAYOUT.orgs, events)
        await receiver.control(reset=True, record=False, default="ok", behaviours=behaviours)
        service = stack.service(prepared, SETTINGS)
        healthy_ids = [prepared.endpoint_ids[i] for i in HEALTHY]
        async with (
            service,
            Sampler(service.pid) as sampler,
            Publisher(bootstrap, prepared.topic, factory, linger_ms=1) as steady,
        ):
            drain = await wait_drained(
                receiver=receiver,
                database=prepared.database,
                sampler=sampler,
                indices=HEALTHY,
                each=events,
                endpoint_ids=healthy_ids,
                within=max(120.0, events * len(HEALTHY) / 300),
            )
            await receiver.control(reset=True, record=True)
            published = await steady.steady(LAYOUT.orgs, STEADY_RATE, seconds)
            await receiver.wait_for(HEALTHY, len(published), within=60)
            receipts = await receiver.receipts()
            await receiver.control(record=False, default="ok", behaviours={})
            metrics = await service.metrics()
    healthy = set(HEALTHY)
    latencies = [
        at - published[event_id]
        for index, event_id, at in receipts
        if index in healthy and event_id in published
    ]
    return {
        "degraded": degraded,
        "healthy_saturation": drain.as_dict(),
        "healthy_deliveries_per_s": round(drain.rate, 1),
        "steady_rate": STEADY_RATE,
        "steady_expected": len(published) * len(HEALTHY),
        "steady_received": len(latencies),
        **latency_summary(latencies),
        "metrics": metrics,
    }


async def run_isolation(
    stack: Stack, *, store: str, runs: int, events: int, seconds: float, log: Log
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "store": store,
        "fanout": len(LAYOUT.indices),
        "bad_endpoints": {str(k): v for k, v in BAD.items()},
        "healthy_endpoints": len(HEALTHY),
        "events": events,
        "steady_seconds": seconds,
        "settings": {**SETTINGS},
        "baseline": [],
        "degraded": [],
    }
    for run in range(runs):
        for degraded in (False, True):
            started = time.monotonic()
            sample = await measure_isolation(
                stack, store, degraded=degraded, events=events, seconds=seconds
            )
            result["degraded" if degraded else "baseline"].append(sample)
            log(
                f"isolation {'degraded' if degraded else 'baseline'} run {run + 1}: healthy "
                f"{sample['healthy_deliveries_per_s']:,.0f}/s, p99 {sample['p99_ms']} ms "
                f"({time.monotonic() - started:.0f} s)"
            )
    return result
