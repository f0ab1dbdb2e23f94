"""The README's examples run as written (frameworks that are not installed are stand-ins)."""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from layers_webhooks import DuplicateMessageError, Webhook

from . import fake_frameworks
from .fake_frameworks import (
    CaseInsensitiveHeaders,
    DjangoRequest,
    HTTPError,
    StarletteRequest,
)
from .material import BODY, NEW_SECRET, README_PATH, signed

EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)```", re.S)
EXAMPLES = {m["name"]: m["code"] for m in EXAMPLE.finditer(README_PATH.read_text("utf-8"))}
EVENT_ID = json.loads(BODY)["id"]  # Layers sends the event id as webhook-id

ClientFactory = Callable[[Any], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def events() -> list[Any]:
    """What the examples' `handle_event` received."""
    return []


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, events: list[Any]) -> Callable[[str], dict[str, Any]]:
    """Execute one README example with the environment it documents; return its globals."""
    monkeypatch.setenv("LAYERS_WEBHOOK_SECRET", NEW_SECRET)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")

    def execute(name: str) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": f"readme_{name}", "handle_event": events.append}
        code = compile(EXAMPLES[name], f"verifier/README.md <example: {name}>", "exec")
        exec(code, namespace)  # noqa: S102 - the README's own example code
        return namespace

    return execute


def fresh(body: bytes = BODY) -> dict[str, str]:
    """Headers signed now, as Layers sends them (webhook-id = the event id)."""
    return signed(msg_id=EVENT_ID, timestamp=int(time.time()), body=body)


def test_every_example_is_run_by_a_test() -> None:
    """The README's tagged examples are exactly the ones exercised below."""
    assert set(EXAMPLES) == {
        "quickstart",
        "verify_at",
        "replay",
        "redis",
        "aiohttp",
        "flask",
        "fastapi",
        "django",
        "signing",
    }


def test_quickstart(run: Callable[[str], dict[str, Any]], events: list[Any]) -> None:
    """The quick start accepts a signed request (204) and rejects a tampered one (400)."""
    receive = run("quickstart")["receive"]
    assert receive(BODY, fresh()) == 204
    assert receive(BODY + b" ", fresh()) == 400
    assert events == [json.loads(BODY)]


@pytest.mark.parametrize("name", ["verify_at", "signing"])
def test_self_checking_examples(run: Callable[[str], dict[str, Any]], name: str) -> None:
    """Examples that assert their own results run without an AssertionError."""
    assert "assert" in EXAMPLES[name]
    run(name)


def test_replay_example(run: Callable[[str], dict[str, Any]], events: list[Any]) -> None:
    """A duplicate is acknowledged (200) unprocessed; a failed event's retry is let through."""
    namespace = run("replay")
    receive = namespace["receive"]
    headers = fresh()
    assert receive(BODY, headers) == 204
    assert receive(BODY, headers) == 200
    assert events == [json.loads(BODY)]

    failures: list[Any] = []

    def fail_once(event: Any) -> None:
        if not failures:
            failures.append(event)
            raise RuntimeError("database down")
        events.append(event)

    namespace["handle_event"] = fail_once
    other = BODY.replace(EVENT_ID.encode(), b"evt_2")
    retry = signed(msg_id="evt_2", timestamp=int(time.time()), body=other)
    assert receive(other, retry) == 500
    assert receive(other, retry) == 204
    assert events[-1]["id"] == "evt_2"


def test_redis_example(
    run: Callable[[str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store sends SET prefix+id 1 NX EX ceil(ttl); a repeat becomes a duplicate."""
    module, clients = fake_frameworks.redis()
    monkeypatch.setitem(sys.modules, "redis", module)
    wh: Webhook = run("redis")["wh"]
    stamp = int(time.time())
    headers = signed(msg_id=EVENT_ID, timestamp=stamp, body=BODY)
    wh.verify_at(BODY, headers, stamp + 0.5)
    with pytest.raises(DuplicateMessageError):
        wh.verify_at(BODY, headers, stamp + 1)
    [client] = clients
    assert client.url == "redis://127.0.0.1:6379/0"
    key = f"layers-webhooks:seen:{EVENT_ID}"
    assert client.calls == [(key, 1, True, math.ceil(299.5)), (key, 1, True, 299)]


async def test_aiohttp_example(
    run: Callable[[str], dict[str, Any]], events: list[Any], aiohttp_client: ClientFactory
) -> None:
    """The aiohttp recipe, served for real: 204 for a signed request, 400 for a tampered one."""
    client = await aiohttp_client(run("aiohttp")["app"])
    ok = await client.post("/webhooks/layers", data=BODY, headers=fresh())
    bad = await client.post("/webhooks/layers", data=BODY + b" ", headers=fresh())
    assert (ok.status, bad.status) == (204, 400)
    assert "no matching signature" in await bad.text()
    assert events == [json.loads(BODY)]


def test_flask_example(
    run: Callable[[str], dict[str, Any]], events: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Flask recipe verifies request.get_data() with EnvironHeaders; abort(400) otherwise."""
    module = fake_frameworks.flask()
    monkeypatch.setitem(sys.modules, "flask", module)
    view = run("flask")["app"].views["/webhooks/layers"]
    request = module.request
    request.body, request.headers = BODY, CaseInsensitiveHeaders(fresh(), "title")
    assert view() == ("", 204)
    request.body = BODY + b" "
    with pytest.raises(HTTPError) as caught:
        view()
    assert caught.value.status_code == 400
    assert events == [json.loads(BODY)]


async def test_fastapi_example(
    run: Callable[[str], dict[str, Any]], events: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FastAPI recipe verifies await request.body(); HTTPException(400) otherwise."""
    monkeypatch.setitem(sys.modules, "fastapi", fake_frameworks.fastapi())
    view = run("fastapi")["app"].views["/webhooks/layers"]
    assert await view(StarletteRequest(BODY, CaseInsensitiveHeaders(fresh(), "lower"))) is None
    with pytest.raises(HTTPError) as caught:
        await view(StarletteRequest(BODY + b" ", CaseInsensitiveHeaders(fresh(), "lower")))
    assert caught.value.status_code == 400
    assert "no matching signature" in caught.value.detail
    assert events == [json.loads(BODY)]


def test_django_example(
    run: Callable[[str], dict[str, Any]], events: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Django recipe verifies request.body with request.headers: 204, or 400."""
    for name, module in fake_frameworks.django().items():
        monkeypatch.setitem(sys.modules, name, module)
    view = run("django")["layers_webhook"]
    ok = view(DjangoRequest(BODY, CaseInsensitiveHeaders(fresh(), "title")))
    bad = view(DjangoRequest(BODY + b" ", CaseInsensitiveHeaders(fresh(), "title")))
    assert (ok.status_code, bad.status_code) == (204, 400)
    assert events == [json.loads(BODY)]
