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
                "target": f"{'≥' if at_least else '≤'} {target:,.0f} {unit}",
                "measured": f"{measured:,.1f} {unit}",
                "met": met,
                "share_of_goal": round(gap, 3),
            }
        )

    service = result.get("throughput", {}).get("service", {})
    for store, target in (("sqlite", 20_000), ("postgres", 12_000)):
        samples = service.get(store, {}).get("10", [])
        add(
            f"throughput, {store}, fan-out 10",
            target,
            _median(samples, "deliveries_per_s"),
            "deliveries/s",
            at_least=True,
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
