"""PostgreSQL for the chaos runs: throwaway databases, and restarting the local cluster.

The cluster is found with `pg_lsclusters` (Debian's postgresql-common) by the port of the
admin URL and restarted with `pg_ctlcluster --skip-systemctl-redirect -m <mode> <version>
<name> restart`: `fast` terminates every session and shuts down cleanly (a restart for a
configuration change); `immediate` stops without a shutdown checkpoint, so the start runs
crash recovery (what a crash or a failover looks like to clients). Whatever happens,
`ensure_running` leaves the cluster up.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg


class PostgresUnavailableError(Exception):
    """PostgreSQL cannot be used (or restarted) on this machine."""


@dataclass(frozen=True, slots=True)
class Cluster:
    version: str
    name: str
    port: int

    def _ctl(self, action: str, mode: str = "fast") -> list[str]:
        return [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            "--mode",
            mode,
            self.version,
            self.name,
            action,
        ]

    async def restart(self, mode: str = "fast", within: float = 60.0) -> float:
        """Restart the cluster (`fast` or `immediate`); return how long it took."""
        started = time.monotonic()
        await _run(self._ctl("restart", mode), within)
        return time.monotonic() - started

    async def ensure_running(self, within: float = 60.0) -> None:
        """Start the cluster if it is down (a restart that failed half-way)."""
        listing = await _run(["pg_lsclusters", "--no-header"], within)
        for line in listing.splitlines():
            fields = line.split()
            if fields[:2] == [self.version, self.name] and "online" not in fields[3]:
                await _run(self._ctl("start"), within)


async def _run(argv: list[str], within: float) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PostgresUnavailableError(f"{' '.join(argv)} took longer than {within:g}s") from None
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise PostgresUnavailableError(f"{' '.join(argv)} failed: {text.strip()[-300:]}")
    return text


async def find_cluster(admin_url: str) -> Cluster:
    """The local cluster serving `admin_url`, or PostgresUnavailableError saying why not."""
    parts = urlsplit(admin_url)
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise PostgresUnavailableError(f"{parts.hostname} is not this machine's cluster")
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        raise PostgresUnavailableError("pg_lsclusters/pg_ctlcluster not found")
    port = parts.port or 5432
    for line in (await _run(["pg_lsclusters", "--no-header"], 30)).splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == str(port) and "online" in fields[3]:
            return Cluster(version=fields[0], name=fields[1], port=port)
    raise PostgresUnavailableError(f"no online cluster on port {port} in pg_lsclusters")


async def wait_up(admin_url: str, within: float) -> float | None:
    """Seconds until PostgreSQL accepts a connection and answers, or None after `within`."""
    started = time.monotonic()
    deadline = started + within
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(admin_url, timeout=2)
        except (OSError, TimeoutError, asyncpg.PostgresError):
            await asyncio.sleep(0.2)
            continue
        try:
            await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await asyncio.sleep(0.2)
            continue
        finally:
            await conn.close()
        return time.monotonic() - started
    return None


class ThrowawayDatabase:
    """`async with ThrowawayDatabase(admin_url) as url`: a fresh database, dropped after."""

    def __init__(self, admin_url: str) -> None:
        self._admin_url = admin_url
        self.name = f"chaos_{uuid.uuid4().hex[:12]}"

    async def __aenter__(self) -> str:
        try:
            admin = await asyncpg.connect(self._admin_url, timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise PostgresUnavailableError(f"cannot connect: {exc}") from exc
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        base, _, _ = self._admin_url.rpartition("/")
        return f"{base}/{self.name}"

    async def __aexit__(self, *exc_info: object) -> None:
        if await wait_up(self._admin_url, 30) is None:
            return  # nothing to drop it with; the run's report says PostgreSQL is down
        admin = await asyncpg.connect(self._admin_url, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()
