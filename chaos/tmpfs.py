"""A small tmpfs to run the SQLite store on, and the means to fill it up and free it.

Mounting needs root (CAP_SYS_ADMIN) on Linux; anywhere else `Tmpfs` raises
`TmpfsUnavailableError` with the reason, and the disk-full scenario is skipped with it. The
mount is always unmounted on exit (lazily if something still holds it open).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

_FILL_CHUNK = 64 * 1024


class TmpfsUnavailableError(Exception):
    """A tmpfs cannot be mounted here."""


async def _run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"{argv[0]} timed out"
    return process.returncode or 0, output.decode(errors="replace").strip()


class Tmpfs:
    """`async with Tmpfs(size_bytes) as path`: a private tmpfs mounted at `path`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.path: Path | None = None
        self._filler: Path | None = None

    async def __aenter__(self) -> Path:
        if not sys.platform.startswith("linux"):
            raise TmpfsUnavailableError(f"tmpfs mounts are Linux-only (this is {sys.platform})")
        if os.geteuid() != 0:
            raise TmpfsUnavailableError("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
        if shutil.which("mount") is None or shutil.which("umount") is None:
            raise TmpfsUnavailableError("mount/umount not found")
        path = Path(tempfile.mkdtemp(prefix="chaos-tmpfs-"))
        code, output = await _run(
            "mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0700", "chaos-tmpfs", str(path)
        )
        if code != 0:
            await asyncio.to_thread(path.rmdir)
            raise TmpfsUnavailableError(f"mount -t tmpfs refused: {output or code}")
        self.path = path
        return path

    def _mounted(self) -> Path:
        if self.path is None:
            raise RuntimeError("the tmpfs is not mounted: use `async with Tmpfs(...)`")
        return self.path

    def fill(self) -> int:
        """Write a filler file until the tmpfs is full (ENOSPC); return the bytes written."""
        self._filler = self._mounted() / "filler"
        written = 0
        chunk = b"\0" * _FILL_CHUNK
        with self._filler.open("wb", buffering=0) as out:
            for _ in range(self.size // _FILL_CHUNK + 2):
                try:
                    written += out.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            # The last partial chunk: take every remaining byte too.
            for size in (4096, 512, 1):
                with contextlib.suppress(OSError):
                    for _ in range(_FILL_CHUNK // size):
                        written += out.write(b"\0" * size)
        return written

    def free(self) -> None:
        """Delete the filler: the space comes back."""
        if self._filler is not None:
            self._filler.unlink(missing_ok=True)
            self._filler = None

    def available(self) -> int:
        stats = os.statvfs(self._mounted())
        return stats.f_bavail * stats.f_frsize

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        path, self.path = self.path, None
        if path is None:
            return
        code, _ = await _run("umount", str(path))
        if code != 0:
            await _run("umount", "--lazy", str(path))
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.rmdir)
