"""The composition root: build every component, run the long-lived loops, shut down in order.

Resources are entered in dependency order on one AsyncExitStack (store → delivery client →
scheduler → consumer → HTTP server) and closed in reverse; the long-lived loops run in one
TaskGroup. Graceful shutdown on SIGTERM/SIGINT is `Service.shutdown`, one ordered procedure
with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from aiohttp import web

from dispatcher import __version__, tracing
from dispatcher.api.app import create_app
from dispatcher.api.context import ApiContext
from dispatcher.clock import new_id, utcnow
from dispatcher.core.catalog import Catalog
from dispatcher.core.destinations import DestinationPolicy
from dispatcher.core.models import DisabledReason, Endpoint
from dispatcher.core.operational import endpoint_disabled_event
from dispatcher.core.policy import SchedulerConfig
from dispatcher.core.retry import RetryPolicy
from dispatcher.engine.consumer import EventConsumer
from dispatcher.engine.delivery.client import DeliveryClient
from dispatcher.engine.directory import Directory, firehose_authoriser
from dispatcher.engine.housekeeping import Housekeeper
from dispatcher.engine.intake import Intake
from dispatcher.engine.poller import Poller
from dispatcher.engine.replay import ReplayRunner
from dispatcher.engine.replicas import Replicas
from dispatcher.engine.scheduler import Scheduler
from dispatcher.errors import ConfigurationError
from dispatcher.metrics import Metrics
from dispatcher.settings import Settings
from dispatcher.store import Store, open_store
from dispatcher.store.secretbox import SecretBox

log = logging.getLogger(__name__)


def instance_id(settings: Settings) -> str:
    return settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"


def scheduler_config(settings: Settings) -> SchedulerConfig:
    return SchedulerConfig(
        policy=RetryPolicy(delays=settings.retry_schedule, jitter=settings.retry_jitter),
        lease=settings.lease,
        poll_interval=settings.poll_interval,
        delivery_timeout=settings.delivery_timeout,
        max_in_flight=settings.max_in_flight,
        max_in_flight_per_endpoint=settings.max_in_flight_per_endpoint,
        breaker_threshold=settings.breaker_threshold,
        breaker_cooldown=settings.breaker_cooldown,
        instance_id=instance_id(settings),
        disable_after=settings.disable_after,
        retention=settings.retention,
    )


@dataclass(slots=True)
class Running:
    """What a started service exposes (tests and `dev`/`demo` use it)."""

    url: str
    store: Store
    directory: Directory
    scheduler: Scheduler
    intake: Intake
    metrics: Metrics
    catalog: Catalog
    consumer: EventConsumer


class Service:
    def __init__(self, settings: Settings, *, secret_box: SecretBox | None = None) -> None:
        self.settings = settings
        self._secret_box = secret_box or SecretBox.from_setting(settings.encryption_key)
        self._stop = asyncio.Event()
        self.started = asyncio.Event()
        self.running: Running | None = None

    def stop(self) -> None:
        """Ask for a graceful shutdown (what SIGTERM does)."""
        self._stop.set()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        settings = self.settings
        async with AsyncExitStack() as stack:
            # First in, last out: the spans of the whole shutdown are flushed at the very end.
            await stack.enter_async_context(
                tracing.installed(
                    settings.tracing,
                    propagate=settings.trace_propagation,
                    consumer_group=settings.kafka_group,
                    version=__version__,
                )
            )
            store = await stack.enter_async_context(
                open_store(settings.database_url, secret_box=self._secret_box)
            )
            applied = await store.migrate()
            if applied:
                log.info("migrations applied", extra={"versions": applied})
            catalog = Catalog.load()
            metrics = Metrics.create()
            # API: firehoses are authorised at fan-out against the keys table.
            directory = Directory(store, unauthorised_firehoses=firehose_authoriser(store))
            await directory.refresh()
            client = await stack.enter_async_context(
                DeliveryClient(
                    policy=DestinationPolicy(allow=settings.allow_private_networks),
                    timeout=settings.delivery_timeout,
                    user_agent=f"layers-webhooks/{__version__}",
                    max_connections=settings.max_in_flight,
                )
            )
            # The limits that hold across replicas are shared by those alive (engine.replicas).
            replicas = Replicas(store, instance_id=instance_id(settings), clock=utcnow)
            await replicas.beat()
            scheduler = Scheduler(
                store=store,
                client=client,
                directory=directory,
                config=scheduler_config(settings),
                metrics=metrics,
                on_endpoint_disabled=self._announce_disabled,
                replicas=replicas,
            )
            config = scheduler_config(settings)
            poller = Poller(
                store=store, scheduler=scheduler, config=config, metrics=metrics, clock=utcnow
            )
            housekeeper = Housekeeper(
                store=store,
                directory=directory,
                scheduler=scheduler,
                config=config,
                metrics=metrics,
                clock=utcnow,
            )
            intake = Intake(
                store=store,
                directory=directory,
                scheduler=scheduler,
                metrics=metrics,
                lease_owner=instance_id(settings),
                lease=settings.lease,
            )
            self._intake = intake
            consumer = await stack.enter_async_context(
                EventConsumer(
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    topics=settings.kafka_topics,
                    group=settings.kafka_group,
                    session_timeout=settings.kafka_session_timeout,
                    batch_size=settings.kafka_batch_size,
                    max_event_bytes=settings.max_event_bytes,
                    catalog=catalog,
                    intake=intake,
                    scheduler=scheduler,
                    metrics=metrics,
                )
            )
            # API: bulk replay jobs drain at WEBHOOKS_REPLAY_RATE; the poller is woken for them.
            replays = ReplayRunner(
                store,
                rate=settings.replay_rate,
                on_replayed=lambda count: _replayed(scheduler, metrics, count),
                replicas=replicas,
            )
            context = ApiContext(
                settings=settings,
                store=store,
                directory=directory,
                scheduler=scheduler,
                intake=intake,
                catalog=catalog,
                metrics=metrics,
                kafka_status=consumer.status,
                replays=replays,
                replicas=replicas,
            )
            runner = web.AppRunner(create_app(context), access_log=None, handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, settings.http_host, settings.http_port)
            try:
                await site.start()
            except OSError as exc:  # a busy port, an address not on this host
                raise ConfigurationError(
                    f"cannot listen on {settings.http_host}:{settings.http_port} "
                    f"(WEBHOOKS_HTTP_HOST / WEBHOOKS_HTTP_PORT): {exc.strerror or exc}"
                ) from None
            port = _bound_port(runner, settings.http_port)
            url = f"http://{settings.http_host}:{port}"
            self.running = Running(
                url=url,
                store=store,
                directory=directory,
                scheduler=scheduler,
                intake=intake,
                metrics=metrics,
                catalog=catalog,
                consumer=consumer,
            )
            if install_signal_handlers:
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, self.stop)
            log.info("service started", extra={"url": url, "instance": instance_id(settings)})
            self.started.set()
            async with asyncio.TaskGroup() as group:
                loops = [
                    group.create_task(consumer.run(), name="consumer"),
                    group.create_task(poller.run(), name="poller"),
                    group.create_task(scheduler.recorder.run(), name="recorder"),
                    group.create_task(housekeeper.run(), name="housekeeping"),
                    group.create_task(directory.run(), name="directory"),
                    group.create_task(replays.run(), name="replays"),  # API: bulk replays
                    group.create_task(replicas.run(), name="replicas"),
                ]
                await self._stop.wait()
                await self._shutdown(consumer, scheduler, loops)
            await replicas.leave()
        log.info("service stopped")

    async def _shutdown(
        self,
        consumer: EventConsumer,
        scheduler: Scheduler,
        loops: list[asyncio.Task[None]],
    ) -> None:
        """Graceful shutdown, in order, within WEBHOOKS_SHUTDOWN_TIMEOUT."""
        deadline = time.monotonic() + self.settings.shutdown_timeout
        log.info("shutting down", extra={"deadline_s": self.settings.shutdown_timeout})
        consumer_loop, poller = loops[0], loops[1]
        # 1. Stop fetching: the batch in progress is stored and its offsets committed.
        consumer.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(consumer_loop), deadline - time.monotonic())
        consumer_loop.cancel()
        # 2. Stop claiming due work.
        poller.cancel()
        # 3. Drain in-flight attempts until the deadline; queued work goes back to the
        #    store unattempted; every result is flushed. Unfinished attempts keep their
        #    lease and are replayed by whichever replica claims them next.
        await scheduler.drain(deadline)
        # 4. Stop the remaining loops; the exit stack then closes the HTTP server, the
        #    consumer (leaving the group), the delivery client and the store, and last
        #    flushes the buffered spans to the trace exporter (when tracing is on).
        for task in loops:
            task.cancel()

    async def _announce_disabled(self, endpoint: Endpoint, reason: DisabledReason) -> None:
        """Emit `webhook.endpoint.disabled` to the org's endpoints subscribed to it."""
        event = endpoint_disabled_event(endpoint, reason, event_id=new_id("evt"), now=utcnow())
        await self._intake.ingest([event])
        if self.running is not None:
            self.running.metrics.operational_events.labels(event.type).inc()


def _replayed(scheduler: Scheduler, metrics: Metrics, count: int) -> None:
    """API: a replay job put `count` deliveries back on the ladder; claim them now."""
    metrics.replays.labels("bulk").inc(count)
    scheduler.poke()


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
