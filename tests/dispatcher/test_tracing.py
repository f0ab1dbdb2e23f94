"""Tracing's configuration and what an attempt span may say about a URL (the spans
themselves are tested end to end against a real OTLP receiver: tests/e2e/test_tracing.py)."""

from __future__ import annotations

import pytest

from dispatcher.errors import SettingsError
from dispatcher.settings import Settings
from dispatcher.spans import creation_link, destination
from dispatcher.tracing import TracingConfig


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, ()),
        ({"OTEL_TRACES_EXPORTER": "none"}, ()),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": " OTLP , console,otlp"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, ()),
        # an endpoint alone does not switch tracing on: only naming an exporter does
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ()),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
         ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio",
          "OTEL_TRACES_SAMPLER_ARG": "0.25"}, ("otlp",)),
    ],
)  # fmt: skip
def test_tracing_is_on_only_when_an_exporter_is_named(
    environ: dict[str, str], exporters: tuple[str, ...]
) -> None:
    """OTEL_TRACES_EXPORTER decides (off unless set); OTEL_SDK_DISABLED wins."""
    config = TracingConfig.from_env(environ)
    assert config.exporters == exporters
    assert config.enabled is bool(exporters)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER='jaeger': jaeger is not"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
         "OTEL_EXPORTER_OTLP_PROTOCOL='grpc': only http/protobuf"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='http/json': only http/protobuf"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "sometimes"},
         "OTEL_TRACES_SAMPLER='sometimes': use one of always_on"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio",
          "OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG='1.5': a ratio in [0, 1]"),
    ],
)  # fmt: skip
def test_a_bad_tracing_variable_is_named(environ: dict[str, str], problem: str) -> None:
    """What the SDK would silently ignore or fall back from is refused, naming the value."""
    with pytest.raises(SettingsError) as caught:
        TracingConfig.from_env(environ)
    [said] = caught.value.problems
    assert said.startswith(problem)


def test_tracing_problems_come_with_the_other_settings() -> None:
    """A bad OTEL_* variable is reported in the same message as a bad WEBHOOKS_* one."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"WEBHOOKS_TRACE_PROPAGATION": "maybe", "OTEL_TRACES_EXPORTER": "zipkin"})
    assert [p.split("=")[0] for p in caught.value.problems] == [
        "WEBHOOKS_TRACE_PROPAGATION",
        "OTEL_TRACES_EXPORTER",
    ]


def test_trace_propagation_is_off_by_default() -> None:
    """Partners see no tracing ids unless WEBHOOKS_TRACE_PROPAGATION says otherwise."""
    assert Settings.from_env({}).trace_propagation is False
    assert Settings.from_env({"WEBHOOKS_TRACE_PROPAGATION": "true"}).trace_propagation is True


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/services/T0/B0/s3cr3t?token=abc",
         {"server.address": "hooks.example.com", "server.port": 443, "url.scheme": "https"}),
        ("http://127.0.0.1:8123/hook?x=1#frag",
         {"server.address": "127.0.0.1", "server.port": 8123, "url.scheme": "http"}),
        ("https://user:password@Example.COM:8443/p",
         {"server.address": "example.com", "server.port": 8443, "url.scheme": "https"}),
        ("https://[2001:db8::1]/hook",
         {"server.address": "2001:db8::1", "server.port": 443, "url.scheme": "https"}),
        ("https://example.com:99999/", {}),
        ("not a url", {}),
    ],
)  # fmt: skip
def test_an_attempt_span_names_the_server_and_nothing_else_of_the_url(
    url: str, expected: dict[str, object]
) -> None:
    """Host, port and scheme only: never credentials, a path (endpoint paths carry tokens),
    a query or a fragment."""
    assert destination(url) == expected


@pytest.mark.parametrize(
    ("headers", "linked"),
    [
        ([("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
         ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")),
        ([("TraceParent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")],
         ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")),
        ([("traceparent", b"00-00000000000000000000000000000000-b7ad6b7169203331-01")], None),
        ([("traceparent", b"garbage")], None),
        ([("other", b"x")], None),
        (None, None),
    ],
)  # fmt: skip
def test_a_records_creation_context_is_read_from_its_traceparent_header(
    headers: list[tuple[str, bytes]] | None, linked: tuple[str, str] | None
) -> None:
    """A valid W3C `traceparent` on a Kafka record becomes a link; anything else none."""
    link = creation_link(headers)
    found = None if link is None else (
        f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}"
    )  # fmt: skip
    assert found == linked
