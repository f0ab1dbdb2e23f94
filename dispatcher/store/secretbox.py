"""Encryption at rest for endpoint signing secrets (docs/design.md §7).

A `SecretBox` holds one or more 32-byte keys, the value of `WEBHOOKS_ENCRYPTION_KEY`
(standard base64, comma-separated): the first key encrypts, every key decrypts, so keys
rotate by prepending a new one, re-encrypting at leisure, then dropping the old one.

A sealed secret is laid out as

    key id (1 byte) || nonce (12 random bytes) || AES-256-GCM ciphertext and tag

The key id is the first byte of SHA-256 of the key: it picks the key to try without exposing
it (two keys sharing an id are both tried). The associated data (`aad`) binds a ciphertext to
its row, e.g. the endpoint id, so a ciphertext copied onto another endpoint does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Sequence
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from dispatcher.errors import DecryptionError
from dispatcher.setting_values import parse_encryption_keys

KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = 1 + NONCE_BYTES


def new_signing_key() -> tuple[str, str]:
    """A fresh ed25519 key pair for `v1a` endpoints: (`whsk_` + base64 of the 32-byte seed,
    kept sealed like a secret; `whpk_` + base64 of the 32-byte public key, public)."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whsk_" + base64.b64encode(seed).decode(), "whpk_" + base64.b64encode(public).decode()


def new_endpoint_secret() -> str:
    """A fresh endpoint signing secret: `whsec_` + base64 of 32 random bytes (docs/design.md §3)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key_id(key: bytes) -> int:
    return hashlib.sha256(key).digest()[0]


class SecretBox:
    """AES-256-GCM with key rotation. Never prints its keys."""

    __slots__ = ("_ciphers",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        for number, key in enumerate(keys, start=1):
            if len(key) != KEY_BYTES:
                raise ValueError(f"key #{number} is {len(key)} bytes; expected {KEY_BYTES}")
        self._ciphers = [(_key_id(key), AESGCM(key)) for key in keys]

    @classmethod
    def from_setting(cls, text: str) -> Self:
        """Parse `WEBHOOKS_ENCRYPTION_KEY` (see `settings.parse_encryption_keys`)."""
        return cls(parse_encryption_keys(text))

    @classmethod
    def generate(cls) -> Self:
        """A box with one random key, for `webhooks dev`/`demo` and their temporary store."""
        return cls([os.urandom(KEY_BYTES)])

    def encrypt(self, plaintext: str, *, aad: bytes) -> bytes:
        key_id, cipher = self._ciphers[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return bytes([key_id]) + nonce + sealed

    def decrypt(self, blob: bytes, *, aad: bytes) -> str:
        if len(blob) < _HEADER_BYTES + _TAG_BYTES:
            raise DecryptionError(f"sealed secret too short ({len(blob)} bytes)")
        key_id, nonce, sealed = blob[0], blob[1:_HEADER_BYTES], blob[_HEADER_BYTES:]
        candidates = [cipher for cid, cipher in self._ciphers if cid == key_id]
        if not candidates:
            raise DecryptionError(
                f"sealed with key id {key_id:#04x}, which is not among the configured keys"
            )
        for cipher in candidates:
            try:
                return cipher.decrypt(nonce, sealed, aad).decode("utf-8")
            except InvalidTag:
                continue
        raise DecryptionError("authentication failed: tampered bytes or a different aad")

    def is_current(self, blob: bytes, *, aad: bytes) -> bool:
        """Sealed with the first key (the one `encrypt` uses)? Decided by opening it with
        that key alone: key ids are one byte, and two keys may share one."""
        key_id, cipher = self._ciphers[0]
        if len(blob) < _HEADER_BYTES + _TAG_BYTES or blob[0] != key_id:
            return False
        try:
            cipher.decrypt(blob[1:_HEADER_BYTES], blob[_HEADER_BYTES:], aad)
        except InvalidTag:
            return False
        return True

    def reseal(self, blob: bytes, *, aad: bytes) -> bytes:
        """The same secret sealed with the first key (for re-encryption before an old key
        is dropped). Raises DecryptionError if no configured key opens it."""
        return self.encrypt(self.decrypt(blob, aad=aad), aad=aad)

    def __repr__(self) -> str:
        return f"SecretBox(keys=<{len(self._ciphers)} redacted>)"
