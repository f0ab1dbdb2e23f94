"""THE NAIVE BASELINE — not the dispatcher. What a straightforward implementation does.

    .venv/bin/python -m bench.naive ROUTES.json   (run by the throughput scenario)

An aiokafka consumer that, for each record of each batch, parses the envelope, then POSTs
it to each of its organization's endpoints in turn with aiohttp — signed with the same
verifier library, one shared keep-alive session, uvloop — and commits the batch's offsets.
No store, no retries, no dedupe, no isolation: nothing survives a crash, a failed POST is
simply lost. It is the yardstick the dispatcher's numbers are divided by ("× naive").

It runs as its own process, like the service, and stops by itself after `expect`
successful POSTs or `timeout` seconds. ROUTES.json: `{"bootstrap", "topic", "group",
"expect", "timeout", "routes": {org id: [[url, secret], …]}}`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from layers_webhooks import Webhook

from bench.drain import Drain, wait_drained
from bench.procstat import Sampler
from bench.publisher import EventFactory, Publisher, create_topic
from bench.stack import Layout, Stack


async def _consume(config: dict[str, Any]) -> int:
    routes = {
        org: [(url, Webhook(secret)) for url, secret in targets]
        for org, targets in config["routes"].items()
    }
    consumer = AIOKafkaConsumer(
        config["topic"],
        bootstrap_servers=config["bootstrap"],
        group_id=config["group"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    await consumer.start()
    delivered = 0
    deadline = time.monotonic() + float(config["timeout"])
    try:
        async with aiohttp.ClientSession() as session:
            while delivered < config["expect"] and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        event = orjson.loads(record.value)
                        event_id = event["id"]
                        for url, webhook in routes[event["data"]["organizationId"]]:
                            timestamp = int(time.time())
                            headers = {
                                "content-type": "application/json",
                                "webhook-id": event_id,
                                "webhook-timestamp": str(timestamp),
                                "webhook-signature": webhook.sign_header(
                                    event_id, timestamp, record.value
                                ),
                            }
                            async with session.post(url, data=record.value, headers=headers) as r:
                                await r.read()
                                delivered += 200 <= r.status < 300
                if batches:
                    await consumer.commit()
    finally:
        await consumer.stop()
    return delivered


def main() -> None:
    import uvloop

    config = json.loads(Path(sys.argv[1]).read_text())
    delivered = uvloop.run(_consume(config))
    print(json.dumps({"delivered": delivered}))


def _spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.naive", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )


async def measure_naive(stack: Stack, layout: Layout, events: int, within: float) -> Drain:
    """Publish `events` (1 KB, fan-out per `layout`), start the naive consumer, and time it
    from its first accepted POST to the receiver's last one."""
    topic = f"naive-{time.time_ns()}"
    await create_topic(stack.broker.bootstrap_servers, topic)
    factory = EventFactory(layout.orgs)
    async with Publisher(stack.broker.bootstrap_servers, topic, factory) as publisher:
        await publisher.burst(layout.orgs, events)
    receiver = stack.receiver
    await receiver.control(reset=True, record=False, default="ok", behaviours={})
    each = events // len(layout.orgs)
    config = {
        "bootstrap": stack.broker.bootstrap_servers,
        "topic": topic,
        "group": topic,
        "expect": each * len(layout.indices),
        "timeout": within,
        "routes": {
            org: [[receiver.url(i), receiver.secrets[i]] for i in indices]
            for org, indices in layout.endpoints.items()
        },
    }
    path = stack.workdir / f"{topic}.json"
    path.write_text(json.dumps(config))
    process = _spawn(path, stack.workdir / "naive.log")
    try:
        async with Sampler(process.pid) as sampler:
            drain = await wait_drained(
                receiver=receiver,
                database=None,
                sampler=sampler,
                indices=layout.indices,
                each=each,
                endpoint_ids=None,
                within=within,
            )
    finally:
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return drain


if __name__ == "__main__":
    main()
