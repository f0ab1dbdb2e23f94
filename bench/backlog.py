"""Backlog: a million pending deliveries, a receiver that is down, then recovers.

1. The backlog is loaded BEFORE the service starts, through the store's batched ingest API:
   N deliveries (N/10 events of 1 KB, each for the same 10 endpoints of one organization),
   `pending`, due a minute ago, no lease — as after an outage of the dispatcher itself.
2. The service starts while the receiver answers every delivery `503` (the "down" phase,
   bounded): breakers open, deliveries are handed back; the scheduler must not load the
   backlog into memory. Its CPU over this phase is reported too.
3. The receiver recovers (answers 200); the clock runs until the store has no pending
   delivery left (polled every 0.5 s).

Peak RSS is the kernel's high-water mark of the service process (`VmHWM`). The goal is
≤ 250 MB: memory must be bounded by the scheduler's capacity, not by the backlog.
The retry ladder and breaker cooldown are compressed so a delivery that failed during the
down phase is retried within seconds of the recovery instead of minutes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.procstat import Sampler
from bench.publisher import EventFactory
from bench.stack import Layout, Prepared, Stack
from dispatcher.clock import new_id
from dispatcher.core.models import DeliveryStatus, Event, NewDelivery
from dispatcher.store import IngestBatch, open_store
from dispatcher.store.secretbox import SecretBox

LAYOUT = Layout.even(orgs=1, per_org=10)
EVENTS_PER_BATCH = 200  # × 10 endpoints = 2,000 deliveries per ingest transaction
SETTINGS = {
    "WEBHOOKS_RETRY_SCHEDULE": "1s,1s,1s,1s,1s,1s,1s",
    "WEBHOOKS_BREAKER_COOLDOWN": "2s",
    "WEBHOOKS_POLL_INTERVAL": "500ms",
}
RSS_GOAL_MB = 250

Log = Callable[[str], None]


async def load_backlog(stack: Stack, prepared: Prepared, deliveries: int, log: Log) -> float:
    """Insert `deliveries` pending deliveries; return how many per second were loaded."""
    org = LAYOUT.orgs[0]
    endpoint_ids = [prepared.endpoint_ids[i] for i in LAYOUT.indices]
    factory = EventFactory([org])
    due = datetime.now(UTC) - timedelta(minutes=1)
    box = SecretBox.from_setting(stack.encryption_key)
    events_total = deliveries // len(endpoint_ids)
    started = time.perf_counter()
    async with open_store(prepared.database.url, secret_box=box) as store:
        done = 0
        while done < events_total:
            count = min(EVENTS_PER_BATCH, events_total - done)
            events = []
            for _ in range(count):
                event_id, body = factory.make(org)
                events.append(
                    Event(
                        id=event_id,
                        type="content.generated",
                        created=due,
                        organization_id=org,
                        body=body,
                    )
                )
            batch = IngestBatch(
                events=events,
                deliveries=[
                    NewDelivery(
                        id=new_id("dlv"),
                        event_id=event.id,
                        endpoint_id=endpoint_id,
                        status=DeliveryStatus.PENDING,
                        reason=None,
                        next_attempt_at=due,
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                    for event in events
                    for endpoint_id in endpoint_ids
                ],
            )
            await store.ingest(batch)
            done += count
            if done % (events_total // 10 or 1) < count:
                log(f"  backlog loaded {done * len(endpoint_ids):,}")
    return events_total * len(endpoint_ids) / (time.perf_counter() - started)


async def measure_backlog(
    stack: Stack, store: str, *, deliveries: int, down_seconds: float, log: Log
) -> dict[str, Any]:
    receiver = stack.receiver
    async with stack.prepare(store, LAYOUT) as prepared:
        load_rate = await load_backlog(stack, prepared, deliveries, log)
        total = deliveries // len(LAYOUT.indices) * len(LAYOUT.indices)
        await receiver.control(reset=True, record=False, default="down", behaviours={})
        service = stack.service(prepared, SETTINGS)
        async with service, Sampler(service.pid, interval=0.25) as sampler:
            started = time.time()
            await asyncio.sleep(down_seconds)
            down_ended = time.time()
            down_stats = await receiver.stats()
            down_hwm = sampler.peak_rss_kib
            await receiver.control(default="ok")
            budget = max(300.0, total / 1000)
            deadline = time.monotonic() + budget
            pending = total
            while time.monotonic() < deadline:
                pending = await prepared.database.pending()
                if pending == 0:
                    break
                await asyncio.sleep(0.5)
            drained = time.time()
            metrics = await service.metrics()
        counts = await prepared.database.delivery_counts()
    drain_seconds = drained - down_ended
    return {
        "store": store,
        "deliveries": total,
        "load_rate": round(load_rate),
        "down_seconds": round(down_ended - started, 1),
        "down_requests": down_stats["requests"],
        "down_cpu_share": round(sampler.cpu_between(started, down_ended) / down_seconds, 3),
        "peak_rss_mb_down": round(down_hwm / 1024, 1),
        "peak_rss_mb": round(sampler.peak_rss_kib / 1024, 1),
        "drain_seconds": round(drain_seconds, 1),
        "drain_rate": round(total / drain_seconds, 1) if pending == 0 else None,
        "drained": pending == 0,
        "pending_left": pending,
        "store_counts": counts,
        "cpu_s_per_1k_drain": round(sampler.cpu_between(down_ended, drained) / total * 1000, 4),
        "settings": {**SETTINGS},
        "metrics": metrics,
    }


async def run_backlog(
    stack: Stack, *, stores: list[str], deliveries: int, down_seconds: float, log: Log
) -> dict[str, Any]:
    result: dict[str, Any] = {"rss_goal_mb": RSS_GOAL_MB, "runs": []}
    for store in stores:
        started = time.monotonic()
        sample = await measure_backlog(
            stack, store, deliveries=deliveries, down_seconds=down_seconds, log=log
        )
        result["runs"].append(sample)
        log(
            f"backlog {store} {sample['deliveries']:,}: peak RSS {sample['peak_rss_mb']} MB, "
            f"drain {sample['drain_seconds']} s ({time.monotonic() - started:.0f} s)"
        )
    return result
