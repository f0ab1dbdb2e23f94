"""The rig every scenario stands on: the service as a child process, the receivers, the
publisher, the store as the harness sees it, and the report of checks.

`Rig` is one scenario's world: a `ReceiverHub` of verifying endpoints, one organization
and its endpoints provisioned in the store, a `ServiceProcess` (`python -m dispatcher
serve` with `WEBHOOKS_*` settings, restartable, always killed on exit) and a `Publisher`
that remembers the exact bytes of every event it sent (what the ledger compares against).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp
from aiokafka import AIOKafkaProducer

from chaos.endpoints import Behaviour, Journal, ReceiverHub
from chaos.ledger import PairReport, check_pairs, complete
from devtools.broker import free_port
from dispatcher.clock import new_id, utcnow
from dispatcher.core.catalog import Catalog
from dispatcher.core.envelope import encode_event
from dispatcher.core.models import Endpoint, Organization
from dispatcher.store import DeliveryRecord, Store, open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret

EVENT_TYPE = "content.generated"
# A compressed ladder: 8 attempts, 200 ms apart, no jitter (attempt timing is checked).
LADDER = ",".join(["200ms"] * 7)
ATTEMPTS = 8


class HarnessError(Exception):
    """The rig itself could not do what a scenario asked (not a finding about the service)."""


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    what: str


@dataclass
class Report:
    """A scenario's checks (each a stated expectation, met or not) and notes."""

    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the scenario could not run here (not a failure)

    def check(self, ok: bool, what: str) -> bool:
        self.checks.append(Check(ok=ok, what=what))
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)

    def pairs(self, report: PairReport) -> bool:
        return self.check(report.ok, f"every pair accepted, verified, intact — {report.describe()}")

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def service_env(database_url: str, bootstrap: str, **overrides: str) -> dict[str, str]:
    """`WEBHOOKS_*` settings for a chaos service: fresh topic and group, short timeouts."""
    env = {
        "WEBHOOKS_DATABASE_URL": database_url,
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEBHOOKS_KAFKA_TOPICS": f"chaos-{uuid.uuid4().hex[:10]}",
        "WEBHOOKS_KAFKA_GROUP": f"chaos-{uuid.uuid4().hex[:10]}",
        "WEBHOOKS_KAFKA_SESSION_TIMEOUT": "6s",
        "WEBHOOKS_RETRY_SCHEDULE": LADDER,
        "WEBHOOKS_RETRY_JITTER": "0",
        "WEBHOOKS_DELIVERY_TIMEOUT": "2s",
        "WEBHOOKS_LEASE": "5s",
        "WEBHOOKS_POLL_INTERVAL": "100ms",
        "WEBHOOKS_SHUTDOWN_TIMEOUT": "5s",
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
        "WEBHOOKS_HTTP_HOST": "127.0.0.1",
        "WEBHOOKS_HTTP_PORT": str(free_port()),
        "WEBHOOKS_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "WEBHOOKS_LOG_LEVEL": "info",
        "WEBHOOKS_WORKERS": "1",  # one process per replica: the scenarios kill processes
    }
    env.update(overrides)
    return env


class ServiceProcess:
    """`python -m dispatcher serve` as a child process, restartable; never outlives the rig."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, name: str) -> None:
        self.env = dict(env)
        self.url = f"http://127.0.0.1:{env['WEBHOOKS_HTTP_PORT']}"
        self._log_dir = log_dir
        self._name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.unexpected_exits: list[int] = []  # exit codes nobody asked for

    @property
    def log_path(self) -> Path:
        return self._log_dir / f"{self._name}-serve-{self.starts}.log"

    def start(self) -> None:
        self._reap()
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dispatcher", "serve"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _reap(self) -> None:
        """Note an exit nobody asked for (a crash) before the process is replaced."""
        if self.process is not None and self.process.poll() is not None:
            self.unexpected_exits.append(self.process.returncode)
        self.process = None

    async def wait_healthy(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise HarnessError(f"the service exited during start-up ({self.log_path})")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise HarnessError(f"the service was not healthy within {within:g}s")

    async def ready(self) -> bool:
        """`/readyz` answered 200 (store and Kafka reachable)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3.0)) as session,
                session.get(f"{self.url}/readyz") as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def metrics(self) -> str:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3.0)) as session,
            session.get(f"{self.url}/metrics") as response,
        ):
            return await response.text()

    async def kill(self) -> None:
        """SIGKILL, and wait for it to be gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.process.wait, 10)
        else:
            self.unexpected_exits.append(self.process.returncode)
        self.process = None

    async def terminate(self, within: float) -> tuple[int | None, float]:
        """SIGTERM; return (exit code or None if still running after `within` s, seconds)."""
        if self.process is None or self.process.poll() is not None:
            self._reap()
            return None, 0.0
        process = self.process
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code: int | None = await asyncio.to_thread(process.wait, within)
        except subprocess.TimeoutExpired:
            code = None
        elapsed = time.monotonic() - started
        if code is None:
            await self.kill()
        self.process = None
        return code, elapsed

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 15) -> list[str]:
        """The last error-looking lines of the newest log (for a failure report)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        keep = [  # raw stderr (a crash's traceback) and error-level JSON lines
            line.strip()[:240]
            for line in text
            if line.strip()
            and (
                not line.startswith("{")
                or '"level":"error"' in line
                or '"level":"critical"' in line
            )
        ]
        return keep[-lines:]


@functools.cache
def _example() -> dict[str, object]:
    data = dict(_catalog().examples(EVENT_TYPE)[0])
    data.pop("organizationId", None)  # set to the scenario's org by encode_event
    return data


@functools.cache
def _catalog() -> Catalog:
    return Catalog.load()


class Publisher:
    """An aiokafka producer that remembers the exact value of every event it published."""

    def __init__(self, bootstrap: str, topic: str, org: str) -> None:
        self.topic = topic
        self.org = org
        self.published: dict[str, bytes] = {}
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)

    async def __aenter__(self) -> Self:
        async with asyncio.timeout(30):
            await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with asyncio.timeout(30):
            await self._producer.stop()

    async def publish_marked(self, marker: bytes) -> int:
        """Publish one valid event keyed `marker` (a proxy corrupts it in flight); its offset.

        It is not among `published`: no endpoint is expected to receive it."""
        value = encode_event(
            EVENT_TYPE,
            self.org,
            _example(),
            catalog=_catalog(),
            event_id=new_id("evt"),
            created=utcnow(),
        )
        async with asyncio.timeout(30):
            meta = await self._producer.send_and_wait(self.topic, value, key=marker)
        return int(meta.offset)

    async def publish(self, count: int, *, within: float = 60.0) -> list[str]:
        """Publish `count` fresh events and wait until the broker has them all."""
        sent: dict[str, bytes] = {}
        futures = []
        async with asyncio.timeout(within):
            for _ in range(count):
                event_id = new_id("evt")
                value = encode_event(
                    EVENT_TYPE,
                    self.org,
                    _example(),
                    catalog=_catalog(),
                    event_id=event_id,
                    created=utcnow(),
                )
                futures.append(await self._producer.send(self.topic, value, key=self.org.encode()))
                sent[event_id] = value
            await asyncio.gather(*futures)
        self.published.update(sent)
        return list(sent)


@dataclass(frozen=True, slots=True)
class Registered:
    name: str
    endpoint: Endpoint
    url: str


class Rig:
    """One scenario's world. Add endpoints, `provision()`, then drive `service` and `publisher`."""

    def __init__(self, name: str, run_dir: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.run_dir = run_dir
        self.env = dict(env)
        self.org = new_id("org")
        self.journal = Journal(run_dir / f"{name}-arrivals.jsonl")
        self.hub = ReceiverHub(self.journal)
        self.service = ServiceProcess(self.env, run_dir, name)
        self.box = SecretBox.from_setting(self.env["WEBHOOKS_ENCRYPTION_KEY"])
        self.endpoints: dict[str, Registered] = {}
        self._pending: list[tuple[Registered, str]] = []
        self._stack = AsyncExitStack()
        self.publisher: Publisher | None = None

    @property
    def database_url(self) -> str:
        return self.env["WEBHOOKS_DATABASE_URL"]

    def endpoint(
        self, name: str, behaviour: Behaviour, *, event_types: frozenset[str] | None = None
    ) -> Registered:
        """Serve endpoint `name` and register it for the org (stored by `provision`)."""
        secret = new_endpoint_secret()
        url = self.hub.add(name, secret, behaviour)
        endpoint = Endpoint(
            id=new_id("ep"),
            organization_id=self.org,
            url=url,
            event_types=frozenset({EVENT_TYPE}) if event_types is None else event_types,
        )
        registered = Registered(name=name, endpoint=endpoint, url=url)
        self.endpoints[name] = registered
        self._pending.append((registered, secret))
        return registered

    async def provision(self) -> None:
        """Migrate the store and write the org and every added endpoint into it."""
        async with asyncio.timeout(60), self.store() as store:
            await store.migrate()
            await store.put_organization(Organization(id=self.org))
            for registered, secret in self._pending:
                await store.create_endpoint(registered.endpoint, secret, now=datetime.now(UTC))
        self._pending.clear()

    def store(self) -> Store:
        return open_store(self.database_url, secret_box=self.box, pool_size=2)

    async def deliveries(self, name: str) -> list[DeliveryRecord]:
        """Every delivery of endpoint `name`, as the store has it."""
        endpoint_id = self.endpoints[name].endpoint.id
        found: list[DeliveryRecord] = []
        async with asyncio.timeout(60), self.store() as store:
            after: str | None = None
            for _ in range(10_000):  # pages of 100: far more than any scenario publishes
                page = await store.list_deliveries(endpoint_id, after=after, limit=100)
                found.extend(page)
                if len(page) < 100:
                    break
                after = page[-1].id
        return found

    async def dead_letters(self) -> int:
        async with asyncio.timeout(60), self.store() as store:
            return len(await store.list_dead_letters(limit=1000))

    async def publish(self, count: int) -> list[str]:
        """Publish `count` fresh events to the scenario's topic."""
        return await self._publisher().publish(count)

    async def publish_marked(self, marker: bytes) -> int:
        """Publish one event keyed `marker` (see `Publisher.publish_marked`); its offset."""
        return await self._publisher().publish_marked(marker)

    async def dead_letter_reasons(self) -> Counter[str]:
        async with asyncio.timeout(60), self.store() as store:
            return Counter(d.reason for d in await store.list_dead_letters(limit=1000))

    def published(self) -> dict[str, bytes]:
        """Every event published so far: id → the exact record value."""
        return self._publisher().published

    def _publisher(self) -> Publisher:
        if self.publisher is None:
            raise HarnessError("use the rig as `async with Rig(...)`")
        return self.publisher

    def pairs(self, name: str) -> PairReport:
        return check_pairs(self.published(), self.journal.arrivals, name)

    async def wait_delivered(self, names: list[str], within: float) -> bool:
        """Wait (bounded) until each endpoint in `names` accepted every published event;
        give up at once if the service is not running (it crashed: nothing will arrive)."""
        published = self.published()
        await self.journal.wait_until(
            lambda: (
                not self.service.alive
                or all(complete(published, self.journal.arrivals, n) for n in names)
            ),
            within,
        )
        return all(complete(published, self.journal.arrivals, n) for n in names)

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(self.hub)
        self._stack.callback(self.service.close)
        self.publisher = await self._stack.enter_async_context(
            Publisher(
                self.env["WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS"],
                self.env["WEBHOOKS_KAFKA_TOPICS"],
                self.org,
            )
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
