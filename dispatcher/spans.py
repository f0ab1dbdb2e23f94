"""Every span the service makes, named and filled in one place (README "Tracing").

Imported only when tracing is on (`dispatcher.tracing.installed`): it needs the `[otel]` extra.

    process {topic}   CONSUMER  one consumed batch: decoded, stored in one transaction,
                                committed; linked to each record's creation context
    ingest {type}     INTERNAL  one event stored with its deliveries; child of its batch and
                                linked to its record's creation context (the publisher's
                                `traceparent` header)
    POST              CLIENT    one delivery attempt (HTTP client conventions); a trace of
                                its own, linked to its event's ingest span when this
                                process stored the event
    replay …          INTERNAL  a single replay, a bulk job submitted, one step of a job

Why links rather than parents for the publisher's context (the messaging conventions: a
consumer span "SHOULD link to the message's creation context", a parent is optional): a batch
holds many publishers' records, and a child span would let each publisher's sampling decide
ours. Why an attempt starts its own trace: a retry may come hours later in another replica,
and the `traceparent` sent to partners (WEBHOOKS_TRACE_PROPAGATION) then carries no
publisher's trace id.

Never in an attribute: a URL's path, query or credentials (endpoint paths often carry a
token, so `url.full` is left out: `server.address`, `server.port` and `url.scheme` say where),
a secret, a signature, a body, a response, a reason text.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dispatcher.core.models import AttemptOutcome, Claim, FailureKind
from dispatcher.core.plan import Plan

Attributes = Mapping[str, str | int | bool]
Position = tuple[str, int, int]  # a record's topic, partition and offset

SERVICE_NAME: Final = "layers-webhooks"  # unless OTEL_SERVICE_NAME (or the resource) says
_ROOT: Final = Context()  # a span started in it begins a trace of its own
_W3C: Final = TraceContextTextMapPropagator()
_REMEMBERED: Final = 4096  # ingest span contexts kept for the attempts' links
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_REPLAY_NAMES: Final = {"single": "replay delivery", "bulk": "replay job", "step": "replay step"}


def provider_for(exporters: Sequence[str], *, version: str) -> TracerProvider:
    """The SDK's provider, one batching processor per exporter; set process-wide. The SDK
    reads its own variables: the sampler, the resource, the endpoint, the batch schedule."""
    resource = Resource.create({"service.version": version})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def creation_link(headers: Sequence[tuple[str, bytes]] | None) -> Link | None:
    """A link to the creation context a Kafka record carries (W3C `traceparent`), if any."""
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        if key.lower() in ("traceparent", "tracestate") and value:
            carrier[key.lower()] = value.decode("ascii", "replace")
    if "traceparent" not in carrier:
        return None
    context = trace.get_current_span(_W3C.extract(carrier)).get_span_context()
    return Link(context) if context.is_valid else None


@functools.lru_cache(maxsize=4096)  # endpoints' URLs repeat; callers copy, never mutate
def destination(url: str) -> Mapping[str, str | int]:
    """`server.address`, `server.port` and `url.scheme` of an endpoint URL: nothing of its
    credentials, path, query or fragment."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    if not host:
        return {}
    port = port or _DEFAULT_PORTS.get(parts.scheme)
    found: dict[str, str | int] = {"server.address": host, "url.scheme": parts.scheme}
    if port is not None:
        found["server.port"] = port
    return found


class Spans:
    """The span factory `dispatcher.tracing.active` holds while tracing is on."""

    def __init__(self, provider: TracerProvider, *, propagate: bool, consumer_group: str) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("dispatcher")
        self._propagate = propagate
        self._group = consumer_group
        # The batch in progress (the consumer holds one at a time, under its batch lock).
        self._batch: Span | None = None
        self._links: dict[Position, Link] = {}
        self._origins: dict[str, Position] = {}  # event id → its record, in that batch
        self._ingested: dict[str, SpanContext] = {}  # event id → its ingest span (bounded)

    def close(self, timeout: float) -> None:
        """Export what is buffered (within `timeout` seconds), then stop the processors."""
        self._provider.force_flush(int(timeout * 1000))
        self._provider.shutdown()

    # -- consuming ----------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self, batches: Mapping[Any, Sequence[Any]]) -> Iterator[None]:
        """The span of one consumed batch, around the consumer's `process`."""
        topics: set[str] = set()
        count = 0
        links: dict[Position, Link] = {}
        for records in batches.values():
            for record in records:
                count += 1
                topics.add(record.topic)
                link = creation_link(record.headers)
                if link is not None:
                    links[(record.topic, record.partition, record.offset)] = link
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.batch.message_count": count,
            "messaging.consumer.group.name": self._group,
        }
        name = "process"
        if len(topics) == 1:
            attributes["messaging.destination.name"] = name_ = next(iter(topics))
            name = f"process {name_}"
        span = self._tracer.start_span(
            name,
            context=_ROOT,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=list(links.values()),
        )
        self._batch, self._links, self._origins = span, links, {}
        try:
            yield
        except BaseException as exc:
            _failed(span, type(exc).__qualname__)
            raise
        finally:
            self._batch, self._links, self._origins = None, {}, {}
            span.end()

    def received(self, event_id: str, record: Any) -> None:
        """The consumer decoded `record` into the event `event_id` (for the ingest span)."""
        if self._batch is not None:
            self._origins[event_id] = (record.topic, record.partition, record.offset)

    def ingested(
        self, planned: Plan, *, created: frozenset[str], new_events: frozenset[str], started: int
    ) -> None:
        """One span per event of a stored batch (they share its transaction's duration),
        plus the dead letters as events of the batch span. `created` and `new_events` are
        what the store inserted (the rest were duplicates)."""
        ended = time.time_ns()
        per_event = Counter(d.event_id for d in planned.batch.deliveries if d.id in created)
        batch = self._batch
        from_batch = 0  # an API ingest (send-test, a retried dead letter) may overlap a batch
        for event in planned.batch.events:
            attributes: dict[str, str | int | bool] = {
                "messaging.message.id": event.id,
                "webhooks.event_type": event.type,
                "webhooks.organization_id": event.organization_id,
                "webhooks.deliveries": per_event[event.id],
                "webhooks.duplicate": event.id not in new_events,
            }
            parent, links = _ROOT, []
            position = self._origins.pop(event.id, None)
            if position is not None and batch is not None:
                from_batch += 1
                parent = trace.set_span_in_context(batch)
                attributes["messaging.destination.name"] = position[0]
                attributes["messaging.destination.partition.id"] = str(position[1])
                attributes["messaging.kafka.offset"] = position[2]
                if (link := self._links.get(position)) is not None:
                    links.append(link)
            span = self._tracer.start_span(
                f"ingest {event.type}",
                context=parent,
                attributes=attributes,
                links=links,
                start_time=started,
            )
            span.end(end_time=ended)
            self._remember(event.id, span.get_span_context())
        if batch is not None and from_batch:
            batch.set_attribute("webhooks.events", from_batch)
        if batch is not None:  # only the consumer ingests dead letters
            for dead in planned.batch.dead_letters:
                batch.add_event(
                    "dead letter",
                    {
                        "webhooks.dead_letter.reason": dead.reason,
                        "messaging.destination.name": dead.topic,
                        "messaging.destination.partition.id": str(dead.partition),
                        "messaging.kafka.offset": dead.offset,
                    },
                )

    def _remember(self, event_id: str, context: SpanContext) -> None:
        remembered = self._ingested
        remembered[event_id] = context
        if len(remembered) > _REMEMBERED:
            del remembered[next(iter(remembered))]  # the oldest

    # -- delivering ---------------------------------------------------------------------

    def attempt(self, claim: Claim, url: str) -> AttemptSpan:
        """The span of one delivery attempt (enter it around the request)."""
        attempt = claim.attempt
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            **destination(url),
            "webhooks.endpoint_id": claim.endpoint_id,
            "webhooks.delivery_id": claim.delivery_id,
            "webhooks.event_id": claim.event_id,
            "webhooks.event_type": claim.event_type,
            "webhooks.attempt": attempt,
        }
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        ingest = self._ingested.get(claim.event_id)
        span = self._tracer.start_span(
            "POST",
            context=_ROOT,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            links=[Link(ingest)] if ingest is not None else None,
        )
        headers: dict[str, str] | None = None
        if self._propagate:
            headers = {}
            _W3C.inject(headers, context=trace.set_span_in_context(span, _ROOT))
        return AttemptSpan(span, headers)

    # -- replaying ----------------------------------------------------------------------

    @contextlib.contextmanager
    def replay(self, kind: str, attributes: Attributes) -> Iterator[Noted]:
        span = self._tracer.start_span(
            _REPLAY_NAMES[kind],
            context=_ROOT,
            attributes={"webhooks.replay.kind": kind, **attributes},
        )
        try:
            yield Noted(span)
        except BaseException as exc:
            _failed(span, type(exc).__qualname__)
            raise
        finally:
            span.end()


class AttemptSpan:
    """One attempt's span: `headers` to add to the request (a `traceparent` when propagation
    is on), `finish(outcome)` with what happened."""

    __slots__ = ("_span", "headers")

    def __init__(self, span: Span, headers: dict[str, str] | None) -> None:
        self._span = span
        self.headers = headers

    def __enter__(self) -> Self:
        return self

    def finish(self, outcome: AttemptOutcome) -> None:
        span = self._span
        if outcome.status_code is not None:
            span.set_attribute("http.response.status_code", outcome.status_code)
        if outcome.failure is not None:
            # HTTP conventions: the status code for an error status, else a low-cardinality
            # identifier of what failed (ours: the failure kind, as in the metrics).
            http_error = outcome.failure is FailureKind.HTTP_STATUS and outcome.status_code
            _failed(span, str(outcome.status_code) if http_error else str(outcome.failure))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:  # cancelled at shutdown, or a caller's bug
            _failed(self._span, exc_type.__qualname__)
        self._span.end()


class Noted:
    """A replay's span, taking the progress learnt on the way."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def note(self, attributes: Attributes) -> None:
        self._span.set_attributes(dict(attributes))


def _failed(span: Span, error_type: str) -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR))
