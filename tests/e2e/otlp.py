"""A real OTLP/HTTP trace receiver on 127.0.0.1, for the tracing tests.

It accepts `POST /v1/traces` as a collector does, decodes each `ExportTraceServiceRequest`
with `opentelemetry-proto` and keeps the spans as plain values (ids in hex, attributes as
Python values), so a test asserts on what actually crossed the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

Value = str | bool | int | float | bytes | list["Value"] | dict[str, "Value"] | None

KIND_INTERNAL = ProtoSpan.SpanKind.SPAN_KIND_INTERNAL
KIND_CLIENT = ProtoSpan.SpanKind.SPAN_KIND_CLIENT
KIND_CONSUMER = ProtoSpan.SpanKind.SPAN_KIND_CONSUMER


@dataclass(frozen=True)
class Link:
    trace_id: str
    span_id: str
    attributes: dict[str, Value]


@dataclass(frozen=True)
class SpanEvent:
    name: str
    attributes: dict[str, Value]


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Value]
    links: tuple[Link, ...]
    events: tuple[SpanEvent, ...]
    status_code: int  # 0 unset, 1 ok, 2 error
    resource: dict[str, Value]

    def strings(self) -> Iterator[str]:
        """Every text this span carries: name, attribute values of the span, its links, its
        events and its resource (what must never hold a secret)."""
        yield self.name
        for attributes in (
            self.attributes,
            self.resource,
            *(link.attributes for link in self.links),
            *(event.attributes for event in self.events),
        ):
            for key, value in attributes.items():
                yield key
                yield str(value)
        for event in self.events:
            yield event.name


def _value(value: AnyValue) -> Value:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    found: Value = getattr(value, which)
    return found


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Value]:
    return {pair.key: _value(pair.value) for pair in pairs}


class OtlpReceiver:
    """`async with OtlpReceiver() as otlp:` → `otlp.endpoint` for OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._changed = asyncio.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        self.requests += 1
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(_span(span, resource))
        self._changed.set()
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def named(self, name: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name == name]

    async def wait_until(self, condition: Callable[[], bool], within: float) -> bool:
        """Wait (bounded) until `condition()` holds; return whether it did."""
        deadline = time.monotonic() + within
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                continue
        return True

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _span(span: ProtoSpan, resource: dict[str, Value]) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        kind=span.kind,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        attributes=_attributes(span.attributes),
        links=tuple(
            Link(link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes))
            for link in span.links
        ),
        events=tuple(SpanEvent(e.name, _attributes(e.attributes)) for e in span.events),
        status_code=span.status.code,
        resource=resource,
    )
