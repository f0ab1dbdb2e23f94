"""The results table: Markdown for people, JSON for machines (bench/results/latest.*).

Every figure over repeated runs is printed as `median (min–max)`; ratios are of medians.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench import goals
from bench.health import table as health_table
from bench.stack import BASE_SETTINGS
from bench.stats import field
from bench.store import table as store_table

Result = dict[str, Any]


def _num(value: float, digits: int = 0) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return f"{value:,.{digits}f}"


def cell(samples: list[Result], key: str, digits: int = 0) -> str:
    s = field(samples, key)
    if s["runs"] == 0:
        return "–"
    if s["runs"] == 1:
        return _num(s["median"], digits)
    return f"{_num(s['median'], digits)} ({_num(s['min'], digits)}–{_num(s['max'], digits)})"


def median(samples: list[Result], key: str) -> float:
    return field(samples, key)["median"]


def _ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def _machine(result: Result) -> list[str]:
    m = result["machine"]
    lines = ["## Machine", "", "| | |", "|---|---|"]
    for key in ("cpu", "cores", "usable_cores", "memory_gib", "kernel", "python", "sqlite"):
        lines.append(f"| {key} | {m[key]} |")
    for key in ("postgresql", "wrk", "git_commit"):
        lines.append(f"| {key} | {m[key]} |")
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    lines += [f"| libraries | {libs} |", ""]
    return lines


def _throughput(t: Result) -> list[str]:
    capacity = t.get("capacity", {})
    cap_samples = capacity.get("samples", [])
    cap = median(cap_samples, "requests_per_s") if cap_samples else math.nan
    floor = t.get("floor", [])
    floor_us = median(floor, "client_cpu_us_per_request") if floor else math.nan
    lines = [
        "## Throughput (1 KB events, pre-published; end to end: acknowledged AND stored)",
        "",
        f"{t['deliveries_per_run']:,} deliveries per run. CPU = the service's processes "
        "(user+system, workers included) over the measured window; µs per delivery ÷ the "
        "delivery client's µs per request (its floor, measured in the same run) is "
        "`× floor CPU`.",
        "",
        "| what | store | fan-out | deliveries/s | CPU s per 1k deliveries | × naive "
        "| × floor CPU | × receiver capacity | peak RSS MB | machine busy (cores) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for store, by_fanout in t["service"].items():
        for fanout, samples in by_fanout.items():
            naive = median(t["naive"].get(fanout, []), "deliveries_per_s")
            rate = median(samples, "deliveries_per_s")
            cpu_us = median(samples, "cpu_s_per_1k") * 1000
            lines.append(
                f"| dispatcher | {store} | {fanout} | {cell(samples, 'deliveries_per_s')} "
                f"| {cell(samples, 'cpu_s_per_1k', 3)} | {_ratio(rate, naive)} "
                f"| {_ratio(cpu_us, floor_us)} "
                f"| {_ratio(rate, cap)} | {cell(samples, 'peak_rss_mb', 0)} "
                f"| {cell(samples, 'machine_busy_cores', 2)} |"
            )
    for fanout, samples in t["naive"].items():
        rate = median(samples, "deliveries_per_s")
        lines.append(
            f"| naive baseline (bench/naive.py: no store, no retries) | – | {fanout} "
            f"| {cell(samples, 'deliveries_per_s')} | {cell(samples, 'cpu_s_per_1k', 3)} "
            f"| 1.00× | – | {_ratio(rate, cap)} | – | {cell(samples, 'machine_busy_cores', 2)} |"
        )
    if floor:
        lines.append(
            "| delivery client floor (bench/delivery.py: DeliveryClient alone, signed POSTs, "
            f"c={floor[0]['concurrency']}) | – | – | {cell(floor, 'requests_per_s')} req/s "
            f"| {_num(floor_us / 1000, 3)} | – | 1.00× | – | – | – |"
        )
    if cap_samples:
        lines.append(
            f"| receiver capacity ({capacity['command']}) | – | – "
            f"| {cell(cap_samples, 'requests_per_s')} req/s | – | – | – | 1.00× | – | – |"
        )
    else:
        lines.append(f"| receiver capacity | – | – | {capacity.get('skipped', 'not run')} |||||||")
    for note in t.get("notes", []):
        lines.append(f"\n{note}")
    return [*lines, ""]


def _latency(lat: Result) -> list[str]:
    lines = [
        f"## Latency (publish → receipt, fan-out 1, {lat['seconds_per_rate']:g} s per rate)",
        "",
        "| what | rate events/s | achieved publish rate | p50 ms | p95 ms | p99 ms | max ms "
        "| missing | consumer process CPU (cores) | whole machine busy (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for store, by_rate in lat["service"].items():
        label = {
            "naive": "naive baseline (fetch_max_wait_ms=500, aiokafka default)",
            "naive-fetch10": "naive baseline, fetch_max_wait_ms=10",
        }.get(store, f"dispatcher, {store}")
        for rate, samples in by_rate.items():
            lines.append(
                f"| {label} | {int(rate):,} | {cell(samples, 'achieved_publish_rate')} "
                f"| {cell(samples, 'p50_ms', 1)} | {cell(samples, 'p95_ms', 1)} "
                f"| {cell(samples, 'p99_ms', 1)} | {cell(samples, 'max_ms', 0)} "
                f"| {cell(samples, 'missing')} | {cell(samples, 'service_cpu_share', 2)} "
                f"| {cell(samples, 'machine_busy_cores', 2)} |"
            )
    lines += [
        "",
        "Where the dispatcher's latency goes (events.received_at splits it; p50 / p99 ms):",
        "",
        "| store | rate | publish → ingest p50 | p99 | ingest → receipt p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for store, by_rate in lat["service"].items():
        if store.startswith("naive"):
            continue
        for rate, s in by_rate.items():
            lines.append(
                f"| {store} | {int(rate):,} | {cell(s, 'to_ingest_p50_ms', 1)} "
                f"| {cell(s, 'to_ingest_p99_ms', 1)} | {cell(s, 'ingest_to_receipt_p50_ms', 1)} "
                f"| {cell(s, 'ingest_to_receipt_p99_ms', 1)} |"
            )
    return [*lines, ""]


def _isolation(iso: Result) -> list[str]:
    base, bad = iso["baseline"], iso["degraded"]
    ratio = _ratio(
        median(bad, "healthy_deliveries_per_s"), median(base, "healthy_deliveries_per_s")
    )
    bad_list = ", ".join(f"#{k} {v}" for k, v in iso["bad_endpoints"].items())
    return [
        f"## Isolation ({iso['store']}, fan-out {iso['fanout']}, {iso['events']:,} events "
        f"pre-published, then {iso['steady_seconds']:g} s at "
        f"{base[0]['steady_rate'] if base else '?'} events/s)",
        "",
        f"Bad endpoints: {bad_list}; {iso['healthy_endpoints']} healthy endpoints measured.",
        "",
        "| case | healthy deliveries/s (saturation) | healthy p50 ms (steady) "
        "| healthy p99 ms (steady) | healthy received / expected (steady) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {cell(s, 'healthy_deliveries_per_s')} | {cell(s, 'p50_ms', 1)} "
            f"| {cell(s, 'p99_ms', 1)} | {cell(s, 'steady_received')} / "
            f"{cell(s, 'steady_expected')} |"
            for name, s in (("all healthy (baseline)", base), ("10 % black hole + 10 % slow", bad))
        ),
        "",
        f"Healthy throughput degraded / baseline: **{ratio}**; p99: "
        f"{_ratio(median(bad, 'p99_ms'), median(base, 'p99_ms'))} of baseline.",
        "",
    ]


def _backlog(b: Result) -> list[str]:
    lines = [
        "## Backlog (pending deliveries loaded before start; receiver down, then recovers)",
        "",
        "| store | deliveries | load rate /s | down phase s | service CPU in down phase (cores) "
        "| peak RSS MB (down) | peak RSS MB (all) | drain s | drain deliveries/s "
        "| CPU s per 1k (drain) | final counts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in b["runs"]:
        counts = ", ".join(f"{k} {v:,}" for k, v in r["store_counts"].items())
        drained = _num(r["drain_rate"]) if r["drained"] else f"not drained ({r['pending_left']:,})"
        lines.append(
            f"| {r['store']} | {r['deliveries']:,} | {r['load_rate']:,} | {r['down_seconds']} "
            f"| {r['down_cpu_share']} | {r['peak_rss_mb_down']} | {r['peak_rss_mb']} "
            f"| {r['drain_seconds']} | {drained} | {r['cpu_s_per_1k_drain']} | {counts} |"
        )
    return [*lines, ""]


def _micro(m: Result) -> list[str]:
    lines = ["## Micro-benchmarks", ""]
    v = m.get("verifier", {})
    if "error" not in v:
        lines += [
            "### bench.verifier (µs per call)",
            "",
            "| case | implementation | median µs | min µs |",
            "|---|---|---:|---:|",
        ]
        for case, cells in v.items():
            for name, c in cells.items():
                lines.append(f"| {case} | {name} | {c['median_us']} | {c['min_us']} |")
        lines.append("")
    s = m.get("schemas", {})
    if "error" not in s and s:
        lines += ["### bench.schemas (µs per record)", "", "| what | median µs |", "|---|---:|"]
        for section in ("validate_us", "decode_us"):
            lines += [f"| {k} | {val} |" for k, val in s[section].items()]
        lines.append("")
    d = m.get("delivery", {})
    if "error" not in d and d:
        lines += [
            "### bench.delivery (DeliveryClient alone)",
            "",
            f"{d['requests_per_s']:,} signed POSTs/s at concurrency {d['concurrency']}, "
            f"{d['client_cpu_us_per_request']} µs client CPU per request, {d['failed']} failed.",
            "",
        ]
    st = m.get("store", {})
    if "error" not in st and st:
        lines += ["### bench.store", "", store_table(st), ""]
    tr = m.get("tracing", {})
    if "error" not in tr and tr:
        lines += _tracing(tr)
    for name, value in m.items():
        if isinstance(value, dict) and "error" in value:
            lines.append(f"- {name}: failed — {value['error']}")
    return lines


def _tracing(tr: Result) -> list[str]:
    c, s = tr["client"], tr["span"]
    cpu = c["client_cpu_us_per_attempt"]
    return [
        "### bench.tracing (client CPU µs per attempt; medians of interleaved rounds)",
        "",
        "| direct (no tracing code) | off (default) | on | on + propagation |",
        "|---:|---:|---:|---:|",
        f"| {cpu['direct']} | {cpu['off']} | {cpu['on']} | {cpu['on+propagation']} |",
        "",
        f"Ratios in the same run: off/direct {c['off_vs_direct']}, on/off {c['on_vs_off']}, "
        f"on+propagation/off {c['on_propagation_vs_off']}. One attempt span alone "
        f"{s['on_us_per_span']} µs; the off check {s['off_us_per_check']} µs.",
        "",
    ]


def _settings(result: Result) -> list[str]:
    lines = ["## Service settings", "", "Every run (`bench/stack.py` BASE_SETTINGS):", ""]
    lines += [f"- `{k}={v}`" for k, v in BASE_SETTINGS.items()]
    lines += [
        "- `WEBHOOKS_ENCRYPTION_KEY`: generated per suite; fresh topic (8 partitions) and "
        "consumer group per run; `WEBHOOKS_HTTP_PORT`: a free port",
        "",
        "Per scenario:",
        "",
    ]
    for name in ("throughput", "latency", "isolation"):
        if name in result:
            extra = ", ".join(f"`{k}={v}`" for k, v in result[name]["settings"].items())
            lines.append(f"- {name}: {extra or 'none'}")
    if "backlog" in result and result["backlog"]["runs"]:
        extra = ", ".join(f"`{k}={v}`" for k, v in result["backlog"]["runs"][0]["settings"].items())
        lines.append(f"- backlog: {extra}")
    return [*lines, ""]


def _profiles(profiles: Result) -> list[str]:
    lines = ["## Where the service's CPU goes (py-spy, % of CPU-active samples)", ""]
    for name, summary in profiles.items():
        lines += [f"### {name} — {summary['samples']:,} samples", ""]
        if summary.get("note"):
            lines += [summary["note"], ""]
            continue
        lines += [f"- thread {t}: {share} %" for t, share in summary["threads"]]
        lines += ["", "| self (top of stack) | % | inclusive | % |", "|---|---:|---|---:|"]
        for (s_name, s_share), (i_name, i_share) in zip(
            summary["self"][:20], summary["inclusive"][:20], strict=False
        ):
            lines.append(f"| {s_name} | {s_share} | {i_name} | {i_share} |")
        lines += [
            "",
            "By file (self): " + ", ".join(f"{f} {p} %" for f, p in summary["files"][:12]),
        ]
        lines.append("")
    return lines


def _background(head: Result) -> list[str]:
    load = head.get("background_busy_cores")
    if not load:
        return []
    return [
        "Background load (cores busy with other work while the suite was idle): before "
        f"{load['before']}, after {load['after']} — well above 0 means a noisy neighbour "
        "shared the machine.",
        "",
    ]


def markdown(result: Result) -> str:
    head = result["header"]
    lines = [
        "# Layers Webhooks — benchmark results",
        "",
        f"{head['finished']} · `{head['command']}` · {head['runs']} run(s) per figure · "
        f"suite took {head['minutes']:.1f} min",
        "",
        *_background(head),
        "Figures over repeated runs are `median (min–max)`.",
        "",
        *_machine(result),
        *goals.table(result),
    ]
    if "throughput" in result:
        lines += _throughput(result["throughput"])
    if "latency" in result:
        lines += _latency(result["latency"])
    if "isolation" in result:
        lines += _isolation(result["isolation"])
    if "backlog" in result:
        lines += _backlog(result["backlog"])
    if "micro" in result:
        lines += _micro(result["micro"])
    if "health" in result:
        lines += ["## Endpoint health reads", "", health_table(result["health"]), ""]
    if result.get("profiles"):
        lines += _profiles(result["profiles"])
    lines += _settings(result)
    lines += ["## Method", "", *[f"- {note}" for note in head["method"]], ""]
    return "\n".join(lines)


def write(result: Result, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "latest.md", out / "latest.json"
    md.write_text(markdown(result))
    js.write_text(json.dumps(result, indent=1, default=str))
    return md, js
