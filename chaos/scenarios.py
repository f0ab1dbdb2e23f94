"""The scenarios, their parameters (full and reduced), and the runner that bounds each one.

Every scenario is `async def run(ctx, report)`: it builds its own `Rig`, injects its fault,
and states each expectation as a check in `report`. `run_scenario` bounds it by a budget
(a hang is a failure, not a stuck harness) and turns any exception into a failed check; the
scenario's own try/finally blocks have already stopped its processes and restored what it
broke (PostgreSQL running, the tmpfs unmounted) by the time the result is printed.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.harness import HarnessError, Report


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    """How hard each scenario pushes. `FULL` for `python -m chaos`, `REDUCED` for CI."""

    kills: int
    kill_events: int
    kill_delay: tuple[float, float]  # seconds after a life's first delivery until its SIGKILL
    term_events: int
    pg_events: int
    pg_restarts: int
    outage: float  # seconds the broker is unreachable
    outage_events: int
    zoo_events: int
    huge_bytes: int
    disk_events: int
    disk_hold: float  # seconds the disk stays full once the store has felt it
    converge: float  # bound on "everything delivered" after the last fault
    # A graceful shutdown must redeliver nothing (every drained attempt recorded). The
    # recorder race (a shutdown flush that finds the buffer already taken by the loop's own
    # flush, which is then cancelled) makes that fail at random, so the CI-sized run reports
    # redeliveries instead of failing on them; `sigterm-slow-store` reproduces the race
    # deterministically. Set it back to True in REDUCED once the recorder is fixed.
    exact_drain: bool = True


FULL = Params(
    kills=20,
    kill_events=1200,
    kill_delay=(0.0, 2.0),
    term_events=400,
    pg_events=600,
    pg_restarts=3,
    outage=30.0,
    outage_events=400,
    zoo_events=30,
    huge_bytes=40 << 20,
    disk_events=300,
    disk_hold=10.0,
    converge=120.0,
)

REDUCED = Params(
    kills=3,
    kill_events=150,
    kill_delay=(0.0, 1.0),
    term_events=96,
    pg_events=150,
    pg_restarts=1,
    outage=5.0,
    outage_events=100,
    zoo_events=8,
    huge_bytes=20 << 20,
    disk_events=80,
    disk_hold=4.0,  # past the 3 s lease: the poller then retries its claims too
    converge=60.0,
    exact_drain=True,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What every scenario is given: where to write, what to use, how hard to push."""

    run_dir: Path
    bootstrap: str  # the shared Tansu broker (`broker-outage` starts its own)
    postgres_url: str  # an admin URL: throwaway databases are created through it
    params: Params
    seed: int

    def rng(self, name: str) -> random.Random:
        """A generator per scenario, so `--only NAME --seed N` replays the same faults."""
        return random.Random(f"{self.seed}:{name}")  # noqa: S311 - fault timing, not secrets


Run = Callable[[Context, Report], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    run: Run
    budget: Callable[[Params], float]  # seconds before the scenario counts as hung
    reduced: bool = True  # part of `--reduced` (otherwise only when named with --only)


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    title: str
    report: Report
    seconds: float
    seed: int

    @property
    def verdict(self) -> str:
        if self.report.skipped is not None:
            return "SKIP"
        return "PASS" if self.report.ok else "FAIL"


async def run_scenario(scenario: Scenario, ctx: Context, *, budget: float | None = None) -> Result:
    """Run one scenario within its budget (or `budget` seconds, if smaller)."""
    report = Report()
    budget = min(scenario.budget(ctx.params), budget or float("inf"))
    started = time.monotonic()
    try:
        async with asyncio.timeout(budget):
            await scenario.run(ctx, report)
    except TimeoutError:
        report.check(False, f"finished within its budget of {budget:.0f}s (it hung)")
    except HarnessError as exc:
        report.check(False, f"harness: {exc}")
    except Exception as exc:  # noqa: BLE001 - any crash is this scenario's failure line
        report.check(False, f"unexpected {type(exc).__name__}: {exc}")
        report.notes.extend(traceback.format_exc().rstrip().splitlines()[-8:])
    if report.skipped is None and not report.checks:
        report.check(False, "the scenario stated no expectation")
    return Result(scenario.name, scenario.title, report, time.monotonic() - started, ctx.seed)


def registry() -> list[Scenario]:
    """Every scenario, in the order `python -m chaos` runs them."""
    from chaos import crashes, outages, replicas, zoo

    return [
        Scenario(
            "sigkill",
            "SIGKILL the service at random moments, restart it each time",
            crashes.sigkill,
            lambda p: 60 + p.kills * (p.kill_delay[1] + 25) + p.converge,
        ),
        Scenario(
            "sigterm",
            "SIGTERM mid-burst: a graceful exit, then a restart finishes the rest",
            crashes.sigterm,
            lambda p: 90 + p.converge,
        ),
        Scenario(
            "sigterm-rebalance",
            "SIGTERM while the consumer group rebalances around a SIGKILLed member",
            crashes.sigterm_rebalance,
            lambda p: 150 + 2 * p.converge,
            reduced=False,  # about 50 s of waiting on a 20 s session: full runs only
        ),
        Scenario(
            "sigterm-slow-store",
            "SIGTERM while the last results are written to a slow store",
            crashes.sigterm_slow_store,
            lambda p: 90 + 2 * p.converge,
            reduced=False,  # a precise race, not a sampled fault: full runs only
        ),
        Scenario(
            "pg-restart",
            "PostgreSQL restarted mid-run under a PostgreSQL store",
            outages.pg_restart,
            lambda p: 90 + p.pg_restarts * 40 + p.converge,
        ),
        Scenario(
            "replicas",
            "three replicas on PostgreSQL, killed and restarted in turn, PostgreSQL restarted",
            replicas.replicas,
            lambda p: 120 + (p.pg_restarts + 1) * 40 + 2 * p.converge,
            reduced=False,  # three processes and a PostgreSQL restart: full runs only
        ),
        Scenario(
            "broker-outage",
            "the broker unreachable through a proxy, then restored",
            outages.broker_outage,
            lambda p: 90 + p.outage + p.converge,
        ),
        Scenario(
            "endpoint-zoo",
            "endpoints that time out, drip, flood, reset, throttle, recover, go, redirect",
            zoo.endpoint_zoo,
            lambda p: 60 + p.converge,
        ),
        Scenario(
            "disk-full",
            "the SQLite store's disk fills up mid-run, then space returns",
            outages.disk_full,
            lambda p: 90 + p.disk_hold + p.converge,
        ),
    ]
