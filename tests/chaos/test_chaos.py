"""The chaos scenarios in their reduced form (`python -m chaos --reduced`), guarded by CI.

Each test runs one scenario of chaos/ against the session's Tansu broker with the real
service as a child process; its report (every check, met or not, and the seed to replay
it) is the assertion message. The PostgreSQL-restart and disk-full scenarios stay in
`make chaos`: restarting the shared cluster or mounting a tmpfs is not something a test
suite should do to the machine it runs on.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chaos.scenarios import REDUCED, Context, Result, registry, run_scenario
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

# Seconds per scenario: below pytest's 120 s timeout, so a hang is reported by the harness
# (and its processes stopped by the scenario's own cleanup) rather than killed by pytest.
BUDGET = 100.0


async def run(name: str, tmp_path: Path, bootstrap: str) -> Result:
    (scenario,) = [s for s in registry() if s.name == name]
    seed = random.SystemRandom().randrange(1 << 31)
    ctx = Context(
        run_dir=tmp_path, bootstrap=bootstrap, postgres_url=POSTGRES_URL, params=REDUCED, seed=seed
    )
    return await run_scenario(scenario, ctx, budget=BUDGET)


def explain(result: Result, seed_hint: str) -> str:
    lines = [f"{result.verdict} {result.name} in {result.seconds:.1f}s ({seed_hint})"]
    lines += [f"  {'ok  ' if c.ok else 'FAIL'} {c.what}" for c in result.report.checks]
    lines += [f"  · {note}" for note in result.report.notes]
    return "\n".join(lines)


async def check(name: str, tmp_path: Path, bootstrap: str) -> Result:
    result = await run(name, tmp_path, bootstrap)
    hint = f"replay: python -m chaos --reduced --only {name} --seed {result.seed}"
    assert result.report.skipped is None, explain(result, hint)
    assert result.report.ok, explain(result, hint)
    return result


async def test_sigkill_at_random_moments_loses_no_pair(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Three SIGKILLs at random moments while events stream in, then a restart: every
    (event, endpoint) pair is accepted with a valid signature and the published bytes, the
    store holds exactly one succeeded delivery per pair, no dead letter, and SIGTERM exits 0."""
    await check("sigkill", tmp_path, kafka_bootstrap)


async def test_sigterm_mid_burst_drains_then_a_restart_finishes(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """SIGTERM mid-burst exits 0 within the shutdown timeout without cutting an in-flight
    attempt off; the restart delivers the rest — every pair accepted, one succeeded delivery
    row per pair, no dead letter (redeliveries after the drain are reported, not failed: the
    recorder race that causes them is reproduced by `python -m chaos --only
    sigterm-slow-store`)."""
    await check("sigterm", tmp_path, kafka_bootstrap)


async def test_broker_unreachable_for_seconds_pauses_then_delivers_everything(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """With the broker cut off through a proxy for 5 s (black-holed, then refused), the service
    keeps running and reports not ready; after the restore every pair, from before and after
    the outage, is delivered once per pair in the store, with no dead letter."""
    await check("broker-outage", tmp_path, kafka_bootstrap)


async def test_endpoint_zoo_ends_every_endpoint_as_specified(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Timeout, slow drip, huge body, reset, 429 Retry-After, 503-then-200, 410 and redirect
    endpoints each end exactly as specified (status, attempt ladder, arrivals per event); the
    accepting ones receive every pair; 410 disables and is announced once; no redirect is
    followed; nothing unknown, unverified or corrupted arrives anywhere."""
    await check("endpoint-zoo", tmp_path, kafka_bootstrap)
