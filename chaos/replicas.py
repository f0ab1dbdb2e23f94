"""Replicas: three `webhooks serve` processes on one PostgreSQL, killed and restarted in a
loop while events stream in, with a PostgreSQL restart in the middle."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from chaos import checks
from chaos.crashes import trickle
from chaos.endpoints import accept
from chaos.harness import Report, Rig, ServiceProcess, service_env
from chaos.postgres import PostgresUnavailableError, ThrowawayDatabase, find_cluster, wait_up
from chaos.scenarios import Context
from devtools.broker import free_port

NAMES = ["a", "b"]
REPLICAS = 3
PARTITIONS = 6


async def replicas(ctx: Context, report: Report) -> None:
    """Three replicas in one group over a six-partition topic; each round SIGKILLs a random
    replica and starts it again a moment later; the middle round also restarts PostgreSQL
    (immediate). Every pair arrives, exactly one delivery row per pair, no process exits on
    its own, every replica exits cleanly on SIGTERM at the end."""
    params, rng = ctx.params, ctx.rng("replicas")
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
        stack.push_async_callback(cluster.ensure_running)
        env = service_env(url, ctx.bootstrap, WEBHOOKS_LEASE="4s", WEBHOOKS_INSTANCE_ID="r0")
        admin = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap)
        await admin.start()
        try:
            topic = NewTopic(env["WEBHOOKS_KAFKA_TOPICS"], PARTITIONS, 1)
            await admin.create_topics([topic])
        finally:
            await admin.close()
        rig = await stack.enter_async_context(Rig("replicas", ctx.run_dir, env))
        rig.endpoint("a", accept())
        rig.endpoint("b", accept(0.05))
        await rig.provision()
        others = [
            ServiceProcess(
                {**env, "WEBHOOKS_HTTP_PORT": str(free_port()), "WEBHOOKS_INSTANCE_ID": f"r{n}"},
                ctx.run_dir,
                f"replicas-r{n}",
            )
            for n in range(1, REPLICAS)
        ]
        for other in others:
            stack.callback(other.close)
        services = [rig.service, *others]
        for service in services:
            service.start()
        for service in services:
            await service.wait_healthy()
        rounds = max(2, params.pg_restarts + 1)
        publishing = asyncio.create_task(trickle(rig, params.pg_events, rounds * 6.0, rng))
        try:
            for number in range(1, rounds + 1):
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                victim = rng.choice(services)
                await victim.kill()
                if number == (rounds + 1) // 2:
                    took = await cluster.restart("immediate")
                    back = await wait_up(ctx.postgres_url, 30.0)
                    report.check(
                        back is not None,
                        f"round {number}: a replica SIGKILLed and PostgreSQL restarted "
                        f"(took {took:.1f}s, answered {back or 0:.1f}s later)",
                    )
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                victim.start()
                await victim.wait_healthy()
            async with asyncio.timeout(params.converge):
                await publishing
        finally:
            publishing.cancel()
        report.note(
            f"{rounds} replica kills over {REPLICAS} replicas, {len(rig.published())} events"
        )
        done = await rig.wait_delivered(NAMES, params.converge)
        report.check(done, f"after the last kill every pair arrived within {params.converge:g}s")
        for service in others:
            report.check(
                not service.unexpected_exits and service.alive,
                f"replica {service.env['WEBHOOKS_INSTANCE_ID']} never exited on its own",
            )
        checks.never_crashed(rig, report)
        await checks.delivered(rig, report, NAMES)
        await checks.no_dead_letters(rig, report)
        for service in others:
            code, _ = await service.terminate(within=30.0)
            report.check(code == 0, f"replica {service.env['WEBHOOKS_INSTANCE_ID']}: SIGTERM → 0")
        await checks.graceful_exit(rig, report)
    back = await wait_up(ctx.postgres_url, 30.0)
    report.check(back is not None, "PostgreSQL is running when the scenario ends")
