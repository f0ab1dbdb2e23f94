"""The cost of an endpoint health read with 1,000,000 attempts stored, per store.

    .venv/bin/python -m bench.health [--attempts N] [--reads N] [--stores sqlite,postgres]
    .venv/bin/python -m bench --only health          (the same, into the suite's report)

Seeds, straight through SQL after the store's migrations: 100 endpoints, N deliveries (one
event each) with one attempt each, the measured endpoint `ep_000` holding half of them (10 %
pending, 10 % failed, the rest succeeded; the others 1 % failed), and the rollup buckets those
attempts would have written — every endpoint, three writer replicas, every five-minute bucket
of the last 48 hours, and their hourly sums. Then times, through the `Store` interface, each
read the API makes: one endpoint's health (`GET /v1/webhooks/{id}`), a page of 50 endpoints' health
(`GET /v1/webhooks`), the 24 h stats series, and the failing endpoints across organizations.
Prints a Markdown table of milliseconds per read (median and p95). The bucket sums cost the
same for every endpoint; `pending` and `failed` are index-only counts, so the hot endpoint
(N/20 of each) shows their cost and `ep_001` (a few failed) the reads without it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.store import scratch_postgres
from dispatcher.core.health import BUCKET_SECONDS, HOUR_SECONDS, LATENCY_BINS, bucket_start
from dispatcher.core.models import Endpoint
from dispatcher.store import PostgresStore, SQLiteStore, Store
from dispatcher.store.health import LATENCY_COLUMNS
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret

NOW = datetime(2026, 6, 9, 12, 2, tzinfo=UTC)
ENDPOINTS = 100
HOT = "ep_000"
WRITERS = ("replica-a", "replica-b", "replica-c")
KEPT_HOURS = 48
CHUNK = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Log = Callable[[str], None]


def _endpoint_ids() -> list[str]:
    return [f"ep_{i:03d}" for i in range(ENDPOINTS)]


def _status(i: int, hot: bool) -> str:
    if hot:
        return ("pending", "failed", *(["succeeded"] * 8))[i % 10]
    return "failed" if i % 100 == 0 else "succeeded"


def _rows(attempts: int) -> Iterator[tuple[str, str, str, datetime, bool]]:
    """(delivery id, endpoint id, status, started at, succeeded) per attempt over 24 h."""
    others = _endpoint_ids()[1:]
    span = 24 * 3600
    for i in range(attempts):
        hot = i % 2 == 0
        endpoint_id = HOT if hot else others[i % len(others)]
        status = _status(i // 2, hot)
        started = NOW - timedelta(seconds=(i * span) // attempts)
        yield f"dlv_{i:09d}", endpoint_id, status, started, status != "failed"


def _buckets() -> Iterator[tuple[Any, ...]]:
    """Every endpoint × writer × five-minute bucket of the last KEPT_HOURS."""
    rng = random.Random(7)
    first = bucket_start(NOW) - timedelta(hours=KEPT_HOURS)
    count = KEPT_HOURS * 3600 // BUCKET_SECONDS + 1
    for endpoint_id in _endpoint_ids():
        for writer in WRITERS:
            for b in range(count):
                bins = [0] * LATENCY_BINS
                for _ in range(6):
                    bins[rng.randrange(4, 12)] += rng.randrange(1, 20)
                ok = sum(bins)
                yield (
                    endpoint_id,
                    first + timedelta(seconds=b * BUCKET_SECONDS),
                    writer,
                    ok,
                    rng.randrange(0, 3),
                    *bins,
                )


def _hours(buckets: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The five-minute buckets' successes and failures summed per hour (the day window's)."""
    sums: dict[tuple[str, datetime, str], list[int]] = {}
    for row in buckets:
        tally = sums.setdefault((row[0], bucket_start(row[1], HOUR_SECONDS), row[2]), [0, 0])
        tally[0] += row[3]
        tally[1] += row[4]
    return [(*key, ok, failed) for key, (ok, failed) in sums.items()]


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


async def _create_endpoints(store: Store) -> None:
    await store.migrate()
    for endpoint_id in _endpoint_ids():
        org = "org_hot" if endpoint_id == HOT else f"org_{int(endpoint_id[3:]) % 10}"
        endpoint = Endpoint(id=endpoint_id, organization_id=org, url="https://example.com/h")
        await store.create_endpoint(endpoint, new_endpoint_secret(), now=NOW)


_BUCKET_COLUMNS = ("endpoint_id", "bucket_start", "writer", "succeeded", "failed", *LATENCY_COLUMNS)


def _seed_sqlite(path: Path, attempts: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    rows = list(_rows(attempts))
    with conn:
        conn.executemany(
            "INSERT INTO events VALUES (?, 'content.generated', 'org_hot', ?, ?, ?, 1)",
            ((f"evt_{r[0][4:]}", _us(r[3]), _us(r[3]), b"{}") for r in rows),
        )
        conn.executemany(
            "INSERT INTO deliveries (id, event_id, endpoint_id, status, attempts, "
            "next_attempt_at, created_at, updated_at, waiting_reason) "
            "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (
                (
                    r[0],
                    f"evt_{r[0][4:]}",
                    r[1],
                    r[2],
                    _us(r[3] + timedelta(hours=1)) if r[2] == "pending" else None,
                    _us(r[3]),
                    _us(r[3]),
                    "retry_scheduled" if r[2] == "pending" else None,
                )
                for r in rows
            ),
        )
        conn.executemany(
            "INSERT INTO attempts VALUES (?, ?, 1, ?, 42.0, ?, ?, ?, '')",
            (
                (
                    f"att_{r[0][4:]}",
                    r[0],
                    _us(r[3]),
                    200 if r[4] else 503,
                    None if r[4] else "http_status",
                    b"ok",
                )
                for r in rows
            ),
        )
        marks = ", ".join("?" for _ in _BUCKET_COLUMNS)
        buckets = list(_buckets())
        conn.executemany(
            f"INSERT INTO endpoint_health ({', '.join(_BUCKET_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            ((b[0], _us(b[1]), *b[2:]) for b in buckets),
        )
        conn.executemany(
            "INSERT INTO endpoint_health_hourly VALUES (?, ?, ?, ?, ?)",
            ((h[0], _us(h[1]), *h[2:]) for h in _hours(buckets)),
        )
        conn.execute(
            "UPDATE endpoints SET consecutive_failures = 3, last_failure_at = ?", (_us(NOW),)
        )
    conn.execute("ANALYZE")
    conn.close()


async def _seed_postgres(url: str, attempts: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        rows = list(_rows(attempts))
        for start in range(0, len(rows), CHUNK):
            part = rows[start : start + CHUNK]
            await conn.copy_records_to_table(
                "events",
                columns=[
                    "id",
                    "type",
                    "organization_id",
                    "created",
                    "received_at",
                    "body",
                    "delivery_count",
                ],
                records=[
                    (f"evt_{r[0][4:]}", "content.generated", "org_hot", r[3], r[3], b"{}", 1)
                    for r in part
                ],
            )
            await conn.copy_records_to_table(
                "deliveries",
                columns=[
                    "id",
                    "event_id",
                    "endpoint_id",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "created_at",
                    "updated_at",
                    "waiting_reason",
                ],
                records=[
                    (
                        r[0],
                        f"evt_{r[0][4:]}",
                        r[1],
                        r[2],
                        1,
                        r[3] + timedelta(hours=1) if r[2] == "pending" else None,
                        r[3],
                        r[3],
                        "retry_scheduled" if r[2] == "pending" else None,
                    )
                    for r in part
                ],
            )
            await conn.copy_records_to_table(
                "attempts",
                columns=[
                    "id",
                    "delivery_id",
                    "attempt",
                    "started_at",
                    "duration_ms",
                    "status_code",
                    "failure_kind",
                    "response_excerpt",
                    "detail",
                ],
                records=[
                    (
                        f"att_{r[0][4:]}",
                        r[0],
                        1,
                        r[3],
                        42.0,
                        200 if r[4] else 503,
                        None if r[4] else "http_status",
                        b"ok",
                        "",
                    )
                    for r in part
                ],
            )
        buckets = list(_buckets())
        await conn.copy_records_to_table(
            "endpoint_health", columns=list(_BUCKET_COLUMNS), records=buckets
        )
        await conn.copy_records_to_table(
            "endpoint_health_hourly",
            columns=["endpoint_id", "bucket_start", "writer", "succeeded", "failed"],
            records=_hours(buckets),
        )
        await conn.execute(
            "UPDATE endpoints SET consecutive_failures = 3, last_failure_at = $1", NOW
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _time(read: Callable[[], Awaitable[Any]], reads: int) -> dict[str, float]:
    await read()  # warm: the first read pays for plans and pages
    samples = []
    for _ in range(reads):
        started = time.perf_counter()
        await read()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 3),
    }


async def _reads(store: Store, reads: int, attempts: int) -> dict[str, dict[str, float]]:
    page = _endpoint_ids()[:50]
    health = await store.endpoint_health([HOT], now=NOW)
    assert health[HOT].succeeded_24h > 0, "the seeded buckets are not read"
    return {
        f"one endpoint's health (ep_000: {attempts // 20:,} pending, as many failed)": await _time(
            lambda: store.endpoint_health([HOT], now=NOW), reads
        ),
        "one endpoint's health (ep_001: 1 % failed, none pending)": await _time(
            lambda: store.endpoint_health(["ep_001"], now=NOW), reads
        ),
        "a page of 50 endpoints' health": await _time(
            lambda: store.endpoint_health(page, now=NOW), reads
        ),
        "24 h stats series": await _time(
            lambda: store.endpoint_stats(HOT, since=NOW - timedelta(days=1), until=NOW), reads
        ),
        "failing endpoints, all orgs (50)": await _time(
            lambda: store.failing_endpoints(None, limit=51), reads
        ),
    }


async def measure(stores: Sequence[str], attempts: int, reads: int, log: Log) -> dict[str, Any]:
    box = SecretBox([bytes(range(32))])
    result: dict[str, Any] = {"attempts": attempts, "reads": reads, "stores": {}}
    for kind in stores:
        started = time.monotonic()
        if kind == "sqlite":
            with tempfile.TemporaryDirectory(prefix="health-bench-") as folder:
                path = Path(folder) / "webhooks.db"
                async with SQLiteStore(path, secret_box=box) as store:
                    await _create_endpoints(store)
                await asyncio.to_thread(_seed_sqlite, path, attempts)
                log(f"health: sqlite seeded in {time.monotonic() - started:.0f} s")
                async with SQLiteStore(path, secret_box=box) as store:
                    result["stores"][kind] = await _reads(store, reads, attempts)
        else:
            async with scratch_postgres() as url:
                async with PostgresStore(url, secret_box=box) as store:
                    await _create_endpoints(store)
                await _seed_postgres(url, attempts)
                log(f"health: postgres seeded in {time.monotonic() - started:.0f} s")
                async with PostgresStore(url, secret_box=box) as store:
                    result["stores"][kind] = await _reads(store, reads, attempts)
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"Health reads with {result['attempts']:,} attempts stored "
        f"(ms per read, median / p95 of {result['reads']}):",
        "",
        "| read | " + " | ".join(result["stores"]) + " |",
        "|---|" + "---|" * len(result["stores"]),
    ]
    names: dict[str, Any] = next(iter(result["stores"].values()), {})
    for name in names:
        cells = [
            f"{s[name]['median_ms']:.2f} / {s[name]['p95_ms']:.2f}"
            for s in result["stores"].values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_health(
    *, stores: Sequence[str], attempts: int = 1_000_000, reads: int = 200, log: Log = print
) -> dict[str, Any]:
    return asyncio.run(measure(stores, attempts, reads, log))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.health", description=__doc__)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    print(table(run_health(stores=stores, attempts=args.attempts, reads=args.reads)))


if __name__ == "__main__":
    main()
