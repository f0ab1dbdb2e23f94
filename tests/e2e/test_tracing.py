"""OpenTelemetry traces end to end: a real `webhooks serve` exporting over OTLP/HTTP to a
real receiver started here, which decodes the protobuf it is sent (never an in-memory
exporter)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from layers_webhooks import Webhook

from devtools.broker import free_port
from dispatcher.clock import new_id, random_bytes
from dispatcher.core.models import Endpoint, Organization
from dispatcher.core.scopes import KEY_ENTROPY_BYTES, Scope, hash_key, new_api_key
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from tests.e2e.harness import envelope, service_env
from tests.e2e.otlp import KIND_CLIENT, KIND_CONSUMER, KIND_INTERNAL, OtlpReceiver, ReceivedSpan
from tests.e2e.test_crash import wait_healthy

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WAIT = 60.0  # seconds: a bound for spans to arrive, not a speed assertion
ORG = "org_traced"
# The publisher's creation context, as its own tracing would put it on the Kafka record.
PUBLISHER_TRACE = "0af7651916cd43dd8448eb211c80319c"
PUBLISHER_SPAN = "b7ad6b7169203331"
PUBLISHER_TRACEPARENT = f"00-{PUBLISHER_TRACE}-{PUBLISHER_SPAN}-01"
# An endpoint URL whose path and query carry tokens: neither may reach a span.
PATH_TOKEN = "tok_pathsecret8d1f"
QUERY_TOKEN = "querysecret51c2"
DEAD_BODY = b'{"id": "evt_bad", "type": "content.generated", "note": "deadbodymarker"}'


@dataclass
class Hook:
    """The partner's endpoint: answers 503 to the first request, then 200; keeps headers."""

    secret: str
    requests: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        Webhook(self.secret).verify(body, request.headers)  # signer and verifier agree
        self.requests.append({k.lower(): v for k, v in request.headers.items()})
        self.bodies.append(body)
        self.arrived.set()
        return web.Response(status=503 if len(self.requests) == 1 else 200)

    async def wait_for(self, count: int) -> bool:
        for _ in range(int(WAIT / 0.25)):
            if len(self.requests) >= count:
                return True
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.25)
        return len(self.requests) >= count


@dataclass
class Traced:
    otlp: OtlpReceiver
    hook: Hook
    hook_port: int
    api: str
    key: str
    endpoint_id: str
    producer: AIOKafkaProducer
    topic: str
    process: subprocess.Popen[bytes]


@asynccontextmanager
async def traced_service(
    tmp_path: Path, kafka_bootstrap: str, *, propagate: bool
) -> AsyncIterator[Traced]:
    """`webhooks serve` (a child process) tracing to a local OTLP receiver, with one
    endpoint and one org key in its store."""
    port = free_port()
    env = service_env(
        f"sqlite:///{tmp_path / 'traced.db'}",
        kafka_bootstrap,
        WEBHOOKS_HTTP_PORT=str(port),
        WEBHOOKS_LOG_LEVEL="warning",
        WEBHOOKS_TRACE_PROPAGATION=str(propagate).lower(),
    )
    hook = Hook(new_endpoint_secret())
    app = web.Application()
    app.router.add_post("/{tail:.*}", hook.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_port = int(runner.addresses[0][1])
    async with OtlpReceiver() as otlp:
        env |= {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_SERVICE_NAME": "webhooks-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export every 100 ms
        }
        box = SecretBox.from_setting(env["WEBHOOKS_ENCRYPTION_KEY"])
        url = f"http://127.0.0.1:{hook_port}/hook/{PATH_TOKEN}?token={QUERY_TOKEN}"
        endpoint = Endpoint(id=new_id("ep"), organization_id=ORG, url=url)
        record, key = new_api_key(
            organization_id=ORG,
            scopes=[Scope.WEBHOOKS_READ, Scope.WEBHOOKS_WRITE],
            name="tracing",
            now=datetime.now(UTC),
            key_id=new_id("key"),
            entropy=random_bytes(KEY_ENTROPY_BYTES),
        )
        async with open_store(env["WEBHOOKS_DATABASE_URL"], secret_box=box) as store:
            await store.migrate()
            await store.put_organization(Organization(id=ORG))
            await store.create_endpoint(endpoint, hook.secret, now=datetime.now(UTC))
            await store.create_api_key(record, hash_key(key))
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        log = (tmp_path / "serve.log").open("ab")
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
            [sys.executable, "-m", "dispatcher", "serve"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            api = f"http://127.0.0.1:{port}"
            await wait_healthy(api, process)
            yield Traced(
                otlp,
                hook,
                hook_port,
                api,
                key,
                endpoint.id,
                producer,
                env["WEBHOOKS_KAFKA_TOPICS"],
                process,
            )
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            log.close()
            await producer.stop()
            await runner.cleanup()


async def _publish(traced: Traced) -> tuple[str, bytes]:
    event_id, body = envelope(ORG)
    await traced.producer.send_and_wait(
        traced.topic,
        body,
        key=ORG.encode(),
        headers=[("traceparent", PUBLISHER_TRACEPARENT.encode())],
    )
    return event_id, body


def _attempts(otlp: OtlpReceiver, event_id: str) -> list[ReceivedSpan]:
    found = [s for s in otlp.named("POST") if s.attributes.get("webhooks.event_id") == event_id]
    return sorted(found, key=lambda s: int(str(s.attributes["webhooks.attempt"])))


async def _post(traced: Traced, path: str, body: Mapping[str, object]) -> int:
    headers = {"Authorization": f"Bearer {traced.key}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{traced.api}{path}", data=orjson.dumps(body), headers=headers) as reply,
    ):
        return reply.status


async def test_batch_ingest_and_attempt_spans_reach_a_real_otlp_receiver(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A record with a `traceparent` yields a consumer batch span and an ingest span linked
    to the publisher's trace, and one CLIENT span per attempt with the HTTP conventions'
    attributes; propagation sends each attempt's own `traceparent`; replays are spans too;
    and no span carries the URL's path or query, the secret, a signature or the body."""
    async with traced_service(tmp_path, kafka_bootstrap, propagate=True) as traced:
        otlp, hook = traced.otlp, traced.hook
        event_id, body = await _publish(traced)
        assert await hook.wait_for(2)  # 503, then 200 on the retry
        await traced.producer.send_and_wait(traced.topic, DEAD_BODY, key=ORG.encode())
        assert await otlp.wait_until(lambda: len(_attempts(otlp, event_id)) == 2, WAIT)
        ingest = next(
            s
            for s in otlp.named("ingest content.generated")
            if s.attributes["messaging.message.id"] == event_id
        )
        [batch] = [s for s in otlp.spans if s.span_id == ingest.parent_span_id]

        # the batch: a CONSUMER span linked to the record's creation context
        assert batch.name == f"process {traced.topic}"
        assert batch.kind == KIND_CONSUMER
        assert batch.attributes["messaging.system"] == "kafka"
        assert batch.attributes["messaging.batch.message_count"] == 1
        assert (PUBLISHER_TRACE, PUBLISHER_SPAN) in {(x.trace_id, x.span_id) for x in batch.links}
        # the event: a child of its batch, linked to the publisher's trace
        assert ingest.kind == KIND_INTERNAL
        assert ingest.trace_id == batch.trace_id != PUBLISHER_TRACE
        assert [(x.trace_id, x.span_id) for x in ingest.links] == [
            (PUBLISHER_TRACE, PUBLISHER_SPAN)
        ]
        assert ingest.attributes["webhooks.deliveries"] == 1
        assert ingest.attributes["messaging.destination.name"] == traced.topic
        assert ingest.resource["service.name"] == "webhooks-under-test"
        # the bad record: a dead letter, told as an event of its batch's span
        assert await otlp.wait_until(
            lambda: any(e.name == "dead letter" for s in otlp.spans for e in s.events), WAIT
        )
        [dead] = [e for s in otlp.spans for e in s.events if e.name == "dead letter"]
        assert dead.attributes["webhooks.dead_letter.reason"] == "invalid_envelope"

        # the attempts: CLIENT spans with the HTTP client conventions and ours
        first, second = _attempts(otlp, event_id)
        for number, span in enumerate((first, second), start=1):
            assert span.kind == KIND_CLIENT
            assert span.attributes["http.request.method"] == "POST"
            assert span.attributes["server.address"] == "127.0.0.1"
            assert span.attributes["server.port"] == traced.hook_port
            assert span.attributes["webhooks.endpoint_id"] == traced.endpoint_id
            assert span.attributes["webhooks.attempt"] == number
            assert span.attributes["webhooks.event_type"] == "content.generated"
            assert str(span.attributes["webhooks.delivery_id"]).startswith("dlv_")
            assert [(x.trace_id, x.span_id) for x in span.links] == [
                (ingest.trace_id, ingest.span_id)
            ]
        assert first.attributes["http.response.status_code"] == 503
        assert first.attributes["error.type"] == "503"
        assert first.status_code == 2  # error
        assert second.attributes["http.response.status_code"] == 200
        assert "error.type" not in second.attributes
        assert second.attributes["http.request.resend_count"] == 1

        # propagation: each request carries its own attempt span's context, never the
        # publisher's trace id
        for request, span in zip(hook.requests, (first, second), strict=True):
            version, trace_id, span_id, flags = request["traceparent"].split("-")
            assert (version, trace_id, span_id) == ("00", span.trace_id, span.span_id)
            assert int(flags, 16) & 1  # sampled
        assert first.trace_id != second.trace_id != PUBLISHER_TRACE

        # replays: one delivery, then a bulk job with its progress
        delivery_id = str(first.attributes["webhooks.delivery_id"])
        replay = {"reason": "tracing test"}
        assert await _post(traced, f"/v1/deliveries/{delivery_id}/replay", replay) == 202
        assert await otlp.wait_until(lambda: bool(otlp.named("replay delivery")), WAIT)
        [single] = otlp.named("replay delivery")
        assert single.attributes["webhooks.delivery_id"] == delivery_id
        assert await hook.wait_for(3)
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        bulk = {**replay, "since": since, "status": ["succeeded"]}
        assert await _post(traced, f"/v1/webhooks/{traced.endpoint_id}/replay", bulk) == 202
        assert await otlp.wait_until(
            lambda: any(s.attributes.get("webhooks.replay.finished") for s in otlp.spans), WAIT
        )
        [job] = otlp.named("replay job")
        step = next(s for s in otlp.named("replay step") if s.attributes["webhooks.replay.done"])
        assert step.attributes["webhooks.replay_job_id"] == job.attributes["webhooks.replay_job_id"]
        assert step.attributes["webhooks.replay.processed"] == 1
        assert step.attributes["webhooks.replay.total"] == 1

        traced.process.send_signal(signal.SIGTERM)
        assert traced.process.wait(timeout=30) == 0
        signatures = [r["webhook-signature"].split(",", 1)[1] for r in hook.requests]
    forbidden = [
        PATH_TOKEN,
        QUERY_TOKEN,
        "/hook",
        hook.secret,
        hook.secret.removeprefix("whsec_"),
        traced.key,
        body.decode(),
        "deadbodymarker",
        *signatures,
    ]
    data = orjson.loads(body)["data"]
    forbidden += [v for k, v in data.items() if isinstance(v, str) and k != "organizationId"]
    texts = [text for span in otlp.spans for text in span.strings()]
    assert [(f, t) for f in forbidden for t in texts if f in t] == []


async def test_without_propagation_partners_get_no_traceparent(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """With WEBHOOKS_TRACE_PROPAGATION false (the default) attempts are still traced, but no
    request carries a `traceparent`."""
    async with traced_service(tmp_path, kafka_bootstrap, propagate=False) as traced:
        event_id, _ = await _publish(traced)
        assert await traced.hook.wait_for(2)
        assert await traced.otlp.wait_until(
            lambda: len(_attempts(traced.otlp, event_id)) == 2, WAIT
        )
        assert [r for r in traced.hook.requests if "traceparent" in r] == []


def test_without_otel_variables_nothing_of_opentelemetry_is_loaded() -> None:
    """No OTEL_* variable: the service and its tracing set-up load no OpenTelemetry module
    and install no tracer provider (a fresh interpreter, so nothing else loaded them)."""
    code = """
import asyncio, sys
from dispatcher import tracing
from dispatcher.service import Service
from dispatcher.settings import Settings

settings = Settings.from_env({"WEBHOOKS_TRACE_PROPAGATION": "true"})

async def main():
    async with tracing.installed(
        settings.tracing, propagate=True, consumer_group="g", version="0"
    ) as spans:
        print(spans, tracing.active)

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
from opentelemetry import trace
print(type(trace.get_tracer_provider()).__name__)
"""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["None None", "[]", "ProxyTracerProvider"]


def test_serve_asked_to_trace_without_the_sdk_says_so_in_one_line(tmp_path: Path) -> None:
    """`OTEL_TRACES_EXPORTER=otlp` without the [otel] extra: one line naming the variable and
    the extra, exit 2, no traceback (the SDK is hidden from a fresh interpreter)."""
    code = """
import sys

class WithoutTheSdk:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, WithoutTheSdk())
from dispatcher.__main__ import main
sys.exit(main(["serve"]))
"""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "WEBHOOKS_"))},
        "WEBHOOKS_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "WEBHOOKS_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "OTEL_TRACES_EXPORTER": "otlp",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "OTEL_TRACES_EXPORTER=otlp" in lines[0]
    assert "layers-webhooks-dispatcher[otel]" in lines[0]
