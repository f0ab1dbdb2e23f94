"""`v1a` (ed25519) signatures next to `v1`: what the delivery client puts in
`webhook-signature`, checked by `cryptography` directly and by the verifier library."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from layers_webhooks import Webhook, WebhookVerificationError

from dispatcher.engine.delivery.signing import Signer
from dispatcher.store.secretbox import new_endpoint_secret, new_signing_key

BODY = b'{"id":"evt_1","type":"content.generated","data":{"organizationId":"org_a"}}'
MSG, STAMP = "evt_1", 1_700_000_000


def headers(signature: str) -> dict[str, str]:
    return {"webhook-id": MSG, "webhook-timestamp": str(STAMP), "webhook-signature": signature}


def test_a_v1a_signature_is_ed25519_over_id_timestamp_and_body() -> None:
    """`v1a,<base64>`: the raw ed25519 signature of `{id}.{timestamp}.{body}`, checked by
    cryptography itself with the `whpk_` key, and refused for another body."""
    private, public = new_signing_key()
    scheme, _, signature = Signer([private]).sign_header(MSG, STAMP, BODY).partition(",")
    assert scheme == "v1a"
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    key.verify(base64.b64decode(signature), f"{MSG}.{STAMP}.".encode() + BODY)
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(signature), f"{MSG}.{STAMP}.".encode() + BODY + b" ")


def test_our_verifier_checks_v1a_with_the_public_key_only() -> None:
    """A partner configures the `whpk_` public key; the private key never leaves us."""
    private, public = new_signing_key()
    signature = Signer([private]).sign_header(MSG, STAMP, BODY)
    assert Webhook(public).verify_at(BODY, headers(signature), STAMP)["id"] == "evt_1"
    _, other = new_signing_key()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify_at(BODY, headers(signature), STAMP)


def test_a_rotation_sends_both_signatures_each_verifying_alone() -> None:
    """Rotating from `v1` to `v1a` (or between key pairs): during the grace period each
    attempt carries the new key's signature first and the old one's, and a receiver holding
    either key accepts it."""
    new_private, new_public = new_signing_key()
    old_secret = new_endpoint_secret()
    signature = Signer([new_private, old_secret]).sign_header(MSG, STAMP, BODY)
    assert [part.split(",")[0] for part in signature.split(" ")] == ["v1a", "v1"]
    assert Webhook(new_public).verify_at(BODY, headers(signature), STAMP) is not None
    assert Webhook(old_secret).verify_at(BODY, headers(signature), STAMP) is not None


def test_key_pairs_are_fresh_32_byte_keys_with_their_prefixes() -> None:
    private, public = new_signing_key()
    assert private.startswith("whsk_")
    assert public.startswith("whpk_")
    assert len(base64.b64decode(private[5:])) == 32
    assert len(base64.b64decode(public[5:])) == 32
    assert new_signing_key() != (private, public)
