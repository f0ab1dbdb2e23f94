"""DeliveryClient throughput: signed POSTs per second against a local receiver.

    .venv/bin/python -m bench.delivery [--requests 20000] [--concurrency 256] [--loop uvloop]

The receiver (aiohttp, answering 204) runs in a separate process on 127.0.0.1 so the
number measures the client's CPU, not the receiver sharing its core. The client signs every
request (one secret, decoded keys cached), passes the destination guard (loopback is allowed
as the demo allows it) and reads the answer, exactly as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from ipaddress import ip_network
from typing import Any

from aiohttp import web

from dispatcher.core.destinations import DestinationPolicy
from dispatcher.engine.delivery.client import DeliveryClient

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
BODY = json.dumps(
    {
        "id": "evt_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC",
        "type": "content.generated",
        "created": "2026-06-09T12:00:00Z",
        "data": {"organizationId": "org_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC", "contentId": "c_1" * 20},
    },
    separators=(",", ":"),
).encode()


def _run_loop(main: Coroutine[Any, Any, dict[str, object]], loop: str) -> dict[str, object]:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop  # optional, as in the service's composition root

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _serve() -> None:
    """The receiver process: print the port, answer 204 until stdin closes."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    async def main() -> dict[str, object]:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()
        return {}

    _run_loop(main(), "uvloop")


async def _drive(url: str, requests: int, concurrency: int) -> dict[str, object]:
    policy = DestinationPolicy(allow=(ip_network("127.0.0.0/8"),))
    async with DeliveryClient(policy=policy, user_agent="layers-webhooks/bench") as client:
        secrets = (SECRET,)

        async def worker(count: int) -> int:
            failed = 0
            for _ in range(count):
                outcome = await client.send(
                    url=url,
                    event_id="evt_01JZ7Q8M3S4T5V6W7X8Y9Z0ABC",
                    body=BODY,
                    secrets=secrets,
                    timestamp=int(time.time()),
                )
                failed += not outcome.succeeded
            return failed

        async def burst(total: int) -> int:
            share, extra = divmod(total, concurrency)
            counts = [share + (i < extra) for i in range(concurrency)]
            return sum(await asyncio.gather(*(worker(n) for n in counts if n)))

        await burst(min(requests, 2000))  # warm-up: connections open, caches filled
        wall, cpu = time.perf_counter(), time.process_time()
        failed = await burst(requests)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "requests": requests,
        "concurrency": concurrency,
        "failed": failed,
        "seconds": round(wall, 3),
        "requests_per_s": round(requests / wall),
        "client_cpu_us_per_request": round(cpu / requests * 1e6, 1),
    }


def run(requests: int = 20_000, concurrency: int = 256, loop: str = "uvloop") -> dict[str, object]:
    """Start the receiver process, drive `requests` POSTs with `concurrency` tasks."""
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.delivery", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        result = _run_loop(_drive(f"http://127.0.0.1:{port}/hook", requests, concurrency), loop)
    finally:
        assert receiver.stdin is not None
        receiver.stdin.close()
        receiver.wait(timeout=10)
    return {"bench": "delivery", "loop": loop, **result}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve()
        return
    print(json.dumps(run(args.requests, args.concurrency, args.loop)))


if __name__ == "__main__":
    main()
