"""The CLI's HTTP client for the `/v1` API (`WEBHOOKS_URL`, `WEBHOOKS_API_KEY`).

Every failure is an `ApiClientError` with a one-line message fit for a terminal: the API's
own error (`NOT_FOUND: no such webhook (req_…)`), or why the server could not be reached.
The key is sent only in the Authorization header and never appears in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
import orjson

from dispatcher.errors import ApiClientError

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = 30.0  # seconds per request


@dataclass(frozen=True, slots=True)
class ClientConfig:
    url: str
    key: str

    def __repr__(self) -> str:
        return f"ClientConfig(url={self.url!r}, key=<redacted>)"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ClientConfig:
        url = environ.get("WEBHOOKS_URL", "").strip() or DEFAULT_URL
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiClientError(f"WEBHOOKS_URL={url!r} is not an http(s) URL")
        key = environ.get("WEBHOOKS_API_KEY", "").strip()
        if not key:
            raise ApiClientError(
                "WEBHOOKS_API_KEY is not set (create one with `webhooks keys create`)"
            )
        return cls(url=url.rstrip("/"), key=key)


class ApiClient:
    """`async with ApiClient(config) as api: await api.get("/v1/webhooks")`."""

    def __init__(self, config: ClientConfig, *, organization: str | None = None) -> None:
        self._config = config
        self._organization = organization
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        headers = {"Authorization": f"Bearer {self._config.key}", "Accept": "application/json"}
        if self._organization:
            headers["X-Layers-Organization"] = self._organization
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT), trust_env=False
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return await self.request("POST", path, body=body)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        if self._session is None:
            raise RuntimeError("use `async with ApiClient(...)`")
        url = self._config.url + path
        data = None if body is None else orjson.dumps(dict(body))
        headers = {} if data is None else {"Content-Type": "application/json"}
        try:
            async with self._session.request(
                method, url, data=data, params=params, headers=headers
            ) as response:
                content = await response.read()
                status = response.status
        except TimeoutError:
            raise ApiClientError(f"the API at {self._config.url} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise ApiClientError(f"cannot reach the API at {self._config.url}: {exc}") from None
        return _decode(status, content)


def _decode(status: int, content: bytes) -> Any:
    try:
        parsed = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        parsed = None
    if 200 <= status < 300:
        return parsed
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code", "ERROR"))
        message = f"{code}: {error.get('message', '')} ({error.get('requestId', 'no request id')})"
        raise ApiClientError(message, status=status, code=code)
    raise ApiClientError(f"HTTP {status} from the API (not a JSON error)", status=status)
