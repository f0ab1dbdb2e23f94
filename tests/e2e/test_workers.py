"""`webhooks serve --workers 2`, proven with real processes: a supervisor and its two workers
on Tansu, against SQLite and PostgreSQL, delivering to real receivers.

Every event arrives once per endpoint between the workers, the endpoint's rate limit holds
across them (each worker is a replica), `/metrics` at the one address counts both workers'
deliveries, a SIGKILLed worker is restarted and loses nothing, SIGTERM drains them all and
exits 0, and a bad worker count is one line and exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from devtools.broker import free_port
from devtools.receivers import Receiver
from dispatcher.core.models import Endpoint, Organization
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from dispatcher.workers import CLOSE_GRACE
from tests.e2e.harness import envelope, new_topic, service_env
from tests.e2e.test_crash import wait_healthy
from tests.e2e.test_replicas import busiest_window

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WORKERS = 2
PARTITIONS = 4
ORG = "org_workers"
RATE = 20.0
SHUTDOWN = 5.0  # service_env's WEBHOOKS_SHUTDOWN_TIMEOUT


@contextmanager
def supervisor(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m dispatcher serve --workers 2` as a child process; SIGKILLed (with its
    workers) if a test leaves it running."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command, fixed argv
            [sys.executable, "-m", "dispatcher", "serve", "--workers", str(WORKERS)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            doomed = workers_of(process.pid)
            process.kill()
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)


def workers_of(pid: int) -> list[int]:
    """The supervisor's child processes now."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def wait_for_workers(pid: int, *, besides: frozenset[int] = frozenset()) -> list[int]:
    """Wait (bounded) until the supervisor has WORKERS children, none of them in `besides`."""
    for _ in range(300):
        found = [p for p in workers_of(pid) if p not in besides and alive(p)]
        if len(found) == WORKERS:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"the supervisor did not run {WORKERS} workers: {workers_of(pid)}")


async def wait_for_members(bootstrap: str, group: str) -> None:
    """Wait (bounded) until the consumer group is stable with both workers in it: a member
    that joins mid-run starts with a full rate bucket (a burst no replica count prevents)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(300):
            [response] = await admin.describe_consumer_groups([group])
            for _error, _group, state, _kind, _protocol, members, *_ in response.groups:
                if state == "Stable" and len(members) == WORKERS:
                    return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    raise AssertionError(f"the group {group} did not settle with {WORKERS} members")


async def publish(bootstrap: str, topic: str, count: int) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    published = []
    try:
        for n in range(count):
            event_id, body = envelope(ORG)
            published.append(event_id)
            await producer.send(topic, body, key=f"k{n}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    return published


async def seed(database_url: str, key: str, endpoints: list[tuple[Endpoint, str]]) -> None:
    async with open_store(database_url, secret_box=SecretBox.from_setting(key)) as store:
        await store.migrate()
        await store.put_organization(Organization(id=ORG))
        for endpoint, secret in endpoints:
            await store.create_endpoint(endpoint, secret, now=datetime.now(UTC))


async def succeeded_in_metrics(url: str) -> float:
    """`webhooks_deliveries_finished_total{status="succeeded"}` as one fresh connection's
    answer (so successive calls may reach either worker)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"{url}/metrics") as response,
    ):
        text = await response.text()
    for line in text.splitlines():
        if line.startswith('webhooks_deliveries_finished_total{status="succeeded"}'):
            return float(line.rpartition(" ")[2])
    return 0.0


async def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the supervisor; its exit code (bounded by its own kill deadline)."""
    process.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(process.wait, SHUTDOWN + CLOSE_GRACE + 10)


async def test_two_workers_deliver_once_per_endpoint_share_limits_and_metrics(
    tmp_path: Path, database_url: str, kafka_bootstrap: str
) -> None:
    """120 events, two endpoints (one at rateLimit 20/s): each event arrives once at each,
    the limited endpoint stays within 20/s across the two workers, every `/metrics` answer at the
    one address counts all 240 deliveries, and SIGTERM drains both workers and exits 0."""
    topic = await new_topic(kafka_bootstrap, "workers", PARTITIONS)
    port = free_port()
    env = service_env(
        database_url,
        kafka_bootstrap,
        WEBHOOKS_KAFKA_TOPICS=topic,
        WEBHOOKS_HTTP_PORT=str(port),
        WEBHOOKS_INSTANCE_ID="box",
    )
    plain_secret, limited_secret = new_endpoint_secret(), new_endpoint_secret()
    async with Receiver(plain_secret) as plain, Receiver(limited_secret) as limited:
        await seed(
            database_url,
            env["WEBHOOKS_ENCRYPTION_KEY"],
            [
                (Endpoint(id="ep_plain", organization_id=ORG, url=plain.url), plain_secret),
                (
                    Endpoint(
                        id="ep_limited", organization_id=ORG, url=limited.url, rate_limit=RATE
                    ),
                    limited_secret,
                ),
            ],
        )
        url = f"http://127.0.0.1:{port}"
        with supervisor(env, tmp_path / "serve.log") as process:
            await wait_healthy(url, process)
            pids = await wait_for_workers(process.pid)
            await wait_for_members(kafka_bootstrap, env["WEBHOOKS_KAFKA_GROUP"])
            await asyncio.sleep(6.0)  # a heartbeat each after both joined: each counts two

            published = await publish(kafka_bootstrap, topic, 120)
            everything = set(published)
            assert await plain.wait_until(lambda r: r.delivered() >= everything, 90)
            assert await limited.wait_until(lambda r: r.delivered() >= everything, 90)
            for _ in range(100):  # the counters move when the results are stored
                if await succeeded_in_metrics(url) == 240.0:
                    break
                await asyncio.sleep(0.1)
            answers = [await succeeded_in_metrics(url) for _ in range(6)]

            assert await stop(process) == 0
            assert not any(alive(pid) for pid in pids)

    assert plain.ids() == dict.fromkeys(published, 1)
    assert limited.ids() == dict.fromkeys(published, 1)
    assert all(r.verified for r in plain.received + limited.received)
    # Each worker enforces half of the rate with a bucket of half a second's burst, so in any
    # span T the two together send at most RATE * T + RATE (a bucket refilled while its
    # worker had no work bursts again): 120 take at least 5 s, and no second holds more than
    # 2 * RATE. Unshared (20/s each) they could finish in 2 s with 60 in one second.
    times = sorted(r.at for r in limited.received)
    assert times[-1] - times[0] >= (len(times) - RATE) / RATE - 0.25
    assert busiest_window(times) <= 2 * RATE + WORKERS
    assert answers == [240.0] * 6
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
    assert '"replicas": 2' in log or '"replicas":2' in log
    assert "box-w0" in log
    assert "box-w1" in log


@pytest.mark.postgres
@pytest.mark.timeout(240)
async def test_a_killed_worker_is_restarted_and_nothing_is_lost(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str
) -> None:
    """A worker SIGKILLed mid-burst is logged and started again; every event still arrives
    at the endpoint (the dead worker's leases are taken over when they expire)."""
    topic = await new_topic(kafka_bootstrap, "workers", PARTITIONS)
    port = free_port()
    env = service_env(
        postgres_url,
        kafka_bootstrap,
        WEBHOOKS_KAFKA_TOPICS=topic,
        WEBHOOKS_HTTP_PORT=str(port),
        WEBHOOKS_LEASE="4s",
    )
    secret = new_endpoint_secret()
    async with Receiver(secret) as hook:
        await seed(
            postgres_url,
            env["WEBHOOKS_ENCRYPTION_KEY"],
            [(Endpoint(id="ep_hook", organization_id=ORG, url=hook.url), secret)],
        )
        url = f"http://127.0.0.1:{port}"
        with supervisor(env, tmp_path / "serve.log") as process:
            await wait_healthy(url, process)
            first = await wait_for_workers(process.pid)

            published = await publish(kafka_bootstrap, topic, 150)
            assert await hook.wait_until(lambda r: len(r.delivered()) >= 20, 60)
            os.kill(first[0], signal.SIGKILL)
            published += await publish(kafka_bootstrap, topic, 50)
            now = await wait_for_workers(process.pid, besides=frozenset({first[0]}))
            everything = set(published)
            assert await hook.wait_until(lambda r: r.delivered() >= everything, 120)

            assert await stop(process) == 0

    assert first[1] in now  # the other worker ran on
    assert hook.delivered() == everything
    log = (tmp_path / "serve.log").read_text()
    assert "worker died; restarting it" in log
    assert "SIGKILL" in log


@pytest.mark.parametrize("value", ["0", "abc"])
def test_a_bad_worker_count_is_one_line_and_exit_2(tmp_path: Path, value: str) -> None:
    """WEBHOOKS_WORKERS=0 or abc: `serve` says so in one line and exits 2."""
    env = service_env(
        f"sqlite:///{tmp_path / 'webhooks.db'}", "127.0.0.1:9", WEBHOOKS_WORKERS=value
    )
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", "serve"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "WEBHOOKS_WORKERS" in done.stderr


async def test_the_workers_of_a_killed_supervisor_shut_down_and_free_the_address(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """SIGKILL the supervisor: its workers see their lifeline close, drain and exit, and the
    address is free for the next supervisor."""
    port = free_port()
    env = service_env(
        f"sqlite:///{tmp_path / 'webhooks.db'}",
        kafka_bootstrap,
        WEBHOOKS_KAFKA_TOPICS=await new_topic(kafka_bootstrap, "workers", PARTITIONS),
        WEBHOOKS_HTTP_PORT=str(port),
    )
    url = f"http://127.0.0.1:{port}"
    with supervisor(env, tmp_path / "first.log") as process:
        await wait_healthy(url, process)
        pids = await wait_for_workers(process.pid)
        process.kill()
        process.wait(timeout=30)
        for _ in range(300):
            if not any(alive(pid) for pid in pids):
                break
            await asyncio.sleep(0.1)
        assert not any(alive(pid) for pid in pids)
    with supervisor(env, tmp_path / "second.log") as process:
        await wait_healthy(url, process)
        assert await stop(process) == 0
    assert "the supervisor is gone; shutting down" in (tmp_path / "first.log").read_text()
