"""Find and validate the three signature headers in whatever a web framework hands over.

Accepted header containers: a plain ``dict`` in any letter case, aiohttp's ``CIMultiDict``,
Starlette/FastAPI ``Headers``, Werkzeug/Flask ``EnvironHeaders``, Django's
``request.headers`` and the WSGI-style ``request.META`` (``HTTP_WEBHOOK_ID``), mappings of
raw ASGI ``bytes`` names and values, and anything else with ``.items()`` or ``.get()``.

Names are matched case-insensitively. ``webhook-*`` is the Standard Webhooks name; the
``svix-*`` name of each header is a fallback so receivers migrating from Svix keep working.
A header that appears twice with different values is rejected rather than guessed at.

Values are validated strictly, because the timestamp and id are part of the signed content
and a lenient parser would verify something other than what was signed:

- ``webhook-id``: 1-256 printable ASCII characters, no space and no ``.`` (the Standard
  Webhooks spec forbids ``.`` in the id: it delimits the signed content).
- ``webhook-timestamp``: canonical unix seconds — ASCII digits only, no sign, space,
  underscore, exponent or leading zero, at most 12 digits. (``int()`` would accept
  ``" +1_0 "`` and Arabic-Indic ``"١٢٣"``; ``float()`` would accept ``"1e9"`` and ``"nan"``.)
- ``webhook-signature``: at most 8 KiB and 32 space-separated entries; entries that are not
  ``<version>,<signature>`` are skipped later, not fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol, TypeAlias

from .errors import MalformedHeaderError, MissingHeaderError

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_SIGNATURES",
    "MAX_SIGNATURE_HEADER_LENGTH",
    "MAX_TIMESTAMP_DIGITS",
    "HeaderSource",
    "SignedHeaders",
    "id_problem",
    "read_signed_headers",
]

MAX_ID_LENGTH = 256
MAX_TIMESTAMP_DIGITS = 12  # unix seconds have 10 digits until the year 2286
MAX_SIGNATURE_HEADER_LENGTH = 8192
MAX_SIGNATURES = 32

ID, TIMESTAMP, SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"

# The accepted names, lower-cased; the `svix-*` names are fallbacks for the `webhook-*` ones.
_WANTED = frozenset(
    {ID, TIMESTAMP, SIGNATURE, "svix-id", "svix-timestamp", "svix-signature"},
)


class _HasItems(Protocol):
    def items(self) -> Iterable[tuple[object, object]]: ...


class _HasGet(Protocol):
    def get(self, key: str, /) -> object: ...


HeaderSource: TypeAlias = _HasItems | _HasGet
"""Anything with ``.items()`` (preferred: it sees every spelling) or ``.get(name)``."""


class SignedHeaders(NamedTuple):
    """The three signature headers, validated: what the sender claims it signed.

    A NamedTuple rather than a frozen dataclass: one is built per request, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) costs 3x more on that path.
    """

    msg_id: str
    timestamp: int
    signatures: tuple[tuple[str, str], ...]
    """``(version, base64 signature)`` pairs, in header order; malformed entries dropped."""


def read_signed_headers(headers: object) -> SignedHeaders:
    """Find, decode and validate `webhook-id`, `webhook-timestamp` and `webhook-signature`.

    Raises `MissingHeaderError` or `MalformedHeaderError`; nothing else.
    """
    found = _collect(headers)
    id_name, msg_id = _pick(found, ID, "svix-id")
    ts_name, timestamp = _pick(found, TIMESTAMP, "svix-timestamp")
    sig_name, signature = _pick(found, SIGNATURE, "svix-signature")
    return SignedHeaders(
        _check_id(id_name, msg_id),
        _parse_timestamp(ts_name, timestamp),
        _split_signatures(sig_name, signature),
    )


def _collect(headers: object) -> dict[str, str]:
    """The wanted headers present in `headers`, by lower-case name, values as `str`."""
    items = getattr(headers, "items", None)
    if callable(items):
        return _collect_items(items)
    get = getattr(headers, "get", None)
    if callable(get):
        return _collect_get(get)
    raise MalformedHeaderError(
        header="headers",
        reason=f"expected a mapping or an object with .items()/.get(), got "
        f"{type(headers).__name__}",
    )


def _collect_items(items: Callable[[], Iterable[tuple[object, object]]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in items():  # verify()'s hot loop: an unrelated header costs a lower()
        if isinstance(key, str):
            name = key.lower()
            if name not in _WANTED:
                if name[:5] != "http_":
                    continue
                name = name[5:].replace("_", "-")  # WSGI environ / Django request.META
                if name not in _WANTED:
                    continue
        else:
            normalized = _normalize(key)
            if normalized is None:
                continue
            name = normalized
        if value is None:
            continue
        text = value if isinstance(value, str) else _text(name, value)
        if found.setdefault(name, text) != text:
            raise MalformedHeaderError(header=name, reason="sent twice with different values")
    return found


def _collect_get(get: Callable[[str], object]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in _WANTED:
        meta = "HTTP_" + name.upper().replace("-", "_")
        for spelling in (name, name.title(), meta):
            value = get(spelling)
            if value is not None:
                found[name] = _text(name, value)
                break
    return found


def _normalize(key: object) -> str | None:
    """The lower-cased name if `key` (str, or bytes from raw ASGI headers) is wanted, else None."""
    if isinstance(key, bytes | bytearray):
        key = bytes(key).decode("latin-1")
    elif not isinstance(key, str):
        return None
    name = key.lower()
    if name.startswith("http_"):  # WSGI environ / Django request.META spelling
        name = name[5:].replace("_", "-")
    return name if name in _WANTED else None


def _text(name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedHeaderError(header=name, reason="not ASCII") from None
    raise MalformedHeaderError(header=name, reason=f"expected str, got {type(value).__name__}")


def _pick(found: dict[str, str], name: str, fallback: str) -> tuple[str, str]:
    value = found.get(name)
    if value is not None:
        return name, value
    value = found.get(fallback)
    if value is not None:
        return fallback, value
    raise MissingHeaderError(header=name)


def id_problem(value: str) -> str | None:
    """Why `value` is not an acceptable `webhook-id`, or None when it is."""
    if not value:
        return "empty"
    if len(value) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    if not (value.isascii() and value.isprintable()) or " " in value or "." in value:
        return "must be printable ASCII without spaces or '.'"
    return None


def _check_id(name: str, value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise MalformedHeaderError(header=name, reason=problem)
    return value


def _parse_timestamp(name: str, value: str) -> int:
    # isascii() first: str.isdigit() alone is true for '١٢٣' and '²'.
    if not (0 < len(value) <= MAX_TIMESTAMP_DIGITS and value.isascii() and value.isdigit()):
        raise MalformedHeaderError(
            header=name, reason=f"expected unix seconds as 1-{MAX_TIMESTAMP_DIGITS} ASCII digits"
        )
    if value[0] == "0" and len(value) > 1:
        raise MalformedHeaderError(header=name, reason="leading zero (not canonical)")
    return int(value)


def _split_signatures(name: str, value: str) -> tuple[tuple[str, str], ...]:
    """``"v1,abc v1a,def"`` → ``(("v1", "abc"), ("v1a", "def"))``; malformed entries dropped.

    An entry is malformed when it has no comma, or an empty version or signature. Too long a
    header or too many entries is a malformed *header*: it bounds the work an unauthenticated
    request can cause (each v1a entry costs an ed25519 verification).
    """
    if not value:
        raise MalformedHeaderError(header=name, reason="empty")
    if len(value) > MAX_SIGNATURE_HEADER_LENGTH:
        raise MalformedHeaderError(
            header=name, reason=f"longer than {MAX_SIGNATURE_HEADER_LENGTH} characters"
        )
    pairs: list[tuple[str, str]] = []
    for entry in value.split(" "):
        version, comma, signature = entry.partition(",")
        if comma and version and signature:  # also skips the "" between repeated spaces
            pairs.append((version, signature))
    if len(pairs) > MAX_SIGNATURES:
        raise MalformedHeaderError(header=name, reason=f"more than {MAX_SIGNATURES} signatures")
    return tuple(pairs)
