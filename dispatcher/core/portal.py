"""The partner portal's rules (pure): sessions, their one-time links and cookie secrets, the
CSRF token, the scopes a session may carry, and the origins allowed to frame the portal.

An `org:admin` key mints a `PortalSession` and gets a one-time link carrying a *link token*
(`lwp_` + 32 random bytes as base64url). Opening the link exchanges the token, once, for a
*cookie secret* (`lws_` + 32 random bytes) set as an HttpOnly cookie. The store keeps only the
SHA-256 of each (as API keys are kept, see core.scopes), so a copy of the database opens no
session. The CSRF token is derived from the cookie secret (a keyed digest): the console reads
it from `GET /v1/whoami` and echoes it in `X-CSRF-Token`; a page on another site can neither
read the cookie nor learn the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.core.scopes import Scope
from dispatcher.errors import PortalRequestError

LINK_PREFIX = "lwp_"  # the one-time token in a portal link
COOKIE_PREFIX = "lws_"  # the session's cookie secret
SECRET_BYTES = 32
_SECRET_LENGTH = 4 + 43  # prefix + 32 bytes as unpadded base64url

MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 86_400
DEFAULT_TTL_SECONDS = 3_600
# How long a link may wait to be opened: a link travels through the partner's backend to a
# browser within seconds; a link found later (in a log, a history) is dead.
LINK_FUSE_SECONDS = 300

# What a partner may be given: never org:admin (firehoses, child organizations) nor an
# operator scope.
PORTAL_SCOPES = frozenset({Scope.WEBHOOKS_READ, Scope.WEBHOOKS_WRITE})

MAX_ORIGINS = 16
# `https://host[:port]`, lower case, host names as LDH labels (IDNs in their xn-- form) or
# IPv4; plain http only for this machine's own names (development).
_ORIGIN = re.compile(
    r"https://(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}"
    r"[a-z0-9])?)*)(?::(?P<port>[0-9]{1,5}))?\Z"
)
_LOCAL_ORIGIN = re.compile(r"http://(?P<host>localhost|127\.0\.0\.1)(?::(?P<port>[0-9]{1,5}))?\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class PortalSession:
    """A partner's session in one organization, with a subset of the minting key's scopes.

    It lives from `created_at` to `expires_at`; its link can be exchanged once, before
    `link_expires_at` (`exchanged_at` records when it was)."""

    id: str
    organization_id: str
    key_id: str  # the org:admin key that minted it (revoking that key ends the session)
    scopes: frozenset[str]
    created_at: datetime
    link_expires_at: datetime
    expires_at: datetime
    exchanged_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.exchanged_at is not None and now < self.expires_at


def new_session(
    *,
    session_id: str,
    organization_id: str,
    key_id: str,
    key_scopes: Collection[str],
    requested: Iterable[str],
    ttl_seconds: int,
    now: datetime,
) -> PortalSession:
    """A session for `requested` scopes, each of which must be a portal scope the minting
    key holds; the link's fuse is the shorter of LINK_FUSE_SECONDS and the ttl."""
    if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
        raise PortalRequestError(f"ttlSeconds: must be from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}")
    scopes: set[str] = set()
    for index, name in enumerate(requested):
        if name not in {s.value for s in PORTAL_SCOPES}:
            allowed = ", ".join(sorted(PORTAL_SCOPES))
            raise PortalRequestError(
                f"scopes[{index}]: {name!r} cannot be given to a portal session "
                f"(allowed: {allowed})"
            )
        if name not in key_scopes:
            raise PortalRequestError(f"scopes[{index}]: {name} is not held by this key")
        scopes.add(name)
    if not scopes:
        raise PortalRequestError("scopes: a portal session needs at least one scope")
    return PortalSession(
        id=session_id,
        organization_id=organization_id,
        key_id=key_id,
        scopes=frozenset(scopes),
        created_at=now,
        link_expires_at=now + timedelta(seconds=min(LINK_FUSE_SECONDS, ttl_seconds)),
        expires_at=now + timedelta(seconds=ttl_seconds),
    )


def _secret(prefix: str, entropy: bytes) -> str:
    if len(entropy) != SECRET_BYTES:
        raise ValueError(f"a portal secret needs {SECRET_BYTES} bytes of entropy")
    return prefix + base64.urlsafe_b64encode(entropy).rstrip(b"=").decode("ascii")


def link_token(entropy: bytes) -> str:
    """The one-time token of a portal link, from 32 random bytes."""
    return _secret(LINK_PREFIX, entropy)


def cookie_secret(entropy: bytes) -> str:
    """A session's cookie value, from 32 random bytes."""
    return _secret(COOKIE_PREFIX, entropy)


def looks_like(text: str, prefix: str) -> bool:
    """Cheap shape check before touching the store."""
    return len(text) == _SECRET_LENGTH and hmac.compare_digest(text[:4], prefix)


def csrf_token(cookie: str) -> str:
    """The CSRF token of the session whose cookie secret is `cookie` (one-way: the token
    reveals nothing of the cookie)."""
    digest = hmac.new(cookie.encode("utf-8"), b"layers-webhooks portal csrf", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def csrf_matches(cookie: str, presented: str) -> bool:
    """Whether `presented` is the session's CSRF token (constant time)."""
    return hmac.compare_digest(csrf_token(cookie).encode(), presented.encode("utf-8", "replace"))


def parse_origin(text: str, where: str) -> str:
    """A frame-ancestors origin, normalised to lower case: `https://host[:port]` (no path,
    query, user or wildcard), or `http://localhost[:port]` / `http://127.0.0.1[:port]`."""
    origin = text.strip().lower()
    match = _ORIGIN.match(origin) or _LOCAL_ORIGIN.match(origin)
    if match is None:
        raise PortalRequestError(
            f"{where}: {text!r} is not an origin such as https://dashboard.example.com or "
            "https://dashboard.example.com:8443 (no path, no wildcard; http only for "
            "localhost and 127.0.0.1)"
        )
    port = match.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        raise PortalRequestError(f"{where}: {port} is not a TCP port")
    if len(match.group("host")) > 253:
        raise PortalRequestError(f"{where}: the host name is longer than 253 characters")
    return origin


def parse_origins(texts: Iterable[str], where: str = "portalOrigins") -> tuple[str, ...]:
    """Origins in the order given, duplicates dropped, at most MAX_ORIGINS."""
    origins: dict[str, None] = {}
    for index, text in enumerate(texts):
        origins[parse_origin(text, f"{where}[{index}]")] = None
    if len(origins) > MAX_ORIGINS:
        raise PortalRequestError(f"{where}: at most {MAX_ORIGINS} origins")
    return tuple(origins)


def frame_ancestors(origins: Iterable[str]) -> str:
    """The sources of a CSP `frame-ancestors` directive: the origins, or `'none'`."""
    listed = " ".join(origins)
    return listed or "'none'"
