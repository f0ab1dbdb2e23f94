"""schemas/signature-vectors.json: the known answers partners in other languages test against."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import layers_webhooks
import pytest
import standardwebhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from layers_webhooks import Webhook, WebhookVerificationError

from .material import (
    OFFICIAL_BODY,
    OFFICIAL_ID,
    OFFICIAL_SECRET,
    OFFICIAL_SIGNATURE,
    OFFICIAL_TIMESTAMP,
    VECTORS_PATH,
)

DOCUMENT: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]


def body_of(vector: dict[str, Any]) -> bytes:
    if "body_base64" in vector:
        return base64.b64decode(vector["body_base64"])
    return str(vector["body"]).encode()


def header(vector: dict[str, Any], name: str) -> str | None:
    """A header of the vector by case-insensitive name, webhook-* before svix-*."""
    lowered = {key.lower(): value for key, value in vector["headers"].items()}
    value = lowered.get(f"webhook-{name}", lowered.get(f"svix-{name}"))
    return None if value is None else str(value)


def independently_signed(vector: dict[str, Any]) -> bool:
    """Whether any entry matches any key, checked with standardwebhooks and cryptography."""
    msg_id, stamp, signature = (header(vector, n) for n in ("id", "timestamp", "signature"))
    assert msg_id is not None
    assert stamp is not None
    assert signature is not None
    content = f"{msg_id}.{stamp}.".encode() + body_of(vector)
    entries = signature.split(" ")
    for key in vector["keys"]:
        if key.startswith("whsec_") and stamp.isdecimal():
            moment = datetime.fromtimestamp(int(stamp), UTC)
            reference = standardwebhooks.Webhook(key).sign(msg_id, moment, body_of(vector).decode())
            if reference in entries and str(int(stamp)) == stamp:
                return True
        if key.startswith("whpk_"):
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key[5:]))
            for entry in entries:
                if entry.startswith("v1a,"):
                    try:
                        public.verify(base64.b64decode(entry[4:]), content)
                    except InvalidSignature:
                        continue
                    return True
    return False


def test_the_file_documents_its_format_first() -> None:
    """The file opens with a description of the scheme and of every vector field."""
    assert next(iter(DOCUMENT)) == "description"
    for field in (
        "name",
        "description",
        "keys",
        "tolerance",
        "now",
        "headers",
        "body_base64",
        "expected",
        "sign",
    ):
        assert f"`{field}`" in DOCUMENT["description"]


def test_the_official_standard_webhooks_vector_is_included() -> None:
    """The published Standard Webhooks vector is one of ours, unchanged."""
    official = VECTORS[0]
    assert official["keys"] == [OFFICIAL_SECRET]
    assert official["headers"] == {
        "webhook-id": OFFICIAL_ID,
        "webhook-timestamp": str(OFFICIAL_TIMESTAMP),
        "webhook-signature": OFFICIAL_SIGNATURE,
    }
    assert body_of(official) == OFFICIAL_BODY


def test_vectors_cover_the_cases_partners_need() -> None:
    """Names are unique; there are rotation, unicode, v1a and negative vectors of each error."""
    names = [vector["name"] for vector in VECTORS]
    assert len(names) == len(set(names))
    assert any(len(vector["keys"]) > 1 for vector in VECTORS)
    assert any("v1a," in str(header(vector, "signature")) for vector in VECTORS)
    assert any(not body_of(vector).isascii() for vector in VECTORS if vector["expected"]["valid"])
    errors = {vector["expected"].get("error") for vector in VECTORS} - {None}
    assert errors == {
        "MissingHeaderError",
        "MalformedHeaderError",
        "TimestampTooOldError",
        "TimestampTooNewError",
        "NoMatchingSignatureError",
        "InvalidPayloadError",
    }


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_every_vector_verifies_as_expected(vector: dict[str, Any]) -> None:
    """Verifying at `now` yields the expected payload, or raises the named error class."""
    wh = Webhook(vector["keys"], tolerance=vector["tolerance"])
    expected = vector["expected"]
    if expected["valid"]:
        assert (
            wh.verify_at(body_of(vector), vector["headers"], vector["now"]) == expected["payload"]
        )
        return
    error_class = getattr(layers_webhooks, expected["error"])
    assert issubclass(error_class, WebhookVerificationError)
    with pytest.raises(error_class) as caught:
        wh.verify_at(body_of(vector), vector["headers"], vector["now"])
    assert type(caught.value) is error_class


SIGNING = [vector for vector in VECTORS if vector.get("sign")]


@pytest.mark.parametrize("vector", SIGNING, ids=[vector["name"] for vector in SIGNING])
def test_signing_vectors_are_what_sign_header_produces(vector: dict[str, Any]) -> None:
    """For `sign: true` vectors, sign_header with the keys reproduces the signature header."""
    produced = Webhook(vector["keys"]).sign_header(
        str(header(vector, "id")), int(str(header(vector, "timestamp"))), body_of(vector)
    )
    assert produced == header(vector, "signature")


CHECKABLE = [
    vector
    for vector in VECTORS
    if vector["expected"]["valid"] or vector["expected"]["error"] == "NoMatchingSignatureError"
]


@pytest.mark.parametrize("vector", CHECKABLE, ids=[vector["name"] for vector in CHECKABLE])
def test_signature_outcomes_agree_with_independent_implementations(vector: dict[str, Any]) -> None:
    """standardwebhooks (v1) and cryptography (v1a) agree on which vectors carry a match."""
    assert independently_signed(vector) is vector["expected"]["valid"]
