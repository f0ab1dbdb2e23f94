"""Process statistics from /proc: CPU seconds, resident memory and its peak, sampled over time.

The benchmarks measure other processes (the service, the naive baseline, the receiver), so
they read `/proc/<pid>/stat` (utime + stime, in clock ticks) and `/proc/<pid>/status`
(`VmRSS`, and `VmHWM`, the peak resident set the kernel has seen). A `Sampler` polls them
in the background so that the CPU used between two instants can be interpolated without
the caller having to catch the exact moment.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by `pid` (its threads included) and by its
    child processes: the live ones read directly, the reaped ones through the kernel's
    `cutime`/`cstime` (so `webhooks serve --workers N` is measured as a whole)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name (field 2) may contain spaces: split after its closing paren.
        fields = stat.read().rpartition(")")[2].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / _TICKS + sum(_children_cpu(pid))


def _children_cpu(pid: int) -> list[float]:
    found: list[float] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            pids = [int(p) for p in children.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return found
    for child in pids:
        try:
            found.append(cpu_seconds(child))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # exited meanwhile: its parent's cutime has it
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """`VmRSS` and `VmHWM` of `pid`, in KiB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


class MachineLoad:
    """How many cores the whole machine kept busy between `start()` and `cores()`."""

    def __init__(self) -> None:
        self._start = machine_jiffies()

    def start(self) -> None:
        self._start = machine_jiffies()

    def cores(self) -> float:
        busy, total = machine_jiffies()
        spent = total - self._start[1]
        cpus = os.cpu_count() or 1
        return 0.0 if spent <= 0 else (busy - self._start[0]) / spent * cpus


@dataclass(slots=True)
class Sample:
    at: float  # time.time()
    cpu: float  # CPU seconds so far
    rss_kib: int
    hwm_kib: int
    machine: tuple[int, int]  # (busy, total) jiffies of the whole machine


@dataclass
class Sampler:
    """Samples a process every `interval` seconds while used as `async with`."""

    pid: int
    interval: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def sample(self) -> Sample | None:
        try:
            memory = memory_kib(self.pid)
            sample = Sample(
                at=time.time(),
                cpu=cpu_seconds(self.pid),
                rss_kib=memory.get("VmRSS", 0),
                hwm_kib=memory.get("VmHWM", 0),
                machine=machine_jiffies(),
            )
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            return None  # the process is gone (or a zombie with an empty status)
        self.samples.append(sample)
        return sample

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            # wait() does not re-raise the sampler's own cancellation, so a cancellation of
            # the caller (Ctrl-C) still propagates instead of being swallowed here.
            await asyncio.wait({self._task})
        self.sample()

    def cpu_at(self, at: float) -> float:
        """CPU seconds at wall time `at`, linearly interpolated between samples."""
        if not self.samples:
            raise ValueError("no samples")
        times = [s.at for s in self.samples]
        i = bisect.bisect_left(times, at)
        if i == 0:
            return self.samples[0].cpu
        if i >= len(self.samples):
            return self.samples[-1].cpu
        before, after = self.samples[i - 1], self.samples[i]
        span = after.at - before.at
        share = 0.0 if span <= 0 else (at - before.at) / span
        return before.cpu + share * (after.cpu - before.cpu)

    def cpu_between(self, start: float, end: float) -> float:
        return max(self.cpu_at(end) - self.cpu_at(start), 0.0)

    def machine_cores_between(self, start: float, end: float) -> float:
        """Cores the whole machine kept busy between the samples nearest `start` and `end`."""
        inside = [s for s in self.samples if start <= s.at <= end] or self.samples[-1:]
        first, last = inside[0], inside[-1]
        spent = last.machine[1] - first.machine[1]
        if spent <= 0:
            return float("nan")
        return (last.machine[0] - first.machine[0]) / spent * (os.cpu_count() or 1)

    @property
    def peak_rss_kib(self) -> int:
        """The kernel's high-water mark (VmHWM), or the largest RSS sampled."""
        return max((max(s.hwm_kib, s.rss_kib) for s in self.samples), default=0)
