"""The partner portal's pure rules: what a session may carry, its link and cookie secrets,
the CSRF token, and the origins that may frame the portal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.core.portal import (
    COOKIE_PREFIX,
    LINK_PREFIX,
    cookie_secret,
    csrf_matches,
    csrf_token,
    frame_ancestors,
    link_token,
    looks_like,
    new_session,
    parse_origins,
)
from dispatcher.errors import PortalRequestError

NOW = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
ADMIN = frozenset({"webhooks:read", "webhooks:write", "org:admin"})


def mint(scopes: list[str], ttl: int = 3600, key_scopes: frozenset[str] = ADMIN) -> object:
    return new_session(
        session_id="pss_1",
        organization_id="org_a",
        key_id="key_1",
        key_scopes=key_scopes,
        requested=scopes,
        ttl_seconds=ttl,
        now=NOW,
    )


def test_a_session_lives_for_its_ttl_and_its_link_for_five_minutes_at_most() -> None:
    """The session expires ttl after minting; its link after 5 minutes, or the ttl if sooner."""
    long = new_session(
        session_id="pss_1",
        organization_id="org_a",
        key_id="key_1",
        key_scopes=ADMIN,
        requested=["webhooks:read", "webhooks:read"],
        ttl_seconds=3600,
        now=NOW,
    )
    assert long.scopes == {"webhooks:read"}
    assert long.expires_at == NOW + timedelta(hours=1)
    assert long.link_expires_at == NOW + timedelta(minutes=5)
    short = new_session(
        session_id="pss_2",
        organization_id="org_a",
        key_id="key_1",
        key_scopes=ADMIN,
        requested=["webhooks:write"],
        ttl_seconds=60,
        now=NOW,
    )
    assert short.link_expires_at == short.expires_at == NOW + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("scopes", "ttl", "key_scopes", "message"),
    [
        (["org:admin"], 3600, ADMIN, "scopes[0]: 'org:admin' cannot be given"),
        (["webhooks:read", "ops:read"], 3600, ADMIN, "scopes[1]: 'ops:read' cannot be given"),
        (["webhooks:write"], 3600, frozenset({"org:admin"}), "webhooks:write is not held"),
        ([], 3600, ADMIN, "scopes: a portal session needs at least one scope"),
        (["webhooks:read"], 59, ADMIN, "ttlSeconds: must be from 60 to 86400"),
        (["webhooks:read"], 86401, ADMIN, "ttlSeconds: must be from 60 to 86400"),
    ],
)
def test_a_session_beyond_the_rules_is_refused_naming_the_field(
    scopes: list[str], ttl: int, key_scopes: frozenset[str], message: str
) -> None:
    """Admin or operator scopes, scopes the key lacks, none, or a ttl out of bounds are refused."""
    with pytest.raises(PortalRequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        mint(scopes, ttl, key_scopes)


def test_link_and_cookie_secrets_carry_256_bits_and_their_prefix() -> None:
    """Secrets are the prefix and 32 bytes of base64url, recognised by shape only."""
    link, cookie = link_token(bytes(32)), cookie_secret(bytes(range(32)))
    assert link.startswith(LINK_PREFIX)
    assert len(link) == 47
    assert looks_like(link, LINK_PREFIX)
    assert looks_like(cookie, COOKIE_PREFIX)
    assert not looks_like(cookie, LINK_PREFIX)
    assert not looks_like(link + "x", LINK_PREFIX)
    with pytest.raises(ValueError, match="32 bytes"):
        link_token(bytes(16))


def test_the_csrf_token_belongs_to_one_cookie_and_reveals_nothing_of_it() -> None:
    """The CSRF token matches its own session only and does not contain the cookie."""
    one, two = cookie_secret(bytes(32)), cookie_secret(bytes([1]) * 32)
    token = csrf_token(one)
    assert csrf_matches(one, token)
    assert not csrf_matches(two, token)
    assert not csrf_matches(one, "")
    assert not csrf_matches(one, "é" + token[1:])
    assert one[4:] not in token


def test_origins_are_normalised_deduplicated_and_listed_for_frame_ancestors() -> None:
    """Origins are lower-cased, kept in order without repeats, and become the sources of
    frame-ancestors; none is 'none'."""
    origins = parse_origins(
        ["https://Dash.Example.com", "https://dash.example.com", "http://localhost:3000"]
    )
    assert origins == ("https://dash.example.com", "http://localhost:3000")
    assert frame_ancestors(origins) == "https://dash.example.com http://localhost:3000"
    assert frame_ancestors(()) == "'none'"


@pytest.mark.parametrize(
    "origin",
    [
        "http://dash.example.com",  # plain http off this machine
        "https://dash.example.com/",  # a path
        "https://dash.example.com/app",
        "https://*.example.com",  # a wildcard
        "*",
        "https://dash.example.com?x=1",
        "https://user@dash.example.com",
        "https://dash.example.com:99999",
        "https://dash.example.com 'unsafe-inline'",  # an injected CSP source
        "https://dash.example.com;script-src *",  # an injected directive
        "'self'",
        "https://-bad.example.com",
        "",
    ],
)
def test_anything_but_an_origin_is_refused(origin: str) -> None:
    """Paths, wildcards, users, queries, bad ports and anything that could inject into the
    CSP header are refused, naming the item."""
    with pytest.raises(PortalRequestError, match=r"portalOrigins\[1\]"):
        parse_origins(["https://ok.example.com", origin])


def test_at_most_sixteen_origins() -> None:
    """An organization lists at most 16 origins."""
    with pytest.raises(PortalRequestError, match="at most 16"):
        parse_origins([f"https://d{i}.example.com" for i in range(17)])
