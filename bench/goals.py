"""The targets from the issues, checked against a result: met, or missed by how much.

Goals, not assertions: the suite never fails because of them; the report says where each
stands.
"""

from __future__ import annotations

import math
from typing import Any

from bench.stats import field

Result = dict[str, Any]


def _median(samples: list[Result], key: str) -> float:
    return field(samples, key)["median"]


def evaluate(result: Result) -> list[dict[str, Any]]:
    """One row per goal whose scenario ran: {goal, target, measured, met, gap}."""
    rows: list[dict[str, Any]] = []

    def add(goal: str, target: float, measured: float, unit: str, *, at_least: bool) -> None:
        if math.isnan(measured):
            return
        met = measured >= target if at_least else measured <= target
        gap = measured / target if at_least else target / measured if measured else math.inf
        rows.append(
            {
                "goal": goal,
                "target": f"{'≥' if at_least else '≤'} {target:,.{_digits(target)}f} {unit}",
                "measured": f"{measured:,.1f} {unit}",
                "met": met,
                "share_of_goal": round(gap, 3),
            }
        )

    throughput = result.get("throughput", {})
    service = throughput.get("service", {})
    naive = _median(throughput.get("naive", {}).get("10", []), "deliveries_per_s")
    floor = _median(throughput.get("floor", []), "client_cpu_us_per_request")
    for store, times in (("sqlite", 4), ("postgres", 3)):
        samples = service.get(store, {}).get("10", [])
        add(
            f"throughput, {store}, fan-out 10, × the naive baseline of the same run",
            times,
            _median(samples, "deliveries_per_s") / naive if naive else math.nan,
            "×",
            at_least=True,
        )
        add(
            f"CPU per delivery, {store}, fan-out 10, × the delivery client's CPU per request",
            1.5,
            _median(samples, "cpu_s_per_1k") * 1000 / floor if floor else math.nan,
            "×",
            at_least=False,
        )
    for store, by_rate in result.get("latency", {}).get("service", {}).items():
        if store.startswith("naive"):
            continue
        add(
            f"p99 latency at 2,000 events/s, {store}",
            25,
            _median(by_rate.get("2000", []), "p99_ms"),
            "ms",
            at_least=False,
        )
    iso = result.get("isolation")
    if iso and iso["baseline"] and iso["degraded"]:
        base = _median(iso["baseline"], "healthy_deliveries_per_s")
        bad = _median(iso["degraded"], "healthy_deliveries_per_s")
        add("healthy throughput under isolation", 90, 100 * bad / base, "%", at_least=True)
    for run in result.get("backlog", {}).get("runs", []):
        add(
            f"peak RSS with {run['deliveries']:,} pending ({run['store']})",
            250,
            float(run["peak_rss_mb"]),
            "MB",
            at_least=False,
        )
    return rows


def _digits(value: float) -> int:
    return 0 if float(value).is_integer() else 1


def table(result: Result) -> list[str]:
    rows = evaluate(result)
    if not rows:
        return []
    lines = [
        "## Goals (from the issues)",
        "",
        "| goal | target | measured (median) | met | measured ÷ goal (≥ 1 is met) |",
        "|---|---|---|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['goal']} | {row['target']} | {row['measured']} "
            f"| {'yes' if row['met'] else '**no**'} | {row['share_of_goal']:.2f} |"
        )
    return [*lines, ""]
