"""The micro-benchmarks, called through their `run()`: verifier, schemas, delivery, store,
tracing.

Each runs in its own event loop (they create one), so this is called outside the suite's
loop. A failure in one is reported as that benchmark's error, not the suite's.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import delivery, schemas, store, tracing, verifier

Log = Callable[[str], None]


def run_micro(*, quick: bool, log: Log) -> dict[str, Any]:
    benches: dict[str, Callable[[], dict[str, object]]] = {
        "verifier": verifier.run,
        "schemas": schemas.run,
        "delivery": lambda: delivery.run(requests=10_000 if quick else 20_000),
        "store": lambda: store.run(deliveries=20_000 if quick else 100_000),
        "tracing": lambda: tracing.run(requests=3000 if quick else 10_000),
    }
    results: dict[str, Any] = {}
    for name, run in benches.items():
        started = time.monotonic()
        try:
            results[name] = run()
        except Exception as exc:  # noqa: BLE001 - one benchmark's failure is its own result
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        log(f"micro {name} ({time.monotonic() - started:.0f} s)")
    return results
