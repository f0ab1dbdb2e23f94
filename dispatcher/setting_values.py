"""How each `WEBHOOKS_*` value is read: durations, lists, integers, ports, log levels, the
database URL and the encryption key. Each parser returns the value or raises
`ConfigurationError` (or `ValueError`) with a message fit for the one-line report
`Settings.from_env` gives; none echoes a key.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import TypeVar

from dispatcher.errors import ConfigurationError, DatabaseUrlError, EncryptionKeyError

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_duration(text: str) -> float:
    """`"5s"`, `"5m"`, `"2h"`, `"5d"`, `"250ms"` → seconds. A bare number is seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value < 0:
            raise ConfigurationError(f"{text!r} is negative")
        return value
    match = _DURATION.match(text)
    if not match:
        raise ConfigurationError(f"{text!r} is not a duration (use e.g. 500ms, 5s, 5m, 2h, 5d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_schedule(text: str) -> tuple[float, ...]:
    """`"5s,5m,30m"` → (5.0, 300.0, 1800.0): the delays after attempt 1, 2, 3, …"""
    parts = [p for p in (s.strip() for s in text.split(",")) if p]
    if not parts:
        raise ValueError("the retry schedule needs at least one delay")
    return tuple(parse_duration(p) for p in parts)


def parse_list(text: str) -> tuple[str, ...]:
    items = tuple(p for p in (s.strip() for s in text.split(",")) if p)
    if not items:
        raise ValueError("must name at least one item")
    return items


def positive_int(text: str) -> int:
    value = int(text.strip())
    if value <= 0:
        raise ValueError(f"{text!r} must be a positive integer")
    return value


def positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return value


def fraction(text: str) -> float:
    value = float(text.strip())
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{text!r} must be in [0, 1)")
    return value


def port(text: str) -> int:
    value = int(text.strip())
    if not 0 <= value <= 65535:
        raise ValueError(f"{text!r} is not a TCP port")
    return value


def log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"{text!r} is not one of debug, info, warning, error")
    return level


_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
    "": False,
}


def boolean(text: str) -> bool:
    value = _BOOLEANS.get(text.strip().lower())
    if value is None:
        raise ValueError(f"{text!r} is not true or false")
    return value


def text_value(text: str) -> str:
    return text.strip()


_PUBLIC_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?\Z")


def public_url(text: str) -> str:
    """Empty, or the `http(s)://host[:port][/path]` browsers reach the service at (no query,
    fragment or user), without a trailing slash."""
    url = text.strip()
    if url and not _PUBLIC_URL.match(url):
        raise ValueError(
            "must be empty or an http(s) URL such as https://webhooks.example.com "
            "(host, optional port and path; no query, fragment or user)"
        )
    return url.rstrip("/")


SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
ENCRYPTION_KEY_BYTES = 32


def check_database_url(url: str) -> str:
    """`sqlite:///path` or `postgresql://…`, else ConfigurationError (never echoing the URL,
    which may carry a password)."""
    if url.startswith("sqlite:"):
        path = url.removeprefix(SQLITE_PREFIX) if url.startswith(SQLITE_PREFIX) else ""
        if not path or "?" in path or path == ":memory:":
            raise DatabaseUrlError(
                "a SQLite database URL names a file: sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (no in-memory databases, no query options)"
            )
        return url
    if url.startswith(POSTGRES_SCHEMES):
        return url
    scheme = url.partition("://")[0] if "://" in url else "(none)"
    raise DatabaseUrlError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path/to/file.db or "
        "postgresql://user@host:port/database"
    )


def parse_encryption_keys(text: str) -> list[bytes]:
    """`WEBHOOKS_ENCRYPTION_KEY`: standard base64 of 32 bytes, comma-separated, newest first.

    Errors name the position of the bad entry and never echo key material.
    """
    entries = [entry.strip() for entry in text.split(",")]
    if entries == [""]:
        raise EncryptionKeyError("no encryption key given: expected standard base64 of 32 bytes")
    keys: list[bytes] = []
    for number, entry in enumerate(entries, start=1):
        if not entry:
            raise EncryptionKeyError(f"encryption key #{number} is empty (stray comma?)")
        try:
            key = base64.b64decode(entry, validate=True)
        except binascii.Error:
            raise EncryptionKeyError(
                f"encryption key #{number} is not standard base64 "
                "(alphabet A-Z a-z 0-9 + /, '=' padding)"
            ) from None
        if len(key) != ENCRYPTION_KEY_BYTES:
            raise EncryptionKeyError(
                f"encryption key #{number} decodes to {len(key)} bytes; "
                f"expected {ENCRYPTION_KEY_BYTES} (e.g. `openssl rand -base64 32`)"
            )
        if key in keys:
            raise EncryptionKeyError(f"encryption key #{number} repeats key #{keys.index(key) + 1}")
        keys.append(key)
    return keys


def encryption_key_text(text: str) -> str:
    if text.strip():
        parse_encryption_keys(text)
    return text
