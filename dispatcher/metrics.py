"""Prometheus metrics, declared in one place on an injected registry.

Labels stay low-cardinality: outcomes, reasons, failure kinds and breaker states — never
URLs, endpoint ids or event ids. The dashboard and alert rules under
helm/layers-webhooks/files/ reference these names, and a test keeps them in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

# How a gauge of `serve --workers N` adds up over the live workers (prometheus_client's
# multiprocess mode; ignored in one process).
GaugeMode = Literal["livesum", "livemax"]

NAMESPACE = "webhooks"

# Attempt latency buckets (seconds): from a fast local receiver to the 15 s deadline.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    """`registry` holds this process's metrics; `exposed` is what `/metrics` serves: the same
    registry, or with `serve --workers N` every worker's metrics added up from the shared
    directory (`prometheus_client`'s multiprocess mode, PROMETHEUS_MULTIPROC_DIR)."""

    registry: CollectorRegistry
    exposed: CollectorRegistry
    events_consumed: Counter
    events_duplicate: Counter
    events_no_subscribers: Counter
    dead_letters: Counter
    deliveries_created: Counter
    deliveries_duplicate: Counter
    deliveries_finished: Counter
    attempts: Counter
    attempt_seconds: Histogram
    retries_scheduled: Counter
    deliveries_released: Counter
    in_flight: Gauge
    queued: Gauge
    breakers: Gauge
    endpoints_disabled: Counter
    operational_events: Counter
    consumer_lag: Gauge
    consumer_errors: Counter
    stale_results: Counter
    store_errors: Counter
    oldest_pending_seconds: Gauge
    replays: Counter
    api_requests: Counter

    @classmethod
    def create(
        cls, registry: CollectorRegistry | None = None, *, shared: Path | None = None
    ) -> Metrics:
        """`shared`: the multiprocess directory of `serve --workers N` (the supervisor sets
        PROMETHEUS_MULTIPROC_DIR to it in every worker's environment)."""
        registry = registry if registry is not None else CollectorRegistry()
        exposed = registry
        if shared is not None:
            exposed = CollectorRegistry()
            MultiProcessCollector(exposed, path=str(shared))  # type: ignore[no-untyped-call]

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=NAMESPACE, registry=registry)

        def gauge(
            name: str, doc: str, labels: tuple[str, ...] = (), mode: GaugeMode = "livesum"
        ) -> Gauge:
            return Gauge(
                name,
                doc,
                labels,
                namespace=NAMESPACE,
                registry=registry,
                multiprocess_mode=mode,
            )

        return cls(
            registry=registry,
            exposed=exposed,
            events_consumed=counter("events_consumed", "Kafka records consumed", ("topic",)),
            events_duplicate=counter(
                "events_duplicate", "Events already stored (re-published or re-consumed)"
            ),
            events_no_subscribers=counter(
                "events_no_subscribers", "Valid events that matched no endpoint"
            ),
            dead_letters=counter("dead_letters", "Records dead-lettered, by reason", ("reason",)),
            deliveries_created=counter(
                "deliveries_created", "Deliveries recorded, by initial status", ("status",)
            ),
            deliveries_duplicate=counter(
                "deliveries_duplicate", "(event, endpoint) pairs deduped at ingest"
            ),
            deliveries_finished=counter(
                "deliveries_finished",
                "Deliveries reaching a final status (succeeded, failed, suppressed)",
                ("status",),
            ),
            attempts=counter(
                "attempts", "Delivery attempts by outcome (success or failure kind)", ("outcome",)
            ),
            attempt_seconds=Histogram(
                "attempt_seconds",
                "Duration of one delivery attempt",
                namespace=NAMESPACE,
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            retries_scheduled=counter(
                "retries_scheduled", "Failed attempts put back on the ladder"
            ),
            deliveries_released=counter(
                "deliveries_released",
                "Leased deliveries handed back unattempted, by cause",
                ("cause",),
            ),
            in_flight=gauge("in_flight", "Delivery attempts in progress"),
            queued=gauge("queued", "Deliveries leased to this process waiting for a slot"),
            breakers=gauge("breakers", "Endpoint circuit breakers by state", ("state",)),
            endpoints_disabled=counter(
                "endpoints_disabled", "Endpoints disabled, by reason", ("reason",)
            ),
            operational_events=counter(
                "operational_events", "Operational events emitted, by type", ("type",)
            ),
            consumer_lag=gauge(
                "consumer_lag",
                "Records behind the log end on the partitions this replica owns, measured "
                "every 5 s (approximate on Tansu)",
            ),
            stale_results=counter(
                "stale_results",
                "Results, hand-backs and suppressions dropped: the delivery's lease was taken "
                "over since (by another replica, or after an outage longer than the lease)",
                ("operation",),
            ),
            consumer_errors=counter(
                "consumer_errors",
                "Kafka fetches that failed and were retried, by error type",
                ("error",),
            ),
            store_errors=counter(
                "store_errors", "Store operations that failed and were retried", ("operation",)
            ),
            oldest_pending_seconds=gauge(
                "oldest_pending_seconds", "Age of the oldest due pending delivery", mode="livemax"
            ),
            replays=counter("replays", "Deliveries re-queued by replay", ("kind",)),
            api_requests=counter(
                "api_requests", "HTTP API requests by route and status class", ("route", "code")
            ),
        )
