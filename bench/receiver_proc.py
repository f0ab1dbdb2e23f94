"""The benchmark receiver: one aiohttp + uvloop process serving many verifying endpoints.

    .venv/bin/python -m bench.receiver_proc SECRETS.json   (prints its port, then serves)

Endpoint `i` is `POST /hook/i`, checked with the partner verifier (`layers_webhooks`) and
the i-th secret of SECRETS.json, so every delivery counted here also proves that signer and
verifier agree. A request that fails verification is answered 401 and counted as invalid.

This is a leaner cousin of `devtools.receivers.Receiver` (which keeps every body in
memory, one server per endpoint): it keeps counters per endpoint and, only while
`record` is on, the receipt time of each accepted webhook-id (for latency). The signature
is verified with `json_parse=False` — the HMAC check is what proves the scheme; parsing
the JSON is the partner application's cost, not the transport's.

Behaviour per endpoint (set through `POST /control`): `ok` (200), `down` (503), `slow:S`
(200 after S seconds) and `blackhole` (accept, never answer — held for 10 minutes at most).

`ReceiverProcess` is the parent's handle: it starts the process and talks to its control
API (`GET /stats`, `GET /receipts`, `POST /control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web
from layers_webhooks import Webhook, WebhookVerificationError

BLACKHOLE_HOLD = 600.0


class _Endpoints:
    def __init__(self, secrets: list[str]) -> None:
        self.webhooks = [Webhook(secret) for secret in secrets]
        self.reset()
        self.default = "ok"
        self.behaviours: dict[int, str] = {}
        self.record = False

    def reset(self) -> None:
        self.ok: Counter[int] = Counter()
        self.requests = 0
        self.invalid = 0
        self.non_2xx = 0
        self.first_ok: float | None = None
        self.last_ok: float | None = None
        self.receipts: list[tuple[int, str, float]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        at = time.time()
        self.requests += 1
        try:
            index = int(request.match_info["index"])
            webhook = self.webhooks[index]
        except (ValueError, IndexError):
            return web.Response(status=404)
        body = await request.read()
        try:
            webhook.verify(body, request.headers, json_parse=False)
        except WebhookVerificationError as exc:
            self.invalid += 1
            return web.Response(status=401, text=type(exc).__name__)
        behaviour = self.behaviours.get(index, self.default)
        if behaviour == "down":
            self.non_2xx += 1
            return web.Response(status=503)
        if behaviour == "blackhole":
            await asyncio.sleep(BLACKHOLE_HOLD)
        elif behaviour.startswith("slow:"):
            await asyncio.sleep(float(behaviour.removeprefix("slow:")))
        if self.record:
            self.receipts.append((index, request.headers.get("webhook-id", ""), at))
        self.ok[index] += 1
        if self.first_ok is None:
            self.first_ok = at
        self.last_ok = time.time()
        return web.Response(status=200)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": {str(k): v for k, v in self.ok.items()},
                "ok_total": sum(self.ok.values()),
                "requests": self.requests,
                "invalid": self.invalid,
                "non_2xx": self.non_2xx,
                "first_ok": self.first_ok,
                "last_ok": self.last_ok,
            }
        )

    async def receipts_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.receipts)

    async def control(self, request: web.Request) -> web.Response:
        """`{"reset": bool, "record": bool, "default": str, "behaviours": {i: str}}`."""
        command = await request.json()
        if command.get("reset"):
            self.reset()
        if "record" in command:
            self.record = bool(command["record"])
        if "default" in command:
            self.default = str(command["default"])
        if "behaviours" in command:
            self.behaviours = {int(k): str(v) for k, v in command["behaviours"].items()}
        return web.json_response({"ok": True})


async def _serve(secrets: list[str]) -> None:
    endpoints = _Endpoints(secrets)
    app = web.Application(client_max_size=1024**2)
    app.router.add_post("/hook/{index}", endpoints.handle)
    app.router.add_get("/stats", endpoints.stats)
    app.router.add_get("/receipts", endpoints.receipts_json)
    app.router.add_post("/control", endpoints.control)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes stdin to stop us
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    import uvloop

    uvloop.run(_serve(json.loads(Path(sys.argv[1]).read_text())))


class ReceiverProcess:
    """Starts the receiver as a child process; `async with ReceiverProcess(secrets, dir)`."""

    def __init__(self, secrets: list[str], workdir: Path) -> None:
        self.secrets = secrets
        self._path = workdir / "receiver-secrets.json"
        self._log = workdir / "receiver.log"
        self._process: subprocess.Popen[str] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{index}"

    def _spawn(self) -> subprocess.Popen[str]:
        self._path.write_text(json.dumps(self.secrets))
        with self._log.open("a") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "bench.receiver_proc", str(self._path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    async def __aenter__(self) -> Self:
        self._process = self._spawn()
        assert self._process.stdout is not None
        line = await asyncio.to_thread(self._process.stdout.readline)
        if not line.strip():
            raise RuntimeError(f"the receiver did not start; see {self._log}")
        self.port = int(line)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                await asyncio.to_thread(self._process.wait, 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def control(self, **command: Any) -> None:
        assert self._session is not None
        async with self._session.post(f"{self._base()}/control", json=command) as response:
            response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.get(f"{self._base()}/stats") as response:
            result: dict[str, Any] = await response.json()
            return result

    async def receipts(self) -> list[tuple[int, str, float]]:
        """(endpoint index, webhook-id, receipt time) of each accepted request while
        recording was on."""
        assert self._session is not None
        async with self._session.get(f"{self._base()}/receipts") as response:
            rows = await response.json()
        return [(int(i), str(w), float(t)) for i, w, t in rows]

    async def wait_for(self, indices: list[int], each: int, *, within: float) -> dict[str, Any]:
        """Poll until every endpoint in `indices` accepted `each` requests, or time runs out;
        return the last stats."""
        deadline = time.monotonic() + within
        while True:
            stats = await self.stats()
            ok = stats["ok"]
            if all(ok.get(str(i), 0) >= each for i in indices):
                return stats
            if time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
