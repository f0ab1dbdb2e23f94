"""The `webhook-signature` of an attempt, from an endpoint's current keys, newest first.

Standard Webhooks, "Signature scheme": a symmetric `whsec_` secret signs `v1,<base64 HMAC>`
(through the verifier library, so the scheme has one implementation); an asymmetric
`whsk_` private key (base64 of the 32-byte ed25519 seed) signs `v1a,<base64 signature>` over
the same `{id}.{timestamp}.{body}`. During a rotation's grace period the endpoint has two
keys and every attempt carries both signatures, space-separated, as the spec allows.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from layers_webhooks import Webhook

SIGNING_KEY_PREFIX = "whsk_"


class Signer:
    """Built once per set of keys (the client caches them) — decoding is not per attempt."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._parts: list[Webhook | Ed25519PrivateKey] = []
        for key in keys:
            if key.startswith(SIGNING_KEY_PREFIX):
                seed = base64.b64decode(key.removeprefix(SIGNING_KEY_PREFIX), validate=True)
                self._parts.append(Ed25519PrivateKey.from_private_bytes(seed))
            else:
                self._parts.append(Webhook(key))

    def sign_header(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` value: one signature per key, in the keys' order."""
        signed: bytes | None = None
        signatures = []
        for part in self._parts:
            if isinstance(part, Webhook):
                signatures.append(part.sign_header(msg_id, timestamp, body))
                continue
            if signed is None:
                signed = f"{msg_id}.{timestamp}.".encode() + body
            signatures.append("v1a," + base64.b64encode(part.sign(signed)).decode())
        return " ".join(signatures)
