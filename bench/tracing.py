"""The cost of tracing per delivery attempt: off (no provider, the default) against on.

    .venv/bin/python -m bench.tracing [--requests 5000] [--rounds 3] [--spans 20000]

Two measures, both in one process so their ratios share the machine's load at that moment:

  * `client`: DeliveryClient attempts against a local receiver process (as bench.delivery),
    client CPU µs per attempt, in interleaved rounds: `direct` (the client's inner send,
    i.e. the code as it was before tracing existed), `off` (the production path with tracing
    off: one `is None` test), `on` (the SDK's provider and BatchSpanProcessor exporting to a
    counting sink, no network) and `on+propagation` (plus the `traceparent` header).
  * `span`: the attempt span alone, no network: µs to open, fill and end one.

The sink is in memory on purpose (this measures our code and the SDK, not a collector);
the tests export to a real OTLP receiver instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from ipaddress import ip_network

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.delivery import BODY, SECRET, _run_loop
from dispatcher import tracing
from dispatcher.core.destinations import DestinationPolicy
from dispatcher.core.models import AttemptOutcome, Claim, Lease
from dispatcher.engine.delivery.client import DeliveryClient
from dispatcher.spans import Spans

MODES = ("direct", "off", "on", "on+propagation")
EVENT_ID = "evt_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC"
CLAIM = Claim(
    delivery_id="dlv_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC",
    event_id=EVENT_ID,
    event_type="content.generated",
    organization_id="org_bench",
    endpoint_id="ep_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC",
    attempts=0,
    body=BODY,
    lease=Lease(owner="bench", epoch=1),
)


class CountingSink(SpanExporter):
    """An exporter that only counts: the SDK's whole path but the network."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def _spans(*, propagate: bool) -> tuple[Spans, TracerProvider, CountingSink]:
    sink = CountingSink()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(sink))
    return Spans(provider, propagate=propagate, consumer_group="bench"), provider, sink


async def _attempts(client: DeliveryClient, url: str, mode: str, count: int, tasks: int) -> int:
    secrets = (SECRET,)

    async def one() -> AttemptOutcome:
        if mode == "direct":
            return await client._send(url, EVENT_ID, BODY, secrets, int(time.time()), None)
        return await client.send(
            url=url,
            event_id=EVENT_ID,
            body=BODY,
            secrets=secrets,
            timestamp=int(time.time()),
            claim=CLAIM,
        )

    async def worker(n: int) -> int:
        failed = 0
        for _ in range(n):
            failed += not (await one()).succeeded
        return failed

    share, extra = divmod(count, tasks)
    return sum(await asyncio.gather(*(worker(share + (i < extra)) for i in range(tasks))))


async def _client(url: str, requests: int, rounds: int, tasks: int) -> dict[str, object]:
    policy = DestinationPolicy(allow=(ip_network("127.0.0.0/8"),))
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    exported = 0
    failed = 0
    async with DeliveryClient(policy=policy, user_agent="layers-webhooks/bench") as client:
        await _attempts(client, url, "off", min(requests, 2000), tasks)  # warm-up
        for _ in range(rounds):
            for mode in MODES:
                provider, sink = None, None
                if mode.startswith("on"):
                    spans, provider, sink = _spans(propagate=mode == "on+propagation")
                    tracing.active = spans
                started = time.process_time()
                failed += await _attempts(client, url, mode, requests, tasks)
                if provider is not None and sink is not None:
                    provider.force_flush()  # the export's CPU is part of the cost
                    exported += sink.exported
                    provider.shutdown()
                cpu[mode].append((time.process_time() - started) / requests * 1e6)
                tracing.active = None
    medians = {mode: round(statistics.median(values), 1) for mode, values in cpu.items()}
    return {
        "requests_per_mode_and_round": requests,
        "rounds": rounds,
        "concurrency": tasks,
        "failed": failed,
        "spans_exported": exported,
        "client_cpu_us_per_attempt": medians,
        "off_vs_direct": round(medians["off"] / medians["direct"], 3),
        "on_vs_off": round(medians["on"] / medians["off"], 3),
        "on_propagation_vs_off": round(medians["on+propagation"] / medians["off"], 3),
    }


def _span_cost(count: int) -> dict[str, float]:
    """µs per attempt span (open, fill, end; no request) and per `is None` test when off."""
    outcome = AttemptOutcome(status_code=200, failure=None, duration_ms=1.0)
    url = "https://hooks.example.com/hook?token=x"
    spans, provider, _ = _spans(propagate=True)
    started = time.perf_counter()
    for _ in range(count):
        with spans.attempt(CLAIM, url) as span:
            span.finish(outcome)
    on = (time.perf_counter() - started) / count * 1e6
    provider.shutdown()
    tracing.active = None
    started = time.perf_counter()
    hits = 0
    for _ in range(count):
        hits += tracing.active is not None
    off = (time.perf_counter() - started) / count * 1e6
    return {"on_us_per_span": round(on, 2), "off_us_per_check": round(off, 4), "hits": hits}


def run(requests: int = 5000, rounds: int = 3, spans: int = 20_000) -> dict[str, object]:
    """Start the receiver process; measure the client per mode in interleaved rounds."""
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.delivery", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        url = f"http://127.0.0.1:{port}/hook"
        client = _run_loop(_client(url, requests, rounds, 64), "uvloop")
    finally:
        assert receiver.stdin is not None
        receiver.stdin.close()
        receiver.wait(timeout=10)
    return {"bench": "tracing", "client": client, "span": _span_cost(spans)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spans", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.rounds, args.spans), indent=1))


if __name__ == "__main__":
    main()
