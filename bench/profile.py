"""Where the service's CPU goes: py-spy attached to the running process, stacks summarised.

`Profiler(pid, path)` runs `py-spy record --pid PID --format raw` (collapsed stacks, one per
line, that speedscope.app and flamegraph.pl read) for as long as it is entered, sampling
without pausing the service (`--nonblocking`, 100 Hz, idle threads excluded, thread ids
kept). With `path=None`, or when py-spy is not installed, it does nothing.

`summarise(path)` turns the stacks into the shares the report prints: per thread, per
function (self — the frame on top — and inclusive — anywhere on the stack), and per source
file (self).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Self

_THREAD = re.compile(r"^thread \([^)]*\):? ?(?P<name>.*)$")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*)\)$")


def py_spy() -> str | None:
    """The py-spy binary: beside this interpreter (the venv) or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, pid: int, path: Path | None, *, rate: int = 100) -> None:
        self.pid = pid
        self.path = path
        self.rate = rate
        self._process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Self:
        binary = py_spy()
        if self.path is None or binary is None:
            return self
        self._process = self._spawn(binary, self.path)
        await asyncio.sleep(0.5)  # let it attach
        return self

    def _spawn(self, binary: str, path: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--rate",
                str(self.rate),
                "--nonblocking",
                "--threads",
                "--subprocesses",  # `serve --workers N`: the workers are child processes
                "--nolineno",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _split(line: str) -> tuple[str, list[str], int] | None:
    stack, _, count = line.rstrip("\n").rpartition(" ")
    if not stack or not count.isdigit():
        return None
    frames = [f for f in stack.split(";") if not f.startswith("process ")]
    thread = "?"
    match = _THREAD.match(frames[0]) if frames else None
    if match:
        thread = match.group("name") or "?"
        frames = frames[1:]
    return thread, frames, int(count)


def _short(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if not match:
        return frame, "?"
    return f"{match.group('function')} ({match.group('file')})", match.group("file")


def summarise(path: Path, *, top: int = 25) -> dict[str, Any]:
    """Shares of CPU-active samples (%) by thread, function (self, inclusive) and file."""
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8") as stacks:
        for line in stacks:
            parsed = _split(line)
            if parsed is None or not parsed[1]:
                continue
            thread, frames, count = parsed
            total += count
            names = [_short(f) for f in frames]
            threads[_thread_label(thread)] += count
            leaf, leaf_file = names[-1]
            self_time[leaf] += count
            files[leaf_file] += count
            for name in {n for n, _ in names}:
                inclusive[name] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(total, 1), 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "threads": shares(threads),
        "self": shares(self_time),
        "inclusive": shares(inclusive),
        "files": shares(files),
    }


def _thread_label(name: str) -> str:
    if name == "MainThread":
        return "event loop (MainThread)"
    if name.startswith("sqlite-store"):
        return "SQLite store worker thread"
    return f"other: {name.rstrip('_0123456789')}"
