"""The Grafana dashboard and the Prometheus alert rules shipped with the chart query only what
the service exports: every PromQL expression parses, names metrics that
`dispatcher.metrics.Metrics` really exports, and uses their labels and label values."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from dispatcher.core.breaker import BreakerState
from dispatcher.core.models import DeliveryStatus, DisabledReason, FailureKind
from dispatcher.metrics import Metrics
from tests.deploy.conftest import CHART

ALERTS = CHART / "files" / "prometheus" / "alerts.yaml"
DASHBOARD = CHART / "files" / "grafana" / "layers-webhooks.json"
METRIC_NAME = re.compile(r"\bwebhooks_[a-zA-Z0-9_]+")
# Grafana's built-in variables, replaced by plausible values so the expressions parse.
GRAFANA_BUILTINS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}
# Labels Prometheus attaches at scrape time (Kubernetes service discovery, ServiceMonitor).
TARGET_LABELS = {"job", "instance", "namespace", "pod"}
# The label values the service really sets (dispatcher code), where queries match exactly.
LABEL_VALUES = {
    ("webhooks_attempts_total", "outcome"): {"success"} | {kind.value for kind in FailureKind},
    ("webhooks_deliveries_finished_total", "status"): {
        status.value for status in DeliveryStatus if status is not DeliveryStatus.PENDING
    },
    ("webhooks_breakers", "state"): {state.value for state in BreakerState},
    ("webhooks_endpoints_disabled_total", "reason"): {reason.value for reason in DisabledReason},
}
SEVERITIES = {"critical", "warning", "info"}


@cache
def exported() -> dict[str, frozenset[str]]:
    """Every sample name the service exports (`_total`, `_bucket`…) → its label names."""
    metrics = Metrics.create()
    for field in dataclasses.fields(metrics):
        metric = getattr(metrics, field.name)
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            # A labelled family exports no sample until a child exists: touch one.
            metric.labels(*["touched"] * len(metric._labelnames))
    return {
        sample.name: frozenset(sample.labels)
        for family in metrics.registry.collect()
        for sample in family.samples
    }


def concrete(expr: str) -> str:
    """The expression with Grafana variables replaced, as Grafana sends it to Prometheus."""
    for variable, value in GRAFANA_BUILTINS.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)  # dashboard variables ($namespace…) are regexes


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def alerts() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return loaded


def rules() -> list[dict[str, Any]]:
    return [rule for group in alerts()["groups"] for rule in group["rules"]]


def queries() -> list[tuple[str, str]]:
    """(id, PromQL) for every dashboard target and every alert rule."""
    found = [
        (f"dashboard:{panel['title']}:{target['refId']}", target["expr"])
        for panel in panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]
    found += [(f"alert:{r['alert']}:{r['labels']['severity']}", r["expr"]) for r in rules()]
    return found


QUERIES = queries()


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def aggregations(expr: promql_parser.Expr) -> list[promql_parser.AggregateExpr]:
    found: list[promql_parser.AggregateExpr] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def calls(expr: promql_parser.Expr, function: str) -> list[promql_parser.Call]:
    found: list[promql_parser.Call] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.Call) and node.func.name == function:
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def allowed_labels(names: list[str]) -> set[str]:
    """Labels a query over these metrics may use: the metrics' own and the scrape labels."""
    labels = set(TARGET_LABELS)
    for name in names:
        labels |= exported().get(name, frozenset())
    return labels


# -- metric names -----------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[where for where, _ in QUERIES])
def test_every_queried_metric_is_exported(where: str, expr: str) -> None:
    """Each `webhooks_*` name in the expression is a sample the service's registry exports."""
    names = set(METRIC_NAME.findall(expr))
    assert names, "the expression queries no webhooks_* metric"
    assert sorted(names - set(exported())) == []


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[where for where, _ in QUERIES])
def test_every_expression_parses_as_promql(where: str, expr: str) -> None:
    """The expression parses, and its selectors name exactly the metrics the regex finds."""
    parsed = promql_parser.parse(concrete(expr))
    assert {s.name for s in selectors(parsed)} == set(METRIC_NAME.findall(expr))


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[where for where, _ in QUERIES])
def test_every_label_is_one_the_metric_has(where: str, expr: str) -> None:
    """Matchers and `by (…)` use the metric's labels or scrape labels (no endpoint label exists)."""
    parsed = promql_parser.parse(concrete(expr))
    problems = []
    for selector in selectors(parsed):
        assert selector.name is not None
        allowed = allowed_labels([selector.name])
        problems += [m.name for m in selector.matchers.matchers if m.name not in allowed]
    for aggregation in aggregations(parsed):
        if aggregation.modifier is not None:
            allowed = allowed_labels([s.name for s in selectors(aggregation.expr) if s.name])
            problems += [label for label in aggregation.modifier.labels if label not in allowed]
    assert problems == []


@pytest.mark.parametrize(("where", "expr"), QUERIES, ids=[where for where, _ in QUERIES])
def test_every_matched_label_value_is_one_the_service_sets(where: str, expr: str) -> None:
    """Exact matchers on outcome, status, state and reason use values the service emits."""
    unknown = [
        f"{selector.name}{{{matcher}}}"
        for selector in selectors(promql_parser.parse(concrete(expr)))
        for matcher in selector.matchers.matchers
        if matcher.op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual)
        and (selector.name, matcher.name) in LABEL_VALUES
        and matcher.value not in LABEL_VALUES[(selector.name or "", matcher.name)]
    ]
    assert unknown == []


def test_dashboard_variables_query_exported_metrics() -> None:
    """The dashboard's namespace and job variables list values of an exported metric."""
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job"):
        query = variables[name]["query"]["query"]
        assert set(METRIC_NAME.findall(query)) <= set(exported()), query
        assert query.startswith("label_values(")
        assert query.endswith(f", {name})")


# -- the dashboard ----------------------------------------------------------------------------


def test_dashboard_shows_every_required_panel() -> None:
    """The dashboard covers ingest, dead letters, outcomes, latency, saturation and the store."""
    shown = {
        name
        for where, expr in QUERIES
        if where.startswith("dashboard:")
        for name in METRIC_NAME.findall(expr)
    }
    assert shown >= {
        "webhooks_events_consumed_total",
        "webhooks_dead_letters_total",
        "webhooks_deliveries_finished_total",
        "webhooks_attempts_total",
        "webhooks_attempt_seconds_bucket",
        "webhooks_in_flight",
        "webhooks_queued",
        "webhooks_breakers",
        "webhooks_consumer_lag",
        "webhooks_oldest_pending_seconds",
        "webhooks_store_errors_total",
        "webhooks_endpoints_disabled_total",
    }
    quantiles = {
        (call.args[0].val, selector.name)
        for where, expr in QUERIES
        if where.startswith("dashboard:")
        for call in calls(promql_parser.parse(concrete(expr)), "histogram_quantile")
        for selector in selectors(call.args[1])
    }
    assert quantiles >= {
        (0.5, "webhooks_attempt_seconds_bucket"),
        (0.99, "webhooks_attempt_seconds_bucket"),
    }


def test_dashboard_panels_are_well_formed() -> None:
    """Unique ids, the datasource variable everywhere, unique refIds, on a 24-column grid."""
    board = dashboard()
    assert (board["uid"], board["title"]) == ("layers-webhooks", "Layers Webhooks")
    every = list(panels(board["panels"]))
    assert len({p["id"] for p in every}) == len(every)
    for panel in every:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs) >= 1, panel["title"]
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), panel["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    """No two panels share a grid cell."""
    cells: dict[tuple[int, int], str] = {}
    overlaps = []
    for panel in panels(dashboard()["panels"]):
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    overlaps.append((cells[(x, y)], panel["title"]))
                cells[(x, y)] = panel["title"]
    assert sorted(set(overlaps)) == []


# -- the alert rules --------------------------------------------------------------------------


def test_alert_rules_are_well_formed() -> None:
    """Each rule has alert, expr, for, a known severity, a summary, description and runbook."""
    document = alerts()
    assert list(document) == ["groups"]
    names = [group["name"] for group in document["groups"]]
    assert len(set(names)) == len(names)
    for rule in rules():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule.get("alert")
        assert re.fullmatch(r"Webhooks[A-Z][A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in SEVERITIES
        assert re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", rule["for"]), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, rule["alert"]
        assert all(text.strip() for text in annotations.values()), rule["alert"]


def test_alert_names_are_unique_per_severity() -> None:
    """An alert name appears once per severity (a warning and a critical may share it)."""
    keys = [(rule["alert"], rule["labels"]["severity"]) for rule in rules()]
    assert len(set(keys)) == len(keys)


def test_alert_annotations_use_only_labels_the_expression_keeps() -> None:
    """`$labels.x` in an annotation names a label the rule's expression aggregates by."""
    problems = []
    for rule in rules():
        kept = {
            label
            for aggregation in aggregations(promql_parser.parse(rule["expr"]))
            if aggregation.modifier is not None
            for label in aggregation.modifier.labels
        }
        text = " ".join(rule["annotations"].values())
        problems += [
            (rule["alert"], label)
            for label in re.findall(r"\$labels\.(\w+)", text)
            if label not in kept
        ]
        assert text.count("{{") == text.count("}}"), rule["alert"]
    assert problems == []


def test_alert_rules_cover_the_on_call_signals() -> None:
    """Lag, dead letters, failures, open breakers, stale deliveries and store errors alert."""
    alerted = {name for rule in rules() for name in METRIC_NAME.findall(rule["expr"])}
    assert alerted >= {
        "webhooks_consumer_lag",
        "webhooks_dead_letters_total",
        "webhooks_attempts_total",
        "webhooks_breakers",
        "webhooks_oldest_pending_seconds",
        "webhooks_store_errors_total",
    }
