"""Infrastructure faults: PostgreSQL restarted, the broker unreachable, the disk full.

None of them is bad input (docs/design.md §4): the service must pause and retry — never crash,
never dead-letter — and deliver everything once the fault is gone.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from contextlib import AsyncExitStack
from pathlib import Path

from chaos import checks
from chaos.crashes import trickle
from chaos.endpoints import accept
from chaos.harness import Report, Rig, service_env
from chaos.postgres import PostgresUnavailableError, ThrowawayDatabase, find_cluster, wait_up
from chaos.proxy import ProxiedBroker, ProxyMode
from chaos.scenarios import Context
from chaos.tmpfs import Tmpfs, TmpfsUnavailableError

NAMES = ["a", "b"]
# Restart 1 shuts down cleanly; later ones stop without a checkpoint, severing sessions
# mid-transaction, and the start crash-recovers (what a failover looks like to clients).
PG_MODES = ("fast", "immediate", "immediate")
RESTART_BURST = 50  # events published as each restart begins
DISK = 16 << 20  # bytes of tmpfs for the SQLite store
# Store errors per second a paused service may rack up against a store that keeps failing:
# the consumer backs off exponentially, the flusher every 0.5 s, the poller every poll
# interval (100 ms) — well under this bound, unless something retries in a hot loop.
PACED_RETRIES = 25.0


async def _start(rig: Rig, *, slow: float = 0.05) -> None:
    """Endpoints `a` (answers at once) and `b` (after `slow` seconds); the service running."""
    rig.endpoint("a", accept())
    rig.endpoint("b", accept(slow))
    await rig.provision()
    rig.service.start()
    await rig.service.wait_healthy()


async def _finish(rig: Rig, report: Report, within: float) -> None:
    """Everything delivered after the fault; a clean exit; no crash, loss or dead letter.

    A service that died is a failure (`never_crashed`), and it is then started once more, so
    the ledger still tells whether anything was lost beyond the crash itself."""
    done = await rig.wait_delivered(NAMES, within)
    if not rig.service.alive:
        report.note("the service died: started again once to see whether the crash lost anything")
        report.notes.extend(rig.service.log_tail(8))
        rig.service.start()
        await rig.service.wait_healthy()
        done = await rig.wait_delivered(NAMES, within)
    report.check(done, f"after the fault every pair arrived within {within:g}s")
    errors = await checks.store_errors(rig)
    report.note(f"store errors the service counted, by operation: {errors or 'none'}")
    await checks.graceful_exit(rig, report)
    checks.never_crashed(rig, report)
    await checks.delivered(rig, report, NAMES)
    await checks.no_dead_letters(rig, report)


async def pg_restart(ctx: Context, report: Report) -> None:
    """Restart the PostgreSQL cluster under a running service (`pg_restarts` times, fast then
    immediate, at random moments while events stream in and a burst is being ingested): it
    keeps running, creates no dead letter, and delivers every pair once PostgreSQL is back;
    the cluster is confirmed up before returning."""
    params, rng = ctx.params, ctx.rng("pg-restart")
    try:
        cluster = await find_cluster(ctx.postgres_url)
    except PostgresUnavailableError as exc:
        report.skipped = f"PostgreSQL cannot be restarted here: {exc}"
        return
    async with AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(ThrowawayDatabase(ctx.postgres_url))
        except PostgresUnavailableError as exc:
            report.skipped = f"PostgreSQL unavailable: {exc}"
            return
        stack.push_async_callback(cluster.ensure_running)  # before the drop, after the rig
        rig = await stack.enter_async_context(
            Rig("pg-restart", ctx.run_dir, service_env(url, ctx.bootstrap))
        )
        await _start(rig)
        span = params.pg_restarts * 8.0
        publishing = asyncio.create_task(trickle(rig, params.pg_events, span, rng))
        try:
            for number in range(1, params.pg_restarts + 1):
                await asyncio.sleep(rng.uniform(1.0, 5.0))
                mode = PG_MODES[(number - 1) % len(PG_MODES)]
                burst = asyncio.create_task(rig.publish(RESTART_BURST))
                took = await cluster.restart(mode)
                back = await wait_up(ctx.postgres_url, 30.0)
                await burst
                report.check(
                    back is not None,
                    f"restart {number} ({mode}, during a burst of {RESTART_BURST} events): took "
                    f"{took:.1f}s, PostgreSQL answered again {back or 0:.1f}s later",
                )
            async with asyncio.timeout(params.converge):
                await publishing
        finally:
            publishing.cancel()
        await _finish(rig, report, params.converge)
    back = await wait_up(ctx.postgres_url, 30.0)
    report.check(back is not None, "PostgreSQL is running when the scenario ends")


async def broker_outage(ctx: Context, report: Report) -> None:
    """Cut the broker off for `outage` seconds (half black-holed, half refused) while
    deliveries flow and records wait unconsumed: the service keeps running, keeps delivering
    what it stored, reports not-ready, and after the restore consumes and delivers it all."""
    params = ctx.params
    async with AsyncExitStack() as stack:
        broker = await stack.enter_async_context(
            ProxiedBroker(log_path=ctx.run_dir / "tansu-proxied.log")
        )
        env = service_env(
            f"sqlite:///{ctx.run_dir / 'outage.db'}",
            broker.bootstrap_servers,
            WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT="4",
        )
        rig = await stack.enter_async_context(Rig("broker-outage", ctx.run_dir, env))
        await _start(rig)
        first = params.outage_events // 2
        await rig.publish(first)
        await rig.journal.wait_until(
            lambda: len(rig.journal.accepted_ids("a")) >= first // 4, params.converge
        )
        await rig.publish(params.outage_events // 4)  # the cut catches these in flight
        cut_at = time.monotonic()
        half = params.outage / 2
        await broker.proxy.cut(ProxyMode.BLACKHOLE)
        ready_dark = await checks.sample_while(rig.service.ready, seconds=half)
        await broker.proxy.cut(ProxyMode.REFUSE)
        ready_refused = await checks.sample_while(rig.service.ready, seconds=params.outage - half)
        await broker.proxy.restore()
        restored_at = time.monotonic()
        during = sum(1 for a in rig.journal.arrivals if cut_at <= a.at < restored_at)
        report.note(f"outage {params.outage:g}s: {during} deliveries arrived during it")
        report.note(f"proxy: {broker.proxy.stats}")
        report.check(rig.service.alive, "the service kept running through the outage")
        ready = ready_dark[0] + ready_refused[0]
        samples = ready_dark[1] + ready_refused[1]
        report.check(
            ready < samples,
            f"/readyz reported not ready during the outage "
            f"({samples - ready} of {samples} samples)",
        )
        back = await _wait_ready(rig, params.converge)
        report.check(back is not None, f"/readyz ready again {back or 0:.1f}s after the restore")
        await rig.publish(params.outage_events - first - params.outage_events // 4)
        await _finish(rig, report, params.converge)


async def _wait_ready(rig: Rig, within: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await rig.service.ready():
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def disk_full(ctx: Context, report: Report) -> None:
    """Run the SQLite store on a small tmpfs and fill it mid-run: the store's writes fail
    (SQLITE_FULL), the service pauses and retries — no crash, no dead letter — and once the
    space is freed every pair is delivered. Skipped where a tmpfs cannot be mounted."""
    params = ctx.params
    async with AsyncExitStack() as stack:
        disk = Tmpfs(DISK)
        try:
            path = await stack.enter_async_context(disk)
        except TmpfsUnavailableError as exc:
            report.skipped = f"not feasible here: {exc}"
            return
        env = service_env(
            f"sqlite:///{path / 'webhooks.db'}",
            ctx.bootstrap,
            # A 3 s lease: unrecorded attempts become claimable again while the disk is full.
            WEBHOOKS_LEASE="3s",
            # `b` (0.25 s a request, 8 at a time) is still receiving when the disk fills, so
            # attempt results meet the full disk too, not only the consumer's ingest.
            WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT="8",
        )
        # Runs before the unmount: the store is kept with the run for a post-mortem.
        stack.push_async_callback(asyncio.to_thread, _keep_store, path, ctx.run_dir)
        rig = await stack.enter_async_context(Rig("disk-full", ctx.run_dir, env))
        await _start(rig, slow=0.25)
        third = params.disk_events // 3
        await rig.publish(third)
        await rig.journal.wait_until(
            lambda: len(rig.journal.accepted_ids("b")) >= 4, params.converge
        )
        in_flight = len(rig.journal.accepted_ids("b"))
        filled = disk.fill()
        before = sum((await checks.store_errors(rig)).values())
        felt = False
        for _ in range(20):  # publish in small batches until the store reports the fault
            await rig.publish(max(1, third // 5))
            await asyncio.sleep(0.5)
            if sum((await checks.store_errors(rig)).values()) > before:
                felt = True
                break
        report.check(
            felt,
            f"the full disk reached the store: its writes failed "
            f"(filled {filled >> 10} KiB, {disk.available()} bytes left)",
        )
        held_from = sum((await checks.store_errors(rig)).values())

        async def alive() -> bool:
            return rig.service.alive

        alive_samples = await checks.sample_while(alive, seconds=params.disk_hold)
        report.check(
            alive_samples[0] == alive_samples[1],
            f"the service kept running while the disk stayed full for {params.disk_hold:g}s",
        )
        rate = (sum((await checks.store_errors(rig)).values()) - held_from) / params.disk_hold
        report.check(
            rate <= PACED_RETRIES,
            f"retries against the full store are paced: {rate:.0f} store errors/s while it "
            f"stayed full (at most {PACED_RETRIES:g}/s: back-off, not a hot loop)",
        )
        failed = await checks.store_errors(rig)
        recorded = failed.get("record", 0.0) + failed.get("flush", 0.0)
        report.check(
            recorded > 0,
            f"attempt results met the full disk too and were kept for a retry "
            f"({recorded:.0f} failed writes; b had accepted {in_flight} of {third} at the fill)",
        )
        disk.free()
        left = params.disk_events - len(rig.published())
        if left > 0:
            await rig.publish(left)
        await _finish(rig, report, params.converge)


def _keep_store(mounted: Path, run_dir: Path) -> None:
    for file in mounted.glob("webhooks.db*"):
        shutil.copyfile(file, run_dir / f"disk-full-{file.name}")
