"""What a scenario runs against: Tansu, the receiver process, a seeded store, the service.

Everything is on 127.0.0.1 and in child processes of the benchmark:

* `Stack` — one embedded broker (Tansu, `devtools.broker.EmbeddedBroker`) and one
  receiver process (`bench.receiver_proc`) with a secret per endpoint index, shared by the
  runs of a scenario (every run gets a fresh topic and consumer group);
* `Stack.prepare` — a scratch database (SQLite file or throwaway PostgreSQL database),
  migrated and seeded directly through the store (organizations, endpoints pointing at the
  receiver, their secrets), and a fresh topic with several partitions;
* `ServiceProcess` — `python -m dispatcher serve` with `WEBHOOKS_*` settings, as production
  runs it, stopped with SIGTERM (graceful shutdown) and killed if that takes too long.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp

from bench.database import Database, scratch_database
from bench.publisher import create_topic
from bench.receiver_proc import ReceiverProcess
from devtools.broker import EmbeddedBroker, free_port
from dispatcher.core.models import Endpoint, Organization
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret

# Settings every benchmark service gets (a scenario adds or overrides some).
BASE_SETTINGS: dict[str, str] = {
    "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    "WEBHOOKS_KAFKA_SESSION_TIMEOUT": "6s",
    "WEBHOOKS_MAX_IN_FLIGHT": "512",
    "WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT": "64",
    "WEBHOOKS_LOG_LEVEL": "warning",
    "WEBHOOKS_SHUTDOWN_TIMEOUT": "5s",
    "WEBHOOKS_HTTP_HOST": "127.0.0.1",
    "WEBHOOKS_INSTANCE_ID": "bench",
}
STOP_TIMEOUT = 40.0
_METRICS = tuple(
    f"webhooks_{name}"
    for name in (
        "events_consumed_total",
        "deliveries_created_total",
        "deliveries_finished_total",
        "deliveries_duplicate_total",
        "attempts_total",
        "retries_scheduled_total",
        "deliveries_released_total",
        "store_errors_total",
    )
)


@dataclass(frozen=True, slots=True)
class Layout:
    """Which organizations exist and which receiver endpoints each one owns."""

    endpoints: Mapping[str, tuple[int, ...]]  # org id → receiver endpoint indices

    @classmethod
    def even(cls, orgs: int, per_org: int) -> Layout:
        return cls(
            {f"org_bench{o:03d}": tuple(range(o * per_org, (o + 1) * per_org)) for o in range(orgs)}
        )

    @property
    def orgs(self) -> list[str]:
        return list(self.endpoints)

    @property
    def indices(self) -> list[int]:
        return [i for indices in self.endpoints.values() for i in indices]

    @property
    def fanout(self) -> int:
        return max(len(indices) for indices in self.endpoints.values())


@dataclass(slots=True)
class Prepared:
    database: Database
    topic: str
    group: str
    layout: Layout
    endpoint_ids: dict[int, str] = field(default_factory=dict)  # receiver index → endpoint id


class Stack:
    """A broker and a receiver for one scenario. `async with Stack(workdir, endpoints)`."""

    def __init__(self, workdir: Path, endpoints: int) -> None:
        self.workdir = workdir
        self.encryption_key = base64.b64encode(os.urandom(32)).decode()
        self.broker = EmbeddedBroker(log_path=workdir / "tansu.log")
        self.receiver = ReceiverProcess([new_endpoint_secret() for _ in range(endpoints)], workdir)

    async def __aenter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.broker.start)
        try:
            await self.receiver.__aenter__()
        except BaseException:
            self.broker.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.receiver.__aexit__(exc_type, exc, tb)
        finally:
            await asyncio.to_thread(self.broker.stop)

    @asynccontextmanager
    async def prepare(self, store: str, layout: Layout) -> AsyncIterator[Prepared]:
        """A seeded scratch database and a fresh topic (not yet published to)."""
        async with scratch_database(store, self.workdir) as database:
            run = uuid.uuid4().hex[:10]
            prepared = Prepared(
                database=database, topic=f"bench-{run}", group=f"bench-{run}", layout=layout
            )
            await self._seed(prepared)
            await create_topic(self.broker.bootstrap_servers, prepared.topic)
            yield prepared

    async def _seed(self, prepared: Prepared) -> None:
        box = SecretBox.from_setting(self.encryption_key)
        now = datetime.now(UTC)
        async with open_store(prepared.database.url, secret_box=box) as store:
            await store.migrate()
            for org, indices in prepared.layout.endpoints.items():
                await store.put_organization(Organization(id=org))
                for index in indices:
                    endpoint_id = f"ep_bench{index:05d}"
                    endpoint = Endpoint(
                        id=endpoint_id, organization_id=org, url=self.receiver.url(index)
                    )
                    await store.create_endpoint(endpoint, self.receiver.secrets[index], now=now)
                    prepared.endpoint_ids[index] = endpoint_id

    def settings(self, prepared: Prepared, overrides: Mapping[str, str]) -> dict[str, str]:
        """The service's `WEBHOOKS_*` environment for a run (without the encryption key)."""
        return {
            **BASE_SETTINGS,
            "WEBHOOKS_DATABASE_URL": prepared.database.url,
            "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "WEBHOOKS_KAFKA_TOPICS": prepared.topic,
            "WEBHOOKS_KAFKA_GROUP": prepared.group,
            **overrides,
        }

    def service(self, prepared: Prepared, overrides: Mapping[str, str]) -> ServiceProcess:
        env = self.settings(prepared, overrides)
        env["WEBHOOKS_ENCRYPTION_KEY"] = self.encryption_key
        return ServiceProcess(env, self.workdir / f"service-{prepared.topic}.log")


class ServiceProcess:
    """`python -m dispatcher serve` as a child process; `async with` waits for /healthz."""

    def __init__(self, env: Mapping[str, str], log: Path, *, module: str = "dispatcher") -> None:
        self.port = free_port()
        self.env = {**env, "WEBHOOKS_HTTP_PORT": str(self.port)}
        self.log = log
        self._module = module
        self._process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", self._module, "serve"],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def __aenter__(self) -> Self:
        self._process = self._spawn()
        try:
            await self._wait_healthy()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _wait_healthy(self, within: float = 60.0) -> None:
        assert self._process is not None
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the service exited during start-up; see {self.log}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the service was not healthy within {within:.0f} s; see {self.log}")

    async def metrics(self) -> dict[str, float]:
        """The service's counters worth a look after a run (`/metrics`, non-zero only)."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(f"{self.url}/metrics") as response,
        ):
            text = await response.text()
        found: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name.startswith(_METRICS) and not name.endswith("_created"):
                with contextlib.suppress(ValueError):
                    if float(value):
                        found[name.removeprefix("webhooks_")] = float(value)
        return found

    async def stop(self) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL after STOP_TIMEOUT."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        self.exit_code = process.returncode
        self._process = None
