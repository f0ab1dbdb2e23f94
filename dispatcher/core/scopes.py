"""API keys: their format, scopes, hashing, and what a key may do (pure, except the
Directory hook at the end).

A key is `lwk_` + 43 characters of base64url (32 random bytes), shown once at creation. The
store keeps only `SHA-256(key)` as hex. A slow password hash (bcrypt, scrypt, Argon2) exists
to make guessing *low-entropy* secrets expensive; these keys carry 256 random bits, so no
amount of hashing speed makes guessing feasible, and an unsalted fast digest lets every
request find its key with one indexed lookup instead of a ~100 ms KDF per call (GitHub's and
Stripe's tokens are stored the same way).

Scopes are deny-by-default and never implied: `org:admin` does not grant `webhooks:write`,
`webhooks:write` does not grant `webhooks:read`. Organization keys hold only organization
scopes; operator keys (no organization) hold only operator scopes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Iterable
from datetime import datetime
from enum import StrEnum

from dispatcher.core.models import ApiKeyRecord, Endpoint, EndpointScope, rfc3339
from dispatcher.errors import KeyRequestError

KEY_PREFIX = "lwk_"
_KEY_LENGTH = len(KEY_PREFIX) + 43  # 32 bytes as unpadded base64url


class Scope(StrEnum):
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    ORG_ADMIN = "org:admin"  # firehoses (scope all_children), acting in a direct child
    OPS_READ = "ops:read"  # operators: read across organizations, dead letters
    OPS_REPLAY = "ops:replay"  # operators: replay across organizations, retry dead letters
    PLATFORM_ORGS = "platform:orgs"  # the platform: organizations' parent and status


ORG_SCOPES = frozenset({Scope.WEBHOOKS_READ, Scope.WEBHOOKS_WRITE, Scope.ORG_ADMIN})
OPERATOR_SCOPES = frozenset({Scope.OPS_READ, Scope.OPS_REPLAY, Scope.PLATFORM_ORGS})


def parse_scopes(text: str | Iterable[str], *, operator: bool) -> frozenset[Scope]:
    """`"webhooks:read,webhooks:write"` → scopes, checked against the kind of key."""
    names = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    names = [name for name in names if name]
    if not names:
        raise KeyRequestError("a key needs at least one scope")
    allowed = OPERATOR_SCOPES if operator else ORG_SCOPES
    scopes: set[Scope] = set()
    for name in names:
        try:
            scope = Scope(name)
        except ValueError:
            raise KeyRequestError(
                f"unknown scope {name!r} (known: {', '.join(sorted(Scope))})"
            ) from None
        if scope not in allowed:
            kind = "an operator key" if operator else "an organization key"
            raise KeyRequestError(
                f"{name} cannot be given to {kind} (allowed: {', '.join(sorted(allowed))})"
            )
        scopes.add(scope)
    return frozenset(scopes)


KEY_ENTROPY_BYTES = 32


def generate_key(entropy: bytes) -> str:
    """The key secret for 32 random bytes: `lwk_` + their base64url, no padding."""
    if len(entropy) != KEY_ENTROPY_BYTES:
        raise ValueError(f"a key needs {KEY_ENTROPY_BYTES} bytes of entropy")
    raw = base64.urlsafe_b64encode(entropy).rstrip(b"=").decode("ascii")
    return KEY_PREFIX + raw


def hash_key(key: str) -> str:
    """What the store keeps and looks keys up by (see the module docstring)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(text: str) -> bool:
    """Cheap shape check before touching the store (constant-time on the prefix)."""
    return len(text) == _KEY_LENGTH and hmac.compare_digest(text[:4], KEY_PREFIX)


def new_api_key(
    *,
    organization_id: str | None,
    scopes: Collection[Scope],
    name: str,
    now: datetime,
    key_id: str,
    entropy: bytes,
) -> tuple[ApiKeyRecord, str]:
    """A key record and its secret (to print once and then forget).

    `key_id` is a fresh `key_` id and `entropy` 32 random bytes (`dispatcher.clock`).
    """
    if organization_id is not None and not organization_id.startswith("org_"):
        raise KeyRequestError(f"organization ids start with org_ (got {organization_id!r})")
    record = ApiKeyRecord(
        id=key_id,
        organization_id=organization_id,
        scopes=frozenset(str(s) for s in scopes),
        name=name,
        created_at=now,
    )
    return record, generate_key(entropy)


def holds(key: ApiKeyRecord, scope: Scope) -> bool:
    """True when the key is live and was given `scope` (nothing is implied)."""
    return key.revoked_at is None and scope.value in key.scopes


def unauthorised_firehoses(
    endpoints: Iterable[Endpoint], keys: Iterable[ApiKeyRecord]
) -> frozenset[str]:
    """`all_children` endpoints whose registering key is gone, revoked or lacks org:admin.

    An endpoint created by the platform (no key) stays authorised.
    """
    by_id = {key.id: key for key in keys}
    refused = set()
    for endpoint in endpoints:
        if endpoint.scope is not EndpointScope.ALL_CHILDREN or endpoint.created_by_key_id is None:
            continue
        key = by_id.get(endpoint.created_by_key_id)
        if key is None or not holds(key, Scope.ORG_ADMIN):
            refused.add(endpoint.id)
    return frozenset(refused)


def key_view(key: ApiKeyRecord) -> dict[str, object]:
    """A key's JSON shape (never its secret or hash), for the API and `webhooks keys list`."""
    return {
        "id": key.id,
        "organizationId": key.organization_id,
        "scopes": sorted(key.scopes),
        "name": key.name,
        "createdAt": rfc3339(key.created_at),
        "revokedAt": rfc3339(key.revoked_at),
    }
