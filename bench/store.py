"""Store throughput per backend: ingest, claim and complete, in deliveries per second.

    .venv/bin/python -m bench.store [--deliveries N]

Ingests N deliveries (default 100,000) in batches of 500 (50 events of 1 KiB, each routed to
10 endpoints), claims them 500 at a time, then completes them 500 at a time, timing each
phase. SQLite runs on a file in a temporary directory; PostgreSQL on a scratch database
created next to WEBHOOKS_BENCH_POSTGRES_URL (default: the test server), skipped when
unreachable. Prints a Markdown table; `run()` returns the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from dispatcher.clock import new_id
from dispatcher.core.models import (
    AttemptOutcome,
    AttemptResult,
    Claim,
    DeliveryStatus,
    Endpoint,
    Event,
    NewDelivery,
)
from dispatcher.store import IngestBatch, PostgresStore, SQLiteStore, Store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret

BATCH = 500
PER_EVENT = 10
BODY_BYTES = 1024
POSTGRES_URL = os.environ.get(
    "WEBHOOKS_BENCH_POSTGRES_URL",
    os.environ.get("WEBHOOKS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)
NOW = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
PHASES = ("ingest", "claim", "complete")

Rates = dict[str, float]


def ingest_batches(deliveries: int, endpoint_ids: Sequence[str]) -> list[IngestBatch]:
    """Consumer-shaped batches: 50 events per batch, each delivered to every endpoint."""
    events_per_batch = BATCH // PER_EVENT
    batches = []
    for _ in range(deliveries // BATCH):
        events = []
        for _ in range(events_per_batch):
            event_id = new_id("evt")
            prefix = b'{"id":"%s","type":"content.generated","data":{"blob":"' % event_id.encode()
            body = prefix + b"x" * (BODY_BYTES - len(prefix) - 3) + b'"}}'
            events.append(
                Event(
                    id=event_id,
                    type="content.generated",
                    created=NOW,
                    organization_id="org_bench",
                    body=body,
                )
            )
        batches.append(
            IngestBatch(
                events=events,
                deliveries=[
                    NewDelivery(
                        id=new_id("dlv"),
                        event_id=event.id,
                        endpoint_id=endpoint_id,
                        status=DeliveryStatus.PENDING,
                        reason=None,
                        next_attempt_at=NOW,
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                    for event in events
                    for endpoint_id in endpoint_ids
                ],
            )
        )
    return batches


def successes(claims: Sequence[Claim]) -> list[AttemptResult]:
    outcome = AttemptOutcome(
        status_code=200, failure=None, duration_ms=20.0, response_excerpt=b"ok"
    )
    return [
        AttemptResult(
            delivery_id=claim.delivery_id,
            endpoint_id=claim.endpoint_id,
            attempt=claim.attempts + 1,
            started_at=NOW,
            outcome=outcome,
            status=DeliveryStatus.SUCCEEDED,
            next_attempt_at=None,
            lease=claim.lease,
        )
        for claim in claims
    ]


async def measure(store: Store, deliveries: int) -> Rates:
    await store.migrate()
    endpoint_ids = [f"ep_bench_{i}" for i in range(PER_EVENT)]
    for endpoint_id in endpoint_ids:
        endpoint = Endpoint(
            id=endpoint_id, organization_id="org_bench", url="https://example.com/hook"
        )
        await store.create_endpoint(endpoint, new_endpoint_secret(), now=NOW)
    batches = ingest_batches(deliveries, endpoint_ids)
    total = sum(len(batch.deliveries) for batch in batches)

    started = time.perf_counter()
    for batch in batches:
        await store.ingest(batch)
    ingest_s = time.perf_counter() - started

    claimed: list[list[Claim]] = []
    started = time.perf_counter()
    lease = NOW + timedelta(minutes=5)
    while claims := await store.claim_due(
        now=NOW, limit=BATCH, lease_owner="bench", lease_expires_at=lease
    ):
        claimed.append(claims)
    claim_s = time.perf_counter() - started
    if sum(map(len, claimed)) != total:
        raise RuntimeError(f"claimed {sum(map(len, claimed))} of {total} deliveries")

    results = [successes(claims) for claims in claimed]
    started = time.perf_counter()
    for batch_results in results:
        await store.complete(batch_results)
    complete_s = time.perf_counter() - started

    return {"ingest": total / ingest_s, "claim": total / claim_s, "complete": total / complete_s}


@asynccontextmanager
async def scratch_postgres() -> AsyncIterator[str]:
    """A throwaway database on the benchmark server, dropped afterwards."""
    admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    name = f"whbench_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{POSTGRES_URL.rpartition('/')[0]}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def measure_all(deliveries: int) -> dict[str, Rates | str]:
    box = SecretBox.generate()
    rates: dict[str, Rates | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with SQLiteStore(Path(tmp) / "bench.db", secret_box=box) as store:
            rates["sqlite"] = await measure(store, deliveries)
    try:
        async with scratch_postgres() as url, PostgresStore(url, secret_box=box) as store:
            rates["postgres"] = await measure(store, deliveries)
    except (OSError, asyncpg.PostgresError) as exc:
        rates["postgres"] = f"skipped: {exc}"
    return rates


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(deliveries: int = 100_000) -> dict[str, object]:
    """Measure every reachable backend; {backend: {phase: deliveries per second} | reason}."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        rates = runner.run(measure_all(deliveries))
    return {"deliveries": deliveries, "batch": BATCH, **rates}


def table(report: dict[str, object]) -> str:
    lines = [
        f"Store throughput, {report['deliveries']:,} deliveries, batches of {report['batch']} "
        "(deliveries/s)",
        "",
        "| backend | " + " | ".join(PHASES) + " |",
        "|---|" + "---:|" * len(PHASES),
    ]
    for backend in ("sqlite", "postgres"):
        rates = report.get(backend)
        if isinstance(rates, dict):
            lines.append(f"| {backend} | " + " | ".join(f"{rates[p]:,.0f}" for p in PHASES) + " |")
        else:
            lines.append(f"| {backend} | {rates} |" + " |" * (len(PHASES) - 1))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(table(run(args.deliveries)))


if __name__ == "__main__":
    main()
