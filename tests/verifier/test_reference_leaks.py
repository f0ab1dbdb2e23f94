"""Regression tests: every input on which `standardwebhooks` 1.x leaks a foreign exception.

The reference `Webhook.verify` raises ValueError (unpacking an entry without exactly one
comma), binascii.Error (bad base64 padding), ValueError (non-ASCII base64), UnicodeDecodeError
(non-UTF-8 body), JSONDecodeError (non-JSON body), RecursionError (deep JSON), AttributeError
and TypeError (non-str header keys and values) and UnicodeEncodeError (a str body with a lone
surrogate). Ours turns each into a precise `WebhookVerificationError`. The ids below name the
exception the reference leaks for that input.
"""

from __future__ import annotations

from typing import Any

import pytest
from layers_webhooks import (
    InvalidPayloadError,
    MalformedHeaderError,
    NoMatchingSignatureError,
    Webhook,
    WebhookVerificationError,
)

from .material import MSG_ID, NEW_SECRET, NOW, signed

BODY = b'{"a": 1}'
DEEP = b"[" * 100_000 + b"]" * 100_000


def with_signature(header: object) -> dict[str, object]:
    return {**signed(body=BODY), "webhook-signature": header}


CASES: list[tuple[str, Any, Any, type[WebhookVerificationError] | None]] = [
    ("ValueError-no-comma", BODY, with_signature("v1"), NoMatchingSignatureError),
    ("ValueError-two-commas", BODY, with_signature("v1,a,b"), NoMatchingSignatureError),
    ("binascii.Error-padding", BODY, with_signature("v1,abc"), NoMatchingSignatureError),
    (
        "ValueError-non-ascii-base64",
        BODY,
        with_signature("v1," + "é" * 44),
        NoMatchingSignatureError,
    ),
    ("UnicodeDecodeError-body", b"\xff", signed(body=b"\xff"), InvalidPayloadError),
    ("JSONDecodeError-body", b"nope", signed(body=b"nope"), InvalidPayloadError),
    ("RecursionError-body", DEEP, signed(body=DEEP), InvalidPayloadError),
    ("AttributeError-int-key", BODY, {**signed(body=BODY), 1: "x"}, None),
    ("AttributeError-int-value", BODY, with_signature(5), MalformedHeaderError),
    ("TypeError-bytes-values", BODY, {k: v.encode() for k, v in signed(body=BODY).items()}, None),
    ("UnicodeEncodeError-str-body", "\ud800", signed(body=BODY), InvalidPayloadError),
]


@pytest.mark.parametrize(
    ("data", "headers", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_inputs_that_crash_the_reference_raise_verification_errors(
    data: Any, headers: Any, expected: type[WebhookVerificationError] | None
) -> None:
    """Each input that leaks a foreign exception from the reference verifies or fails cleanly.

    `expected` None means the input is valid for us (bytes values, stray int keys) and must
    verify.
    """
    wh = Webhook(NEW_SECRET)
    if expected is None:
        assert wh.verify_at(data, headers, NOW) == {"a": 1}
        return
    with pytest.raises(expected) as caught:
        wh.verify_at(data, headers, NOW)
    assert type(caught.value) is expected
    if isinstance(caught.value, InvalidPayloadError) and data != "\ud800":
        assert caught.value.msg_id == MSG_ID
