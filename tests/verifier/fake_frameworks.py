"""Stand-ins for the parts of Flask, FastAPI, Django and redis-py the README recipes use.

Those frameworks are not dependencies of this repository, so the README's recipes run
against these modules instead. Each mimics what the recipe relies on: how the framework
exposes the raw body and the headers (with the framework's own letter case in `.items()`),
how a route is registered, and how an error response is produced.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class CaseInsensitiveHeaders(Mapping[str, str]):
    """The header objects of Django (request.headers), Werkzeug/Flask and Starlette/FastAPI.

    All three look names up case-insensitively; they differ in how `.items()` spells the
    names, which `spelling` reproduces (Title-Case for Django and Werkzeug, lower case for
    Starlette).
    """

    def __init__(self, headers: Mapping[str, str], spelling: str) -> None:
        self._headers = {key.lower(): value for key, value in headers.items()}
        self._spell = str.title if spelling == "title" else str.lower

    def __getitem__(self, key: str) -> str:
        return self._headers[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (self._spell(key) for key in self._headers)

    def __len__(self) -> int:
        return len(self._headers)


class Routes:
    """`app.post(path, **options)` decorators that record the view per path."""

    def __init__(self, *_: object) -> None:
        self.views: dict[str, Callable[..., Any]] = {}

    def post(self, path: str, **_: object) -> Callable[[F], F]:
        def register(view: F) -> F:
            self.views[path] = view
            return view

        return register


class HTTPError(Exception):
    """What `flask.abort(400)` and `fastapi.HTTPException(400)` raise."""

    def __init__(self, status_code: int, detail: str = "") -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail


@dataclass
class FlaskRequest:
    """`flask.request`: get_data() is the raw body; headers are EnvironHeaders."""

    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def get_data(self) -> bytes:
        return self.body


def flask() -> types.ModuleType:
    module = types.ModuleType("flask")
    module.Flask = Routes  # type: ignore[attr-defined]
    module.request = FlaskRequest()  # type: ignore[attr-defined]

    def abort(status: int) -> None:
        raise HTTPError(status)

    module.abort = abort  # type: ignore[attr-defined]
    return module


@dataclass
class StarletteRequest:
    """`fastapi.Request`: `await request.body()` is the raw body."""

    raw: bytes
    headers: Mapping[str, str]

    async def body(self) -> bytes:
        return self.raw


def fastapi() -> types.ModuleType:
    module = types.ModuleType("fastapi")
    module.FastAPI = Routes  # type: ignore[attr-defined]
    module.HTTPException = HTTPError  # type: ignore[attr-defined]
    module.Request = StarletteRequest  # type: ignore[attr-defined]
    return module


@dataclass
class HttpResponse:
    content: bytes | str = b""
    status: int = 200

    @property
    def status_code(self) -> int:
        return self.status


class HttpResponseBadRequest(HttpResponse):
    def __init__(self, content: bytes | str = b"") -> None:
        super().__init__(content, 400)


@dataclass
class DjangoRequest:
    """`django.http.HttpRequest`: `.body` is the raw bytes; `.headers` and `.META` both set."""

    body: bytes
    headers: Mapping[str, str]
    method: str = "POST"
    META: dict[str, str] = field(default_factory=dict)


def require_post(view: F) -> F:
    def guarded(request: DjangoRequest) -> Any:
        if request.method != "POST":
            return HttpResponse(status=405)
        return view(request)

    return guarded  # type: ignore[return-value]


def django() -> dict[str, types.ModuleType]:
    modules = {
        name: types.ModuleType(name)
        for name in (
            "django",
            "django.http",
            "django.views",
            "django.views.decorators",
            "django.views.decorators.csrf",
            "django.views.decorators.http",
        )
    }
    modules["django.http"].HttpResponse = HttpResponse  # type: ignore[attr-defined]
    modules["django.http"].HttpResponseBadRequest = HttpResponseBadRequest  # type: ignore[attr-defined]
    modules["django.views.decorators.csrf"].csrf_exempt = lambda view: view  # type: ignore[attr-defined]
    modules["django.views.decorators.http"].require_POST = require_post  # type: ignore[attr-defined]
    return modules


class Redis:
    """redis-py's `SET name value NX EX seconds`: stores only if absent, returns True/None."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.values: dict[str, object] = {}
        self.calls: list[tuple[str, object, bool, int | None]] = []

    def set(
        self, name: str, value: object, *, nx: bool = False, ex: int | None = None
    ) -> bool | None:
        self.calls.append((name, value, nx, ex))
        if nx and name in self.values:
            return None
        self.values[name] = value
        return True


def redis() -> tuple[types.ModuleType, list[Redis]]:
    """A `redis` module whose `Redis.from_url` clients are collected in the returned list."""
    clients: list[Redis] = []

    class Client(Redis):
        @classmethod
        def from_url(cls, url: str) -> Redis:
            clients.append(cls(url))
            return clients[-1]

    module = types.ModuleType("redis")
    module.Redis = Client  # type: ignore[attr-defined]
    return module, clients
