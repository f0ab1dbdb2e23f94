"""`webhooks serve --workers N`: N service processes behind one address, and their supervisor.

One Python process is bound to about one core (the delivery client alone is CPU-bound), so
`serve` with `WEBHOOKS_WORKERS` > 1 runs that many worker processes. The parent — the
supervisor — does no delivery work:

  * it checks the settings, applies the migrations once, binds the HTTP address and hands
    the listening socket to every worker, so the API, `/healthz` and `/metrics` stay one
    address (the kernel spreads the connections over the workers, as gunicorn's workers
    share theirs);
  * each worker (`python -m dispatcher.workers`) is the whole service — a consumer-group
    member with its own HTTP client, scheduler, poller and store connection — and a replica
    of its own (`WEBHOOKS_INSTANCE_ID` + `-wK`, stable across restarts), so the limits shared
    across replicas (an endpoint's `rateLimit` and in-flight cap, the replay and API rates)
    are split over the workers like over any replicas (engine.replicas);
  * the workers' metrics add up through prometheus_client's multiprocess mode, in a private
    directory the supervisor creates and removes: whichever worker answers `/metrics` serves
    the sum (counters of a restarted worker's predecessor included; gauges over the live
    workers);
  * a worker that dies is logged and started again, after a back-off that doubles while it
    keeps dying young; the dead worker's leases are taken over when they expire, like a
    crashed replica's;
  * SIGTERM (or SIGINT) is passed to every worker, each drains within
    WEBHOOKS_SHUTDOWN_TIMEOUT (`Service.shutdown`); one still running after it, plus the
    grace to leave the group and close, is killed. The supervisor exits 0 when every worker
    stopped by itself. A worker whose supervisor vanished (SIGKILL) sees its lifeline pipe
    close and shuts down the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dispatcher import logs
from dispatcher.service import Service, WorkerSeat, instance_id
from dispatcher.settings import Settings
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox

log = logging.getLogger(__name__)

RESTART_DELAY = 0.5  # seconds before restarting a dead worker; doubles while it dies young
RESTART_DELAY_MAX = 30.0
STEADY = 30.0  # a worker that ran this long before dying is restarted at the first delay
CLOSE_GRACE = 10.0  # beyond the shutdown deadline: leave the group, close the store
BACKLOG = 1024


@dataclass(slots=True)
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    delay: float = RESTART_DELAY
    restarts: int = 0
    lifeline: int = -1  # the supervisor's write end; closing it orphans the worker
    watch: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class _Shared:
    """What every worker is handed: the listening socket and the metrics directory."""

    listener: socket.socket
    metrics_dir: Path


class Supervisor:
    """Starts `settings.workers` workers and keeps them running until `stop()`."""

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self._environ = dict(environ)
        self._stop = asyncio.Event()
        self._workers = [_Worker(index) for index in range(settings.workers)]
        self._base_id = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        settings = self.settings
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        await _migrate(settings)
        listener = _listen(settings.http_host, settings.http_port)
        metrics_dir = Path(tempfile.mkdtemp(prefix="webhooks-metrics-"))
        shared = _Shared(listener, metrics_dir)
        port = listener.getsockname()[1]
        log.info(
            "supervisor started",
            extra={"url": f"http://{settings.http_host}:{port}", "workers": settings.workers},
        )
        try:
            for worker in self._workers:
                await self._start(worker, shared)
            await self._stop.wait()
            return await self._shutdown()
        finally:
            for worker in self._workers:
                if worker.watch is not None:
                    worker.watch.cancel()
                _close(worker.lifeline)
            listener.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)
            log.info("supervisor stopped")

    async def _start(self, worker: _Worker, shared: _Shared) -> None:
        read_end, write_end = os.pipe()
        listener = shared.listener.fileno()
        env = {
            **self._environ,
            "WEBHOOKS_WORKERS": "1",
            "WEBHOOKS_INSTANCE_ID": f"{self._base_id}-w{worker.index}",
            "PROMETHEUS_MULTIPROC_DIR": str(shared.metrics_dir),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "dispatcher.workers",
                str(listener),
                str(read_end),
                env=env,
                pass_fds=(listener, read_end),
                stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        worker.process = process
        worker.lifeline = write_end
        worker.started = time.monotonic()
        log.info(
            "worker started",
            extra={"worker": worker.index, "pid": process.pid, "restarts": worker.restarts},
        )
        worker.watch = asyncio.create_task(
            self._watch(worker, process, shared), name=f"worker-{worker.index}"
        )

    async def _watch(
        self, worker: _Worker, process: asyncio.subprocess.Process, shared: _Shared
    ) -> None:
        """Wait for the worker to exit; unless stopping, log it and start it again."""
        code = await process.wait()
        _forget(shared.metrics_dir, process.pid)
        _close(worker.lifeline)
        worker.lifeline = -1
        if self._stop.is_set():
            return
        lived = time.monotonic() - worker.started
        worker.delay = RESTART_DELAY if lived >= STEADY else worker.delay
        log.error(
            "worker died; restarting it",
            extra={
                "worker": worker.index,
                "pid": process.pid,
                "exit": _describe(code),
                "restart_in_s": worker.delay,
            },
        )
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), worker.delay)
            if self._stop.is_set():
                return
            worker.delay = min(worker.delay * 2, RESTART_DELAY_MAX)
            worker.restarts += 1
            try:
                await self._start(worker, shared)
            except OSError:  # no process could be made (out of memory, pids): try again
                log.exception("cannot start a worker", extra={"worker": worker.index})
                continue
            return

    async def _shutdown(self) -> int:
        """SIGTERM every worker; each drains within WEBHOOKS_SHUTDOWN_TIMEOUT. Kill any still
        running after that and CLOSE_GRACE. 0 when every worker stopped by itself."""
        deadline = self.settings.shutdown_timeout + CLOSE_GRACE
        log.info("stopping workers", extra={"deadline_s": self.settings.shutdown_timeout})
        running = [w.process for w in self._workers if w.process and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(process.wait()) for process in running]
        if waits:
            await asyncio.wait(waits, timeout=deadline)
        killed = 0
        for process in running:
            if process.returncode is None:
                killed += 1
                log.error("worker did not stop in time; killing it", extra={"pid": process.pid})
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        # A worker still starting up when SIGTERM came had not installed its handler yet
        # and ended by the signal: it had nothing in flight, so that is a clean stop too.
        clean = (0, -signal.SIGTERM)
        codes = [process.returncode for process in running]
        return 0 if killed == 0 and all(code in clean for code in codes) else 1


async def serve(settings: Settings, environ: Mapping[str, str]) -> int:
    """`webhooks serve`: the service in this process, or a supervisor of its workers."""
    if settings.workers == 1:
        await Service(settings).run()
        return 0
    return await Supervisor(settings, environ).run()


async def _migrate(settings: Settings) -> None:
    """Once, before any worker starts (they would otherwise race to apply them)."""
    box = SecretBox.from_setting(settings.encryption_key)
    async with open_store(settings.database_url, secret_box=box) as store:
        applied = await store.migrate()
    if applied:
        log.info("migrations applied", extra={"versions": applied})


def _listen(host: str, port: int) -> socket.socket:
    from dispatcher.errors import ConfigurationError

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as exc:  # a busy port, an address not on this host
        raise ConfigurationError(
            f"cannot listen on {host}:{port} (WEBHOOKS_HTTP_HOST / WEBHOOKS_HTTP_PORT): "
            f"{exc.strerror or exc}"
        ) from None
    listener.listen(BACKLOG)
    listener.setblocking(False)
    return listener


def _forget(metrics_dir: Path, pid: int) -> None:
    """A dead worker's live gauges no longer count (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(metrics_dir))  # type: ignore[no-untyped-call]


def _close(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# -- a worker process -------------------------------------------------------------------


def _worker_main(argv: list[str]) -> int:
    """`python -m dispatcher.workers LISTENER_FD LIFELINE_FD`, started by the supervisor with
    its settings (and this worker's WEBHOOKS_INSTANCE_ID) in the environment."""
    from dispatcher.ops.cli import run_async

    listener_fd, lifeline = (int(arg) for arg in argv)
    settings = Settings.from_env(os.environ)
    logs.configure(settings.log_level)
    seat = WorkerSeat(
        listener=socket.socket(fileno=listener_fd),
        metrics_dir=Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]),
        lifeline=lifeline,
    )
    log.info("worker running", extra={"instance": instance_id(settings)})

    async def main() -> int:
        await Service(settings, seat=seat).run()
        return 0

    return run_async(main())


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
