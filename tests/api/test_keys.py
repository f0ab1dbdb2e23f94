"""API keys as values: format, hashing, scopes never implied, firehose authorisation."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest

from dispatcher.core.models import ApiKeyRecord, Endpoint, EndpointScope
from dispatcher.core.scopes import (
    Scope,
    generate_key,
    hash_key,
    holds,
    looks_like_key,
    new_api_key,
    parse_scopes,
    unauthorised_firehoses,
)
from dispatcher.errors import KeyRequestError

NOW = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)


def key(key_id: str, scopes: set[str], *, revoked: bool = False) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=key_id,
        organization_id="org_parent",
        scopes=frozenset(scopes),
        name="k",
        created_at=NOW,
        revoked_at=NOW if revoked else None,
    )


def test_a_key_is_lwk_and_43_base64url_characters_stored_as_sha256() -> None:
    """Keys are `lwk_` + 43 base64url characters; the stored hash is SHA-256 hex."""
    secret = generate_key(os.urandom(32))
    assert secret.startswith("lwk_")
    assert len(secret) == 47
    assert set(secret[4:]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert looks_like_key(secret)
    assert not looks_like_key("lwk_short")
    assert hash_key(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert generate_key(os.urandom(32)) != secret
    assert generate_key(bytes(32)) == "lwk_" + "A" * 43
    with pytest.raises(ValueError, match="32 bytes"):
        generate_key(bytes(31))


@pytest.mark.parametrize(
    ("text", "operator", "message"),
    [
        ("", False, "at least one scope"),
        ("webhooks:read,webhooks:admin", False, "unknown scope 'webhooks:admin'"),
        ("webhooks:read,ops:read", False, "ops:read cannot be given to an organization key"),
        ("ops:replay,webhooks:write", True, "webhooks:write cannot be given to an operator key"),
        ("org:admin", True, "org:admin cannot be given to an operator key"),
    ],
)
def test_scopes_are_checked_against_the_kind_of_key(
    text: str, operator: bool, message: str
) -> None:
    """Unknown scopes and scopes of the other kind of key are refused with a clear message."""
    with pytest.raises(KeyRequestError, match=message):
        parse_scopes(text, operator=operator)


def test_no_scope_implies_another() -> None:
    """org:admin alone grants neither read nor write; a revoked key holds nothing."""
    admin = key("key_a", {"org:admin"})
    assert holds(admin, Scope.ORG_ADMIN)
    assert not holds(admin, Scope.WEBHOOKS_READ)
    assert not holds(admin, Scope.WEBHOOKS_WRITE)
    assert not holds(key("key_w", {"webhooks:write"}), Scope.WEBHOOKS_READ)
    assert not holds(key("key_r", {"org:admin"}, revoked=True), Scope.ORG_ADMIN)


def test_an_org_key_needs_an_org_id() -> None:
    """An organization key's owner must be an `org_` id."""
    with pytest.raises(KeyRequestError, match="org_"):
        new_api_key(
            organization_id="acme",
            scopes=[Scope.WEBHOOKS_READ],
            name="x",
            now=NOW,
            key_id="key_1",
            entropy=bytes(32),
        )


def test_firehoses_rest_on_a_live_org_admin_key() -> None:
    """A firehose is unauthorised when its key is revoked, missing or lacks org:admin;
    own-scope endpoints and platform-created firehoses are never refused."""

    def firehose(endpoint_id: str, key_id: str | None) -> Endpoint:
        return Endpoint(
            id=endpoint_id,
            organization_id="org_parent",
            url="https://hooks.example.com/x",
            scope=EndpointScope.ALL_CHILDREN,
            created_by_key_id=key_id,
        )

    endpoints = [
        firehose("ep_ok", "key_admin"),
        firehose("ep_revoked", "key_revoked"),
        firehose("ep_plain", "key_plain"),
        firehose("ep_missing", "key_gone"),
        firehose("ep_platform", None),
        Endpoint(
            id="ep_own",
            organization_id="org_parent",
            url="https://hooks.example.com/own",
            created_by_key_id="key_gone",
        ),
    ]
    keys = [
        key("key_admin", {"org:admin"}),
        key("key_revoked", {"org:admin"}, revoked=True),
        key("key_plain", {"webhooks:write"}),
    ]
    assert unauthorised_firehoses(endpoints, keys) == {"ep_revoked", "ep_plain", "ep_missing"}
