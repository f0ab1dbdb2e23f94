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
from types import TracebackType
from typing import Any, Self

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
        fetch_max_wait_ms=int(config.get("fetch_max_wait_ms", 500)),  # aiokafka's default
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


class NaiveProcess:
    """The baseline as a child process on `topic`; it stops by itself after `expect`
    successful POSTs or `within` seconds (and is terminated if still running on exit)."""

    def __init__(
        self,
        stack: Stack,
        topic: str,
        layout: Layout,
        *,
        expect: int,
        within: float,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        receiver = stack.receiver
        self._config = {
            "bootstrap": stack.broker.bootstrap_servers,
            "topic": topic,
            "group": topic,
            "expect": expect,
            "timeout": within,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "routes": {
                org: [[receiver.url(i), receiver.secrets[i]] for i in indices]
                for org, indices in layout.endpoints.items()
            },
        }
        self._path = stack.workdir / f"{topic}.json"
        self._log = stack.workdir / "naive.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        self._path.write_text(json.dumps(self._config))
        with self._log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "bench.naive", str(self._path)],
                stdout=subprocess.DEVNULL,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )

    async def __aenter__(self) -> Self:
        self._process = self._spawn()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        try:
            await asyncio.to_thread(process.wait, 30 if exc is None else 0.1)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


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
    naive = NaiveProcess(stack, topic, layout, expect=each * len(layout.indices), within=within)
    async with naive, Sampler(naive.pid) as sampler:
        return await wait_drained(
            receiver=receiver,
            database=None,
            sampler=sampler,
            indices=layout.indices,
            each=each,
            endpoint_ids=None,
            within=within,
        )


if __name__ == "__main__":
    main()
