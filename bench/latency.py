"""Latency: publish-to-receipt percentiles at fixed publish rates (fan-out 1).

One service per store and run. It is warmed up first (its consumer group joined, its
connections to the receiver open), then, for each rate, 1 KB events are published at that
steady rate for a bounded duration while it runs. The publisher keeps each event's publish
time (taken when the event is handed to the producer, `linger_ms=1`); the receiver records
each accepted webhook-id's arrival time; both are `time.time()` on the same machine. The
latency therefore includes the producer, Tansu, the consumer's fetch, the store
transaction, signing and the POST — what a partner observes.

Events still missing once the publishing stopped are waited for (bounded) and reported as
`missing` if they never arrive. The store's `events.received_at` (stamped when the consumer
hands a batch to the store) splits each latency in two: publish → ingest (producer, Tansu,
fetch, decode) and ingest → receipt (the transaction, the scheduler, signing, the POST).
The naive baseline (`bench.naive`, no store, aiokafka's default 500 ms fetch wait) is
measured the same way, and again with `fetch_max_wait_ms=10`: on Tansu an idle partition's
fetch is held for the whole wait, so this sets the latency floor of any consumer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.database import Database
from bench.naive import NaiveProcess
from bench.procstat import MachineLoad, Sampler
from bench.publisher import EventFactory, Publisher, create_topic
from bench.receiver_proc import ReceiverProcess
from bench.stack import Layout, Stack
from bench.stats import latency_summary

RATES = (500, 2000, 5000)
# Settings on top of stack.BASE_SETTINGS (none: the service's defaults otherwise).
SETTINGS: dict[str, str] = {}
LAYOUT = Layout.even(orgs=10, per_org=1)
WARM_UP_EVENTS = 200

Log = Callable[[str], None]


async def _steady(
    publisher: Publisher,
    receiver: ReceiverProcess,
    sampler: Sampler,
    database: Database | None,
    *,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    await receiver.control(reset=True, record=True, default="ok", behaviours={})
    load = MachineLoad()
    started = time.time()
    published = await publisher.steady(LAYOUT.orgs, rate, seconds)
    publish_seconds = time.time() - started
    each = len(published) // len(LAYOUT.orgs)
    await receiver.wait_for(LAYOUT.indices, each, within=30 + len(published) / 1000)
    ended = time.time()
    machine_cores = load.cores()
    receipts = await receiver.receipts()
    await receiver.control(record=False)
    first: dict[str, float] = {}
    for _, event_id, at in receipts:
        if event_id in published and event_id not in first:
            first[event_id] = at
    latencies = [at - published[event_id] for event_id, at in first.items()]
    cpu = sampler.cpu_between(started, ended)
    stages: dict[str, float] = {}
    if database is not None:
        stored = await database.received_at()
        ingest = [stored[e] - published[e] for e in first if e in stored]
        deliver = [at - stored[e] for e, at in first.items() if e in stored]
        stages = {
            **{f"to_ingest_{k}": v for k, v in latency_summary(ingest).items()},
            **{f"ingest_to_receipt_{k}": v for k, v in latency_summary(deliver).items()},
        }
    return {
        "rate": rate,
        "published": len(published),
        "achieved_publish_rate": round(len(published) / publish_seconds, 1),
        "received": len(first),
        "missing": len(published) - len(first),
        "duplicates": len(receipts) - len(first),
        **latency_summary(latencies),
        "service_cpu_share": round(cpu / max(ended - started, 1e-6), 3),
        "machine_busy_cores": round(machine_cores, 2),
        **stages,
    }


async def _rates(
    stack: Stack,
    topic: str,
    pid: int,
    database: Database | None,
    *,
    seconds: float,
    rates: tuple[int, ...],
) -> list[dict[str, Any]]:
    """Warm the consumer `pid` up on `topic`, then publish at each rate in turn."""
    factory = EventFactory(LAYOUT.orgs)
    bootstrap = stack.broker.bootstrap_servers
    receiver = stack.receiver
    async with (
        Sampler(pid) as sampler,
        Publisher(bootstrap, topic, factory, linger_ms=1) as publisher,
    ):
        await publisher.steady(LAYOUT.orgs, WARM_UP_EVENTS, 1.0)
        each = WARM_UP_EVENTS // len(LAYOUT.orgs)
        await receiver.wait_for(LAYOUT.indices, each, within=60)
        return [
            await _steady(publisher, receiver, sampler, database, rate=rate, seconds=seconds)
            for rate in rates
        ]


async def measure_latency(
    stack: Stack, store: str, *, seconds: float, rates: tuple[int, ...] = RATES
) -> list[dict[str, Any]]:
    """One service, warmed up, then each rate in turn. `store` "naive" is the naive baseline
    (aiokafka's default 500 ms fetch wait), "naive-fetch10" the same with a 10 ms wait."""
    await stack.receiver.control(reset=True, record=False, default="ok", behaviours={})
    if store.startswith("naive"):
        wait = 10 if store == "naive-fetch10" else 500
        topic = f"naive-{time.time_ns()}"
        await create_topic(stack.broker.bootstrap_servers, topic)
        expect = WARM_UP_EVENTS + int(sum(rates) * seconds)
        budget = 120 + expect / 1000
        naive = NaiveProcess(
            stack, topic, LAYOUT, expect=expect, within=budget, fetch_max_wait_ms=wait
        )
        async with naive:
            return await _rates(stack, topic, naive.pid, None, seconds=seconds, rates=rates)
    async with (
        stack.prepare(store, LAYOUT) as prepared,
        stack.service(prepared, SETTINGS) as service,
    ):
        return await _rates(
            stack, prepared.topic, service.pid, prepared.database, seconds=seconds, rates=rates
        )


async def run_latency(
    stack: Stack, *, stores: list[str], runs: int, seconds: float, log: Log
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "seconds_per_rate": seconds,
        "settings": {**SETTINGS},
        "fanout": 1,
        "service": {},
    }
    for store in [*stores, "naive", "naive-fetch10"]:
        samples: dict[str, list[dict[str, Any]]] = {str(rate): [] for rate in RATES}
        # The baselines are yardsticks, not the subject: one run keeps the suite short.
        for run in range(1 if store.startswith("naive") else runs):
            measured = await measure_latency(stack, store, seconds=seconds)
            for sample in measured:
                samples[str(sample["rate"])].append(sample)
                log(
                    f"{store} latency run {run + 1} at {sample['rate']}/s: "
                    f"p50 {sample['p50_ms']} ms, p99 {sample['p99_ms']} ms, "
                    f"missing {sample['missing']}"
                )
        result["service"][store] = samples
    return result
