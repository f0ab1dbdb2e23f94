"""A drain: how long it takes until every expected delivery is acknowledged AND stored.

The clock starts at the receiver's first accepted request (so the service's start-up and
its consumer-group join, ~3 s on Tansu, are not counted) and stops when the benchmark
observes, in the store itself, that every expected delivery is `succeeded` (polled every
50 ms once the receiver has counted them all). CPU seconds of the measured process over
the same window come from its `Sampler`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.database import Database
from bench.procstat import Sampler
from bench.receiver_proc import ReceiverProcess

POLL = 0.05


@dataclass(frozen=True, slots=True)
class Drain:
    expected: int
    acknowledged: int  # 2xx answers the receiver gave to the endpoints measured
    stored: int  # of those endpoints' deliveries, how many the store says succeeded
    seconds: float
    cpu_seconds: float
    complete: bool
    invalid: int  # requests that failed signature verification (must be 0)
    machine_busy_cores: float  # the whole machine, over the same window

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_seconds / max(self.stored, 1) * 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "deliveries_per_s": round(self.rate, 1),
            "cpu_s_per_1k": round(self.cpu_per_1k, 4),
        }


async def wait_drained(
    *,
    receiver: ReceiverProcess,
    database: Database | None,
    sampler: Sampler,
    indices: Sequence[int],
    each: int,
    endpoint_ids: Sequence[str] | None,
    within: float,
) -> Drain:
    """Wait (bounded by `within` seconds) until the endpoints `indices` each accepted
    `each` deliveries and, when `database` is given, the store records them succeeded.

    Without a database (the naive baseline stores nothing) the window ends at the
    receiver's last accepted request.
    """
    deadline = time.monotonic() + within
    expected = each * len(indices)
    stats = await receiver.wait_for(list(indices), each, within=within)
    acknowledged = sum(min(stats["ok"].get(str(i), 0), each) for i in indices)
    stored = acknowledged
    end = float(stats["last_ok"] or time.time())
    if database is not None:
        stored = 0
        while True:
            counts = await database.delivery_counts(endpoint_ids)
            stored = counts.get("succeeded", 0)
            end = time.time()
            if stored >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL)
    start = float(stats["first_ok"] or end)
    sampler.sample()
    return Drain(
        expected=expected,
        acknowledged=acknowledged,
        stored=stored,
        seconds=max(end - start, 1e-6),
        cpu_seconds=sampler.cpu_between(start, end),
        complete=acknowledged >= expected and stored >= expected,
        invalid=int(stats["invalid"]),
        machine_busy_cores=round(sampler.machine_cores_between(start, end), 2),
    )
