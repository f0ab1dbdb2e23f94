"""Property tests: whatever arrives, only the WebhookVerificationError tree comes out."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from layers_webhooks import InvalidSecretError, Webhook, WebhookVerificationError

from .material import BODY, NEW_SECRET, NOW, OLD_SECRET, PUBLIC_KEY, signed, v1

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WEBHOOK = Webhook([NEW_SECRET, OLD_SECRET, PUBLIC_KEY])

NAMES = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-timestamp",
        "svix-signature",
        "HTTP_WEBHOOK_ID",
        "HTTP_WEBHOOK_TIMESTAMP",
        "HTTP_WEBHOOK_SIGNATURE",
    ]
).flatmap(lambda name: st.sampled_from([name, name.upper(), name.title(), name.swapcase()]))
KEYS = st.one_of(NAMES, st.text(max_size=30), st.binary(max_size=30), st.integers(), st.none())
TEXT_VALUES = st.one_of(
    st.text(),
    st.text(alphabet="0123456789+-_ .e١٢٣", max_size=15),
    st.from_regex(r"\A(v1a?|v2|)(,[A-Za-z0-9+/=]{0,90})?( (v1|v1a),[A-Za-z0-9+/=é]{40,90}){0,3}\Z"),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(0, 20_000)),  # huge values
)
VALUES = st.one_of(
    TEXT_VALUES,
    st.binary(),
    st.integers(),
    st.floats(),
    st.none(),
    st.lists(st.text(), max_size=2),
)
HEADERS = st.dictionaries(KEYS, VALUES, max_size=8)
BODIES = st.one_of(st.binary(max_size=2000), st.text(max_size=500), st.just(BODY))


@FUZZ
@given(body=BODIES, headers=HEADERS, now=st.floats(allow_nan=False, allow_infinity=False))
@example(
    body=b"\xff",
    headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1"},
    now=1.0,
)
def test_arbitrary_requests_raise_only_verification_errors(
    body: Any, headers: dict[Any, Any], now: float
) -> None:
    """Random bodies and header dicts (any key, any value type, huge values) never crash."""
    with contextlib.suppress(WebhookVerificationError):
        WEBHOOK.verify_at(body, headers, now)


@FUZZ
@given(
    field=st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "body"]),
    replacement=st.one_of(TEXT_VALUES, st.binary(max_size=200)),
)
def test_any_change_to_a_signed_request_is_rejected(field: str, replacement: Any) -> None:
    """Replacing the id, timestamp, signature or body of a valid request never verifies."""
    headers: dict[str, Any] = signed()
    body: Any = BODY
    if field == "body":
        body = replacement
        if body in (BODY, BODY.decode()):
            return
    else:
        original = headers[field]
        if replacement in (original, original.encode()) or (
            field == "webhook-signature"
            and isinstance(replacement, str)
            and headers[field] in replacement
        ):
            return  # unchanged, or the valid entry is still in the header
        headers[field] = replacement
    try:
        WEBHOOK.verify_at(body, headers, NOW)
    except WebhookVerificationError:
        return
    raise AssertionError(f"a request with a replaced {field} verified")


@FUZZ
@given(msg_id=st.text(min_size=1, max_size=40), body=st.binary(max_size=500))
def test_sign_header_and_verify_agree_on_every_signable_message(msg_id: str, body: bytes) -> None:
    """Whatever the signer accepts, the verifier accepts with the same keys."""
    signer = Webhook([NEW_SECRET, OLD_SECRET])
    try:
        header = signer.sign_header(msg_id, NOW, body)
    except ValueError:
        return  # an id the scheme forbids: refused at signing time
    assert header.split(" ")[1] == v1(OLD_SECRET, msg_id, str(NOW), body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(NOW), "webhook-signature": header}
    assert WEBHOOK.verify_at(body, headers, NOW, json_parse=False) is None


@FUZZ
@given(
    whsecret=st.one_of(
        st.text(),
        st.binary(),
        st.builds("whsec_{}".format, st.text()),
        st.builds("whpk_{}".format, st.text()),
        st.lists(st.text(), max_size=3),
    )
)
def test_arbitrary_keys_are_accepted_or_raise_invalid_secret(whsecret: Any) -> None:
    """The constructor either builds a Webhook or raises InvalidSecretError, nothing else."""
    with contextlib.suppress(InvalidSecretError):
        Webhook(whsecret)


def test_the_fuzzed_webhook_accepts_a_valid_request() -> None:
    """Sanity for the properties above: the shared Webhook does verify a good request."""
    assert WEBHOOK.verify_at(BODY, signed(OLD_SECRET), NOW)["id"] == "evt_1"
