"""The TCP proxy that takes the broker away: forwards, refuses, black-holes, restores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chaos.proxy import ProxyMode, TcpProxy


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def roundtrip(port: int, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), 1)
    finally:
        writer.close()


async def test_forwards_refuses_then_restores_on_the_same_port(echo_port: int) -> None:
    """Up: bytes round-trip; REFUSE: connecting fails; restore: the same port forwards again."""
    async with TcpProxy(target_port=echo_port) as proxy:
        port = proxy.port
        assert await roundtrip(port) == b"ping"
        await proxy.cut(ProxyMode.REFUSE)
        with pytest.raises(ConnectionRefusedError):
            await roundtrip(port)
        await proxy.restore()
        assert proxy.port == port
        assert await roundtrip(port) == b"ping"


async def test_blackhole_drops_bytes_and_restore_resets_the_damaged_link(echo_port: int) -> None:
    """BLACKHOLE: a live link's bytes vanish (no echo); restore resets that link (EOF), and a
    new connection works."""
    async with TcpProxy(target_port=echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.cut(ProxyMode.BLACKHOLE)
        writer.write(b"lost")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1024), 0.3)
        await proxy.restore()
        assert await asyncio.wait_for(reader.read(1024), 1) == b""
        writer.close()
        assert proxy.stats.dropped_bytes == 4
        assert await roundtrip(proxy.port) == b"ping"
