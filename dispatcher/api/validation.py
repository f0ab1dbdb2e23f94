"""Request parsing at the API's edge: JSON bodies and query strings become frozen values.

Every problem is a 422 `VALIDATION` error naming the field (`metadata.team: longer than 500
characters`). Bodies are closed: an unknown field is an error, never silently ignored (a
typo such as `rate_limit` would otherwise be a setting that does nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from aiohttp import web
from multidict import MultiMapping

from dispatcher.core.catalog import Catalog
from dispatcher.core.destinations import DestinationPolicy
from dispatcher.core.models import Endpoint, EndpointScope, SignatureScheme
from dispatcher.errors import ApiError, DestinationError

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_DESCRIPTION = 1000
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
MAX_RATE_LIMIT = 10_000.0  # requests per second
MAX_GRACE_SECONDS = 7 * 86_400
DEFAULT_GRACE_SECONDS = 86_400
MAX_REASON = 500

# RFC 3339 date-time with an explicit offset (`Z` or ±hh:mm).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z")
ORG_ID = re.compile(r"org_[A-Za-z0-9_-]{1,64}\Z")
# What an id in a path can be: ours (`ep_01J…`) and publishers' event ids.
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")
# A cursor is the last id of a page: one of ours, `prefix_` and 26 Crockford base32 characters
# (dispatcher.core.ids).
_CURSOR = re.compile(r"([a-z]{2,3})_[0-9A-HJKMNP-TV-Z]{26}\Z")
# Neither SQLite's nor PostgreSQL's text (nor jsonb) can hold these.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def invalid(message: str) -> ApiError:
    return ApiError("VALIDATION", message)


def storable(value: str, where: str) -> str:
    """`value`, unless it holds a NUL or a lone surrogate (no database text can)."""
    if _UNSTORABLE.search(value):
        raise invalid(f"{where}: contains a NUL character or an unpaired surrogate")
    return value


def resource_id(request: web.Request, what: str) -> str:
    """The `{id}` of the path; one that no object can have is simply not found."""
    value = request.match_info["id"]
    if not _ID.match(value):
        raise ApiError("NOT_FOUND", f"no such {what}")
    return value


def parse_time(text: str, where: str) -> datetime:
    """An RFC 3339 date-time with an offset, as an aware datetime."""
    if not _RFC3339.match(text):
        raise invalid(f"{where}: not an RFC 3339 date-time such as 2026-06-09T12:00:00Z")
    try:
        return datetime.fromisoformat(text[:19] + text[19:].upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"{where}: {exc}") from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


class Body:
    """A JSON object body, read field by field; `finish()` refuses whatever was not read."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self._data = data
        self._read: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self._data

    def _take(self, name: str, *, required: bool) -> object:
        self._read.add(name)
        if name not in self._data:
            if required:
                raise invalid(f"{name}: required")
            return None
        return self._data[name]

    def string(
        self, name: str, *, required: bool = False, max_length: int = 2048, nullable: bool = False
    ) -> str | None:
        value = self._take(name, required=required)
        if value is None and (nullable or name not in self._data):
            return None
        if not isinstance(value, str):
            raise invalid(f"{name}: must be a string, not {_kind(value)}")
        if len(value) > max_length:
            raise invalid(f"{name}: longer than {max_length} characters")
        return storable(value, name)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._take(name, required=False)
        if name not in self._data:
            return default
        if not isinstance(value, bool):
            raise invalid(f"{name}: must be true or false, not {_kind(value)}")
        return value

    def number(
        self, name: str, *, minimum: float, maximum: float, nullable: bool = False
    ) -> float | None:
        value = self._take(name, required=False)
        if value is None and (nullable or name not in self._data):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(f"{name}: must be a number, not {_kind(value)}")
        if not minimum <= value <= maximum:
            raise invalid(f"{name}: must be from {minimum:g} to {maximum:g}")
        return float(value)

    def integer(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        value = self._take(name, required=False)
        if name not in self._data:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"{name}: must be an integer, not {_kind(value)}")
        if not minimum <= value <= maximum:
            raise invalid(f"{name}: must be from {minimum} to {maximum}")
        return value

    def strings(self, name: str, *, nullable: bool = False) -> list[str] | None:
        value = self._take(name, required=False)
        if value is None and (nullable or name not in self._data):
            return None
        if not isinstance(value, list):
            raise invalid(f"{name}: must be an array of strings, not {_kind(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise invalid(f"{name}[{index}]: must be a string, not {_kind(item)}")
            storable(item, f"{name}[{index}]")
        return value

    def mapping(self, name: str) -> Mapping[str, object] | None:
        value = self._take(name, required=False)
        if name not in self._data:
            return None
        if not isinstance(value, dict):
            raise invalid(f"{name}: must be an object, not {_kind(value)}")
        return value

    def time(self, name: str, *, required: bool = False) -> datetime | None:
        text = self.string(name, required=required, max_length=64, nullable=not required)
        return None if text is None else parse_time(text, name)

    def choice(self, name: str, enum: type[E], *, default: E | None = None) -> E | None:
        text = self.string(name, max_length=64)
        if text is None:
            return default
        try:
            return enum(text)
        except ValueError:
            raise invalid(f"{name}: must be one of {', '.join(e.value for e in enum)}") from None

    def finish(self) -> None:
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise invalid(f"{unknown[0]}: unknown field")


async def read_body(request: web.Request) -> Body:
    """The request's JSON object (an empty body is `{}`); 413 past the size cap."""
    raw = await request.read()
    if not raw.strip():
        return Body({})
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"body: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise invalid(f"body: must be a JSON object, not {_kind(data)}")
    return Body(data)


@dataclass(frozen=True, slots=True)
class Query:
    """A query string's parameters (unknown ones are ignored, as caches and proxies add
    their own)."""

    params: MultiMapping[str]

    def string(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value is None or value == "" else storable(value, name)

    def time(self, name: str) -> datetime | None:
        text = self.string(name)
        return None if text is None else parse_time(text, name)

    def choice(self, name: str, enum: type[E]) -> E | None:
        text = self.string(name)
        if text is None:
            return None
        try:
            return enum(text)
        except ValueError:
            raise invalid(f"{name}: must be one of {', '.join(e.value for e in enum)}") from None

    def choices(self, name: str, enum: type[E]) -> frozenset[E] | None:
        """A comma-separated list (`status=pending,failed`), each value checked by name."""
        text = self.string(name)
        if text is None:
            return None
        chosen = set()
        for value in text.split(","):
            try:
                chosen.add(enum(value.strip()))
            except ValueError:
                allowed = ", ".join(e.value for e in enum)
                raise invalid(f"{name}: {value.strip()!r} is not one of {allowed}") from None
        return frozenset(chosen)

    def period(self) -> tuple[datetime | None, datetime | None]:
        """`since` (inclusive) and `until` (exclusive). An `until` not later than `since`
        selects nothing by construction: refused, as a bulk replay refuses it, rather than
        answered with an empty page that looks like "nothing happened"."""
        since, until = self.time("since"), self.time("until")
        if since is not None and until is not None and until <= since:
            raise invalid("until: must be later than since")
        return since, until

    def limit(self) -> int:
        text = self.string("limit")
        if text is None:
            return DEFAULT_LIMIT
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise invalid(f"limit: must be an integer from 1 to {MAX_LIMIT}")
        return int(text)

    def after(self, prefix: str) -> str | None:
        """The `after` cursor of a listing whose ids start `prefix_`: the `nextCursor` of a
        previous page. Anything else would page from an arbitrary place (or past the end)."""
        text = self.string("after")
        if text is None:
            return None
        match = _CURSOR.match(text)
        if match is None or match.group(1) != prefix:
            raise invalid("after: not a cursor returned by this API (a previous nextCursor)")
        return text


def page(
    items: Sequence[T], limit: int, view: Callable[[T], Any], cursor: Callable[[T], str]
) -> dict[str, Any]:
    """`{"data": [...], "nextCursor": …}` from up to `limit + 1` items fetched."""
    shown = items[:limit]
    more = len(items) > limit
    return {
        "data": [view(item) for item in shown],
        "nextCursor": cursor(shown[-1]) if more and shown else None,
    }


# -- request values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointChanges:
    """A webhook body as the Endpoint attributes it sets (a PATCH sets only those sent)."""

    fields: Mapping[str, Any]

    def apply(self, endpoint: Endpoint) -> Endpoint:
        return replace(endpoint, **self.fields)

    @property
    def scope(self) -> EndpointScope | None:
        scope: EndpointScope | None = self.fields.get("scope")
        return scope


def endpoint_changes(
    body: Body, *, catalog: Catalog, policy: DestinationPolicy, creating: bool
) -> EndpointChanges:
    """Validate `{url, events, scope, description, metadata, rateLimit}` (and, creating,
    `signatureScheme`: it is chosen once; a later change is a new endpoint)."""
    fields: dict[str, Any] = {}
    if creating and body.has("signatureScheme"):
        fields["signature_scheme"] = body.choice(
            "signatureScheme", SignatureScheme, default=SignatureScheme.V1
        )
    if creating or body.has("url"):
        url = body.string("url", required=True, max_length=4096)
        try:
            fields["url"] = policy.check_url(url or "").url
        except DestinationError as exc:
            raise invalid(str(exc)) from None
    if body.has("events"):
        fields["event_types"] = _event_types(body.strings("events", nullable=True), catalog)
    if body.has("scope"):
        fields["scope"] = body.choice("scope", EndpointScope, default=EndpointScope.OWN)
    if body.has("description"):
        fields["description"] = body.string("description", max_length=MAX_DESCRIPTION) or ""
    if body.has("metadata"):
        fields["metadata"] = _metadata(body.mapping("metadata") or {})
    if body.has("rateLimit"):
        fields["rate_limit"] = body.number(
            "rateLimit", minimum=0.001, maximum=MAX_RATE_LIMIT, nullable=True
        )
    body.finish()
    return EndpointChanges(fields)


def event_type_list(names: list[str], catalog: Catalog, where: str) -> frozenset[str]:
    for index, name in enumerate(names):
        if name not in catalog:
            raise invalid(f"{where}[{index}]: {name!r} is not in the event catalog")
    return frozenset(names)


def _event_types(names: list[str] | None, catalog: Catalog) -> frozenset[str] | None:
    if names is None:
        return None  # every type
    if not names:
        raise invalid("events: name at least one type, or send null for every type")
    return event_type_list(names, catalog, "events")


def _metadata(raw: Mapping[str, object]) -> dict[str, str]:
    if len(raw) > MAX_METADATA_KEYS:
        raise invalid(f"metadata: more than {MAX_METADATA_KEYS} keys")
    metadata: dict[str, str] = {}
    for key, value in raw.items():
        if not key or len(key) > MAX_METADATA_KEY:
            raise invalid(f"metadata: key {key[:50]!r} must be 1 to {MAX_METADATA_KEY} characters")
        storable(key, "metadata")
        if not isinstance(value, str):
            raise invalid(f"metadata.{key}: must be a string, not {_kind(value)}")
        storable(value, f"metadata.{key}")
        if len(value) > MAX_METADATA_VALUE:
            raise invalid(f"metadata.{key}: longer than {MAX_METADATA_VALUE} characters")
        metadata[key] = value
    return metadata


def reason(body: Body) -> str:
    """The optional `reason` of an on-call action, recorded in the audit trail."""
    return body.string("reason", max_length=MAX_REASON) or ""
