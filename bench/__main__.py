"""`make bench` — the benchmark suite: `python -m bench [--quick] [--only …] [--runs N]`.

Starts everything it needs on 127.0.0.1 (Tansu, a verifying receiver process, the service
as `python -m dispatcher serve`, PostgreSQL databases when the server is reachable), runs
bounded scenarios and writes bench/results/latest.md and latest.json:

  throughput  deliveries/s and service CPU per 1k deliveries, fan-out 1/10/100, SQLite and
              PostgreSQL, beside the naive baseline (bench/naive.py) and the receiver's
              raw capacity (wrk)
  latency     publish-to-receipt p50/p95/p99 at 500, 2,000 and 5,000 events/s
  isolation   healthy endpoints' throughput and p99 with 10 % black-holed + 10 % slow
  backlog     1,000,000 pending deliveries: peak RSS and time to drain after recovery
  micro       bench.verifier, bench.schemas, bench.delivery, bench.store, bench.tracing
  health      ms per endpoint health read with 1,000,000 attempts stored (bench.health)

`--profile` adds one py-spy-profiled throughput run per store (fan-out 10), summarised in
the report; `--quick` is a smaller, single-run pass (about 5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import machine, report
from bench.backlog import run_backlog
from bench.database import STORES, postgres_available, postgres_version
from bench.health import run_health
from bench.isolation import run_isolation
from bench.latency import run_latency
from bench.micro import run_micro
from bench.procstat import MachineLoad
from bench.profile import summarise
from bench.stack import Stack
from bench.throughput import FANOUTS, SETTINGS, layout_for, measure_service, run_throughput

SCENARIOS = ("throughput", "latency", "isolation", "backlog", "micro", "health")
RESULTS = Path(__file__).parent / "results"
ENDPOINTS = 100  # receiver endpoints: fan-out 100 is the widest layout

METHOD = [
    "Everything runs on this one machine and shares its cores: the service, Tansu, the "
    "receiver process, PostgreSQL and the benchmark process (which publishes).",
    "Throughput: events are published before the service starts; the clock runs from the "
    "receiver's first accepted delivery until the store shows every delivery `succeeded` "
    "(polled every 50 ms). Service CPU is read from /proc/<pid>/stat over that window.",
    "Naive baseline (bench/naive.py): an aiokafka consumer that POSTs each delivery in turn "
    "(aiohttp, uvloop, same signing library) and commits each batch; it stores nothing and "
    "never retries. Its window ends at the receiver's last accepted request.",
    "Receiver (bench/receiver_proc.py): one aiohttp + uvloop process, every endpoint a path, "
    "every request verified with layers_webhooks (`json_parse=False`); it keeps counters, "
    "not bodies (the stock devtools.receivers.Receiver keeps every body). Its raw capacity "
    "is wrk POSTing one pre-signed 1 KB body to it.",
    "Latency: the publish time is taken when an event is handed to the producer "
    "(linger_ms=1), the receipt time when the request reaches the receiver; both "
    "time.time() on the same machine.",
    "Backlog: deliveries loaded through Store.ingest before the service starts; 'down' is "
    "the receiver answering 503; peak RSS is the service's VmHWM.",
]


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int
    throughput_deliveries: int
    naive_deliveries: int
    latency_seconds: float
    isolation_events: int
    steady_seconds: float
    backlog: int
    down_seconds: float
    quick: bool


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small single-run pass (~5 min)")
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join(SCENARIOS)}")
    parser.add_argument("--runs", type=int, help="repeats per figure (default 3, quick 1)")
    parser.add_argument("--backlog", type=int, help="pending deliveries (default 1,000,000)")
    parser.add_argument("--stores", default="sqlite,postgres", help="stores to measure")
    parser.add_argument("--backlog-stores", default="sqlite", help="stores for the backlog")
    parser.add_argument("--profile", action="store_true", help="add py-spy profiled runs")
    parser.add_argument(
        "--workers",
        default="",
        help="throughput: also measure the service with these WEBHOOKS_WORKERS (comma list)",
    )
    parser.add_argument(
        "--fanouts", default="1,10,100", help="throughput fan-outs (comma list of 1, 10, 100)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md/json go")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {SCENARIOS}")
    args.scenarios = only or list(SCENARIOS)
    try:
        args.fanouts = tuple(int(f) for f in args.fanouts.split(",") if f.strip())
    except ValueError:
        parser.error(f"--fanouts takes a comma list of integers, not {args.fanouts!r}")
    try:
        args.workers = tuple(int(w) for w in args.workers.split(",") if w.strip())
    except ValueError:
        parser.error(f"--workers takes a comma list of integers, not {args.workers!r}")
    if bad_fanouts := sorted(set(args.fanouts) - set(FANOUTS)):
        parser.error(f"unknown fan-out(s) {bad_fanouts}; choose from {FANOUTS}")
    for name in ("stores", "backlog_stores"):
        stores = [s.strip() for s in getattr(args, name).split(",") if s.strip()]
        if bad := sorted(set(stores) - set(STORES)):
            parser.error(f"unknown store(s) {', '.join(bad)}; choose from {STORES}")
        setattr(args, name, stores)
    return args


def plan_for(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    return Plan(
        runs=args.runs or (1 if quick else 3),
        throughput_deliveries=10_000 if quick else 30_000,
        naive_deliveries=5_000 if quick else 20_000,
        latency_seconds=3 if quick else 10,
        isolation_events=300 if quick else 1_500,
        steady_seconds=3 if quick else 10,
        backlog=args.backlog or (100_000 if quick else 1_000_000),
        down_seconds=5 if quick else 15,
        quick=quick,
    )


def log(message: str) -> None:
    print(
        f"[bench {datetime.now(UTC).strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True
    )


async def _scenarios(args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in args.scenarios:
        if name in ("micro", "health"):
            continue
        started = time.monotonic()
        log(f"{name}: starting")
        async with Stack(workdir / name, ENDPOINTS) as stack:
            if name == "throughput":
                result[name] = await run_throughput(
                    stack,
                    stores=args.stores,
                    runs=plan.runs,
                    deliveries=plan.throughput_deliveries,
                    naive_deliveries=plan.naive_deliveries,
                    log=log,
                    fanouts=args.fanouts,
                    workers=args.workers,
                )
            elif name == "latency":
                result[name] = await run_latency(
                    stack, stores=args.stores, runs=plan.runs, seconds=plan.latency_seconds, log=log
                )
            elif name == "isolation":
                result[name] = await run_isolation(
                    stack,
                    store=args.stores[0],
                    runs=plan.runs,
                    events=plan.isolation_events,
                    seconds=plan.steady_seconds,
                    log=log,
                )
            elif name == "backlog":
                result[name] = await run_backlog(
                    stack,
                    stores=args.backlog_stores,
                    deliveries=plan.backlog,
                    down_seconds=plan.down_seconds,
                    log=log,
                )
        log(f"{name}: done in {time.monotonic() - started:.0f} s")
    if args.profile:
        result["profiles"] = await _profiles(args, plan, workdir, args.out / "profiles")
    return result


async def _profiles(
    args: argparse.Namespace, plan: Plan, workdir: Path, out: Path
) -> dict[str, Any]:
    """One extra throughput run per store at fan-out 10 with py-spy attached."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    summaries: dict[str, Any] = {}
    async with Stack(workdir / "profile", ENDPOINTS) as stack:
        for store in args.stores:
            path = out / f"throughput-{store}-fanout10.txt"
            layout = layout_for(10)
            events = plan.throughput_deliveries // 10
            sample = await measure_service(
                stack, store, layout, events, settings=SETTINGS, within=300, profile=path
            )
            name = (
                f"throughput, {store}, fan-out 10 ({sample['deliveries_per_s']:,.0f}/s while "
                f"profiled; raw stacks: {path.relative_to(args.out.parent)})"
            )
            summaries[name] = summarise(path)
            if not summaries[name]["samples"]:
                summaries[name]["note"] = "py-spy is not installed (pip install py-spy)"
            log(f"profiled {store}: {sample['deliveries_per_s']:,.0f}/s")
    return summaries


def _background_load(seconds: float = 2.0) -> float:
    """Cores kept busy by OTHER work while the suite is idle: a noisy neighbour shows here."""
    load = MachineLoad()
    time.sleep(seconds)
    return round(load.cores(), 2)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    plan = plan_for(args)
    started = time.monotonic()
    notes: list[str] = []
    unavailable = uvloop.run(postgres_available())
    if unavailable is not None:
        for name in ("stores", "backlog_stores"):
            setattr(args, name, [s for s in getattr(args, name) if s != "postgres"])
        notes.append(f"PostgreSQL skipped: {unavailable}")
        log(notes[-1])
    if not args.stores:
        args.stores = ["sqlite"]
    background = _background_load()
    log(f"machine busy before the suite: {background:.2f} cores (other work on this machine)")
    workdir = Path(tempfile.mkdtemp(prefix="layers-bench-"))
    log(f"work dir {workdir}; scenarios {', '.join(args.scenarios)}; {plan}")
    result: dict[str, Any] = {}
    try:
        result.update(uvloop.run(_scenarios(args, plan, workdir)))
        if "micro" in args.scenarios:
            result["micro"] = run_micro(quick=plan.quick, log=log)
        if "health" in args.scenarios:
            attempts = 100_000 if plan.quick else 1_000_000
            result["health"] = run_health(stores=args.stores, attempts=attempts, log=log)
    finally:
        if args.keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["plan"] = {k: getattr(plan, k) for k in Plan.__slots__}
    result["machine"] = machine.describe(uvloop.run(postgres_version()))
    result["header"] = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *(argv or sys.argv[1:])]),
        "runs": plan.runs,
        "minutes": (time.monotonic() - started) / 60,
        "method": METHOD + notes,
        "background_busy_cores": {"before": round(background, 2), "after": _background_load()},
    }
    md, js = report.write(result, args.out)
    log(f"wrote {md} and {js}")
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
