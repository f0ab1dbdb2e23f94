"""Configuration: `WEBHOOKS_*` environment variables, read once into a frozen `Settings`.

`Settings.from_env(environ)` parses every variable and reports every bad one at once
(`SettingsError.problems`). Nothing else in the service reads `os.environ`. The README's
configuration table is generated from `FIELDS` (and a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dispatcher.core.destinations import parse_cidr_list
from dispatcher.errors import ConfigurationError, SettingsError
from dispatcher.setting_values import (
    Network,
    boolean,
    check_database_url,
    encryption_key_text,
    fraction,
    log_level,
    parse_list,
    parse_schedule,
    port,
    positive_duration,
    positive_int,
    public_url,
    text_value,
    worker_count,
)
from dispatcher.tracing import TracingConfig


@dataclass(frozen=True, slots=True)
class Field:
    """One `WEBHOOKS_*` variable: its attribute, default, parser and documentation."""

    env: str
    attr: str
    default: str
    parse: Callable[[str], Any]
    doc: str


_NEVER_ECHOED = frozenset({"encryption_key", "database_url"})

FIELDS: tuple[Field, ...] = (
    Field(
        "WEBHOOKS_DATABASE_URL",
        "database_url",
        "sqlite:///webhooks.db",
        check_database_url,
        "`sqlite:///path` (embedded, one node) or `postgresql://…` (production, many replicas).",
    ),
    Field(
        "WEBHOOKS_ENCRYPTION_KEY",
        "encryption_key",
        "",
        encryption_key_text,
        "Standard base64 of 32 random bytes; a comma list rotates keys (first encrypts, all "
        "decrypt). Required by `serve`; `dev`/`demo` generate one.",
    ),
    Field(
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS",
        "kafka_bootstrap_servers",
        "",
        text_value,
        "Kafka bootstrap servers (`host:port,…`). Required by `serve`; `dev`/`demo` start "
        "an embedded Tansu broker when empty.",
    ),
    Field(
        "WEBHOOKS_KAFKA_TOPICS",
        "kafka_topics",
        "layers.events",
        parse_list,
        "Comma list of topics to consume.",
    ),
    Field(
        "WEBHOOKS_KAFKA_GROUP",
        "kafka_group",
        "layers-webhooks",
        text_value,
        "Consumer group id; replicas in one group share the partitions.",
    ),
    Field(
        "WEBHOOKS_KAFKA_SESSION_TIMEOUT",
        "kafka_session_timeout",
        "10s",
        positive_duration,
        "Consumer group session timeout.",
    ),
    Field(
        "WEBHOOKS_KAFKA_BATCH_SIZE",
        "kafka_batch_size",
        "500",
        positive_int,
        "Most records read and persisted per consumer batch (one transaction).",
    ),
    Field(
        "WEBHOOKS_MAX_EVENT_BYTES",
        "max_event_bytes",
        "262144",
        positive_int,
        "Largest accepted record value, checked before parsing (larger → dead letter).",
    ),
    Field(
        "WEBHOOKS_RETRY_SCHEDULE",
        "retry_schedule",
        "5s,5m,30m,2h,5h,10h,10h",
        parse_schedule,
        "Delays between attempts; attempt 1 is immediate, so the default makes 8 attempts.",
    ),
    Field(
        "WEBHOOKS_RETRY_JITTER",
        "retry_jitter",
        "0.2",
        fraction,
        "Relative jitter applied to each retry delay (0.2 = ±20 %).",
    ),
    Field(
        "WEBHOOKS_DELIVERY_TIMEOUT",
        "delivery_timeout",
        "15s",
        positive_duration,
        "Total deadline of one attempt: connect + send + response.",
    ),
    Field(
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS",
        "allow_private_networks",
        "",
        parse_cidr_list,
        "CIDR list of non-public networks endpoints may use (default none). The only "
        "escape hatch from the destination guard.",
    ),
    Field(
        "WEBHOOKS_MAX_IN_FLIGHT",
        "max_in_flight",
        "512",
        positive_int,
        "Global cap on concurrent delivery attempts.",
    ),
    Field(
        "WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT",
        "max_in_flight_per_endpoint",
        "32",
        positive_int,
        "Per-endpoint cap on concurrent delivery attempts.",
    ),
    Field(
        "WEBHOOKS_BREAKER_THRESHOLD",
        "breaker_threshold",
        "10",
        positive_int,
        "Consecutive failed attempts that open an endpoint's circuit breaker.",
    ),
    Field(
        "WEBHOOKS_BREAKER_COOLDOWN",
        "breaker_cooldown",
        "30s",
        positive_duration,
        "How long an open breaker waits before letting one probe attempt through; each failed "
        "probe doubles the wait, up to 10 minutes.",
    ),
    Field(
        "WEBHOOKS_DISABLE_AFTER",
        "disable_after",
        "5d",
        positive_duration,
        "Disable an endpoint with no success for this long while deliveries keep failing.",
    ),
    Field(
        "WEBHOOKS_RETENTION",
        "retention",
        "30d",
        positive_duration,
        "How long events, deliveries, attempts, dead letters and finished replay jobs are "
        "kept (events are deduped that long); an event with a pending delivery stays until "
        "it finishes.",
    ),
    Field(
        "WEBHOOKS_LEASE",
        "lease",
        "60s",
        positive_duration,
        "How long a claimed delivery stays leased to one process before another may take "
        "it over (must exceed the delivery timeout).",
    ),
    Field(
        "WEBHOOKS_POLL_INTERVAL",
        "poll_interval",
        "1s",
        positive_duration,
        "Longest sleep of the retry poller between looks for due deliveries.",
    ),
    Field(
        "WEBHOOKS_SHUTDOWN_TIMEOUT",
        "shutdown_timeout",
        "20s",
        positive_duration,
        "Deadline for draining in-flight attempts on SIGTERM.",
    ),
    Field(
        "WEBHOOKS_REPLAY_RATE",
        "replay_rate",
        "50",
        positive_int,
        "Deliveries per second a bulk replay job re-queues (so a recovering endpoint is "
        "not flattened).",
    ),
    Field(
        "WEBHOOKS_API_RATE_LIMIT",
        "api_rate_limit",
        "20",
        positive_int,
        "Mutating API requests per second per key (burst of twice that).",
    ),
    Field(
        "WEBHOOKS_WORKERS",
        "workers",
        "auto",
        worker_count,
        "Processes `serve` runs (`serve --workers N` sets it), supervised, behind one HTTP "
        "address; each consumes, delivers and counts as a replica. `auto`: the cores usable "
        "(a container CPU limit counts).",
    ),
    Field(
        "WEBHOOKS_HTTP_HOST",
        "http_host",
        "127.0.0.1",
        text_value,
        "Address the HTTP API, health and metrics listen on (`0.0.0.0` in containers).",
    ),
    Field("WEBHOOKS_HTTP_PORT", "http_port", "8080", port, "Port of the HTTP server."),
    Field(
        "WEBHOOKS_PUBLIC_URL",
        "public_url",
        "",
        public_url,
        "The URL browsers reach the service at (`https://webhooks.example.com`): portal links "
        "start with it, and an `https` URL marks portal cookies `Secure` (set it behind a "
        "TLS-terminating proxy). Empty: the minting request's own scheme and Host.",
    ),
    Field(
        "WEBHOOKS_INSTANCE_ID",
        "instance_id",
        "",
        text_value,
        "Name of this replica in leases and logs (default: host name and process id).",
    ),
    Field(
        "WEBHOOKS_TRACE_PROPAGATION",
        "trace_propagation",
        "false",
        boolean,
        "`true` adds a W3C `traceparent` header (the attempt's own trace) to every webhook. "
        "Off, partners see no tracing ids. Needs tracing on (`OTEL_TRACES_EXPORTER`).",
    ),
    Field(
        "WEBHOOKS_LOG_LEVEL",
        "log_level",
        "info",
        log_level,
        "debug, info, warning or error. Logs are JSON lines on stderr.",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    database_url: str
    encryption_key: str
    kafka_bootstrap_servers: str
    kafka_topics: tuple[str, ...]
    kafka_group: str
    kafka_session_timeout: float
    kafka_batch_size: int
    max_event_bytes: int
    retry_schedule: tuple[float, ...]
    retry_jitter: float
    delivery_timeout: float
    allow_private_networks: tuple[Network, ...]
    max_in_flight: int
    max_in_flight_per_endpoint: int
    breaker_threshold: int
    breaker_cooldown: float
    disable_after: float
    retention: float
    lease: float
    poll_interval: float
    shutdown_timeout: float
    replay_rate: int
    api_rate_limit: int
    workers: int
    http_host: str
    http_port: int
    public_url: str
    instance_id: str
    trace_propagation: bool
    log_level: str
    # Not a WEBHOOKS_* variable: OpenTelemetry's own (dispatcher.tracing), checked here too.
    tracing: TracingConfig = TracingConfig()  # noqa: RUF009 - frozen: sharing it is safe

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.attr}={'<redacted>' if f.attr == 'encryption_key' else getattr(self, f.attr)!r}"
            for f in FIELDS
        )
        return f"Settings({shown})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Parse every `WEBHOOKS_*` variable; raise SettingsError naming each bad one."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in FIELDS:
            raw = environ.get(field.env, field.default)
            try:
                values[field.attr] = field.parse(raw)
            except (ValueError, ConfigurationError) as exc:
                # A key or a URL with a password is never echoed; other values are.
                shown = field.env if field.attr in _NEVER_ECHOED else f"{field.env}={raw!r}"
                problems.append(f"{shown}: {exc}")
        try:
            values["tracing"] = TracingConfig.from_env(environ)
        except SettingsError as exc:
            problems += exc.problems
        values.update(overrides)
        if {"lease", "delivery_timeout"} <= values.keys() and (
            values["lease"] <= values["delivery_timeout"]
        ):
            problems.append(
                f"WEBHOOKS_LEASE ({values['lease']:g}s) must be longer than "
                f"WEBHOOKS_DELIVERY_TIMEOUT ({values['delivery_timeout']:g}s)"
            )
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    def require_production(self) -> None:
        """`webhooks serve` refuses to start without a broker and an encryption key (or
        asked to trace without the OpenTelemetry SDK installed)."""
        problems = []
        if not self.encryption_key:
            problems.append("WEBHOOKS_ENCRYPTION_KEY is required by `serve` (base64 of 32 bytes)")
        if not self.kafka_bootstrap_servers:
            problems.append("WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS is required by `serve`")
        if (missing := self.tracing.missing_sdk()) is not None:
            problems.append(missing)
        if problems:
            raise SettingsError(problems)


def markdown_table() -> str:
    """The README's configuration table, generated from FIELDS (a test keeps them equal)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in FIELDS:
        default = f"`{field.default}`" if field.default else "—"
        rows.append(f"| `{field.env}` | {default} | {field.doc} |")
    return "\n".join(rows)
