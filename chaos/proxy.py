"""A TCP proxy that can cut a broker off, and a Tansu broker reachable only through it.

Kafka clients connect to the address the broker ADVERTISES in its metadata, not to the
bootstrap address they were given; so `ProxiedBroker` starts its own Tansu listening on a
private port and advertising the proxy's port, and every client connection — bootstrap,
metadata, group coordinator, fetches — goes through the proxy.

`TcpProxy.cut(mode)`:
  * `REFUSE`    — stop listening (new connections get ECONNREFUSED) and reset every live one;
  * `BLACKHOLE` — keep listening but forward nothing: bytes in either direction are dropped
                  and new connections are accepted and left hanging (a silent partition).
`restore()` listens again on the same port; connections that lost bytes are reset (their
Kafka stream is no longer whole), so clients reconnect cleanly. `latency` delays every chunk
forwarded, in both directions (a slow network to a database, say). `corrupt = (marker,
replacement)` alters bytes in flight: every Kafka response from the broker is read whole (its
4-byte size prefix) and each occurrence of `marker` is replaced (same length), so a record
batch carrying the marker reaches the client with a CRC that no longer matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from devtools.broker import free_port, tansu_binary

HOST = "127.0.0.1"
_READ = 65536


class ProxyMode(StrEnum):
    UP = "up"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"


@dataclass(eq=False)
class _Link:
    downstream: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tainted: bool = False  # bytes were dropped: the stream is no longer whole

    def abort(self) -> None:
        for writer in (self.downstream, self.upstream):
            if writer is not None:
                writer.transport.abort()


@dataclass
class ProxyStats:
    accepted: int = 0
    held: int = 0  # connections accepted while black-holed
    reset: int = 0  # live connections reset by a cut or a restore
    dropped_bytes: int = 0
    corrupted: int = 0  # responses altered in flight (`TcpProxy.corrupt`)


@dataclass
class TcpProxy:
    """127.0.0.1:`port` → `target_port`. `async with TcpProxy(target_port=…) as proxy`."""

    target_port: int
    port: int = 0
    latency: float = 0.0  # seconds added to every chunk forwarded, each direction
    mode: ProxyMode = ProxyMode.UP
    corrupt: tuple[bytes, bytes] | None = None  # (marker, same-length replacement), responses
    stats: ProxyStats = field(default_factory=ProxyStats)
    _server: asyncio.Server | None = None
    _links: set[_Link] = field(default_factory=set)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self, mode: ProxyMode) -> None:
        """Take the broker away (`REFUSE` or `BLACKHOLE`) until `restore()`."""
        self.mode = mode
        if mode is ProxyMode.REFUSE:
            if self._server is not None:
                self._server.close()
                self._server = None
            self._reset(lambda link: True)

    async def restore(self) -> None:
        """Listen and forward again; reset connections that lost bytes or never had a peer."""
        self.mode = ProxyMode.UP
        self._reset(lambda link: link.tainted or link.upstream is None)
        if self._server is None:
            for _ in range(50):  # the port was ours a moment ago; retry a bind race briefly
                try:
                    await self._listen()
                    break
                except OSError:
                    await asyncio.sleep(0.1)

    def _reset(self, which: Callable[[_Link], bool]) -> None:
        for link in [link for link in self._links if which(link)]:
            link.abort()
            self._links.discard(link)
            self.stats.reset += 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(downstream=writer)
        self._links.add(link)
        self.stats.accepted += 1
        try:
            if self.mode is not ProxyMode.UP:
                self.stats.held += 1
                await self._pump(reader, None, link)  # read and drop until reset
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.target_port), 5.0
                )
            except (OSError, TimeoutError):
                return
            link.upstream = up_writer
            tasks = {
                asyncio.create_task(self._pump(reader, up_writer, link)),
                asyncio.create_task(
                    self._pump(up_reader, writer, link)
                    if self.corrupt is None
                    else self._pump_corrupting(up_reader, writer, self.corrupt)
                ),
            }
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter | None, link: _Link
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(_READ):
                if self.mode is not ProxyMode.UP or sink is None:
                    link.tainted = True
                    self.stats.dropped_bytes += len(data)
                    continue
                if self.latency:
                    await asyncio.sleep(self.latency)
                sink.write(data)
                await sink.drain()

    async def _pump_corrupting(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, corrupt: tuple[bytes, bytes]
    ) -> None:
        marker, replacement = corrupt
        if len(marker) != len(replacement):
            raise ValueError("the replacement must be as long as the marker")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                size = await source.readexactly(4)
                frame = await source.readexactly(int.from_bytes(size, "big", signed=True))
                if marker in frame:
                    self.stats.corrupted += 1
                    frame = frame.replace(marker, replacement)
                sink.write(size + frame)
                await sink.drain()

    async def __aenter__(self) -> Self:
        await self._listen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._reset(lambda link: True)
        await asyncio.sleep(0)  # let the connection handlers see their resets


class ProxiedBroker:
    """Tansu on a private port, advertised (and so only reachable) through a `TcpProxy`."""

    def __init__(
        self, *, log_path: Path | None = None, corrupt: tuple[bytes, bytes] | None = None
    ) -> None:
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.broker_port = free_port()
        self.proxy = TcpProxy(target_port=self.broker_port, port=free_port(), corrupt=corrupt)

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.proxy.port}"

    async def __aenter__(self) -> Self:
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        self._log = self._log_path.open("ab") if self._log_path else None
        self._process = await asyncio.create_subprocess_exec(
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{self.broker_port}",
            "--advertised-listener-url",
            f"tcp://{HOST}:{self.proxy.port}",
            "--storage-engine",
            "memory://tansu/",
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        try:
            await self._wait_listening(self._process, 20.0)
            await self.proxy.__aenter__()
        except BaseException:
            await self._stop()
            raise
        return self

    async def _wait_listening(self, process: asyncio.subprocess.Process, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"tansu exited with status {process.returncode}")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.broker_port), 0.5
                )
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise RuntimeError(f"tansu did not listen on port {self.broker_port} within {within:g}s")

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 10)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.proxy.__aexit__(exc_type, exc, tb)
        finally:
            await self._stop()
