"""OpenTelemetry traces: off unless asked for, configured by OpenTelemetry's own variables.

`TracingConfig.from_env` reads only the variables that decide whether and how to trace —
`OTEL_TRACES_EXPORTER`, `OTEL_SDK_DISABLED`, the OTLP protocol and the sampler — and reports
bad ones together with the `WEBHOOKS_*` settings (`Settings.from_env`). The SDK reads the
rest itself (`OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_BSP_*`…), as its documentation says.

Off (the default: no exporter named) nothing of OpenTelemetry is even imported and `active`
is None, so each traced place costs one `is None` test. On, `installed()` builds the SDK's
`TracerProvider` (the process-wide one, as OpenTelemetry expects) with a batching processor per
exporter, and `active` holds the `Spans` (`dispatcher.spans`) that name and fill every span.
The SDK and the exporter are the `[otel]` extra; only this module and `dispatcher.spans`
import OpenTelemetry (an import-linter contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from dispatcher.errors import ConfigurationError, SettingsError

if TYPE_CHECKING:
    from dispatcher.spans import Spans

log = logging.getLogger(__name__)

EXPORTERS: Final = ("otlp", "console")  # `none` (or nothing) turns tracing off
SAMPLERS: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_RATIO_SAMPLERS: Final = ("traceidratio", "parentbased_traceidratio")
OTLP_PROTOCOL: Final = "http/protobuf"  # the one the [otel] extra's exporter speaks
EXTRA: Final = "pip install 'layers-webhooks-dispatcher[otel]'"
FLUSH_SECONDS: Final = 5.0  # the last spans' export at shutdown, at most

# The installed span factory, None while tracing is off. Process-wide like OpenTelemetry's
# own tracer provider: set once by `installed()` at start-up, cleared at shutdown.
active: Spans | None = None


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """Which exporters to build; none means tracing is off."""

    exporters: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TracingConfig:
        """Read the deciding `OTEL_*` variables; raise SettingsError naming each bad one."""
        problems: list[str] = []
        raw = environ.get("OTEL_TRACES_EXPORTER", "")
        names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
        unknown = [n for n in names if n not in (*EXPORTERS, "none")]
        if unknown:
            problems.append(
                f"OTEL_TRACES_EXPORTER={raw!r}: {', '.join(unknown)} is not supported "
                f"(use {', '.join(EXPORTERS)} or none)"
            )
        exporters = tuple(n for n in names if n in EXPORTERS)
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            exporters = ()
        if "otlp" in exporters:
            for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
                protocol = environ.get(var, "").strip()
                if protocol and protocol != OTLP_PROTOCOL:
                    problems.append(f"{var}={protocol!r}: only {OTLP_PROTOCOL} is supported")
        if exporters:
            problems += _sampler_problems(environ)
        if problems:
            raise SettingsError(problems)
        return cls(exporters=exporters)

    def missing_sdk(self) -> str | None:
        """Why this configuration cannot run here (the [otel] extra is not installed)."""
        if not self.enabled:
            return None
        needed = ["opentelemetry.sdk.trace"]
        if "otlp" in self.exporters:
            needed.append("opentelemetry.exporter.otlp.proto.http")
        if all(_importable(module) for module in needed):
            return None
        return (
            f"OTEL_TRACES_EXPORTER={','.join(self.exporters)} needs the OpenTelemetry SDK and "
            f"exporter, which are not installed: {EXTRA}"
        )


def _sampler_problems(environ: Mapping[str, str]) -> list[str]:
    sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler and sampler not in SAMPLERS:
        return [f"OTEL_TRACES_SAMPLER={sampler!r}: use one of {', '.join(SAMPLERS)}"]
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if sampler in _RATIO_SAMPLERS and arg:
        try:
            ratio = float(arg)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            return [f"OTEL_TRACES_SAMPLER_ARG={arg!r}: a ratio in [0, 1]"]
    return []


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


@contextlib.asynccontextmanager
async def installed(
    config: TracingConfig, *, propagate: bool, consumer_group: str, version: str
) -> AsyncIterator[Spans | None]:
    """Tracing for the life of the service: set up on entry (nothing at all when off),
    the last spans flushed and the provider shut down on exit."""
    global active  # the process-wide switch this module documents
    if not config.enabled:
        if propagate:
            log.warning("WEBHOOKS_TRACE_PROPAGATION has no effect: tracing is off")
        yield None
        return
    problem = config.missing_sdk()
    if problem is not None:
        raise ConfigurationError(problem)
    from dispatcher.spans import Spans, provider_for

    provider = provider_for(config.exporters, version=version)
    spans = Spans(provider, propagate=propagate, consumer_group=consumer_group)
    active = spans
    log.info("tracing on", extra={"exporters": list(config.exporters), "propagate": propagate})
    try:
        yield spans
    finally:
        active = None
        # The export is blocking I/O (the exporter's own HTTP client): off the event loop.
        await asyncio.to_thread(spans.close, FLUSH_SECONDS)


# -- the traced places call these; each is one `is None` test while tracing is off --------

S = TypeVar("S")
B = TypeVar("B", bound=Mapping[Any, Sequence[Any]])
R = TypeVar("R")


def consumed(method: Callable[[S, B], Awaitable[R]]) -> Callable[[S, B], Awaitable[R]]:
    """Decorate the consumer's `process(batches)`: one span per consumed batch."""

    @functools.wraps(method)
    async def traced(self: S, batches: B) -> R:
        spans = active
        if spans is None:
            return await method(self, batches)
        with spans.batch(batches):
            return await method(self, batches)

    return traced


Attributes = Mapping[str, str | int | bool]


class Noted(Protocol):
    """A span that takes attributes learnt on the way (a replay step's progress)."""

    def note(self, attributes: Attributes) -> None: ...


class _Untraced:
    def note(self, attributes: Attributes) -> None:
        pass


_OFF: Final = contextlib.nullcontext(_Untraced())


def replay(kind: str, attributes: Attributes) -> contextlib.AbstractContextManager[Noted]:
    """A span around one replay: `single` (one delivery), `bulk` (a job submitted) or `step`
    (one batch of a job drained). Attributes are ids and counts, never the reason text."""
    spans = active
    return _OFF if spans is None else spans.replay(kind, attributes)
