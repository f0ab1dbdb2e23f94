"""Decode `whsec_` secrets and `whpk_` public keys once, when a `Webhook` is built.

Formats (Standard Webhooks, "Signature scheme" table):

- ``whsec_<base64>``: an HMAC-SHA256 key of 24 to 64 bytes. The base64 alone (no prefix) is
  accepted too, as every official Standard Webhooks library accepts it, and raw ``bytes`` as
  an already-decoded key, like `standardwebhooks.Webhook` does.
- ``whpk_<base64>``: a raw 32-byte ed25519 public key, for ``v1a`` signatures. Checking them
  needs the optional ``cryptography`` package, imported here and only when such a key is
  configured, never when `layers_webhooks` is imported.

Base64 is the standard alphabet, strictly decoded; missing ``=`` padding is tolerated.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .errors import InvalidSecretError

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = [
    "ED25519_EXTRA_HINT",
    "PUBLIC_KEY_PREFIX",
    "SECRET_PREFIX",
    "Ed25519Check",
    "HmacKey",
    "decode_b64",
    "load_ed25519",
    "parse_keys",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
PUBLIC_KEY_PREFIX = "whpk_"
MIN_SECRET_BYTES = 24  # "at least 24 bytes (192 bits, 512 maximum)"
MAX_SECRET_BYTES = 64
ED25519_PUBLIC_KEY_BYTES = 32
ED25519_EXTRA_HINT = (
    'v1a (ed25519) signatures need the "cryptography" package: '
    'pip install "layers-webhooks[ed25519]"'
)

Ed25519Check = Callable[[bytes, bytes], bool]
"""``check(signature, signed_content) -> bool`` for one public key."""


class HmacKey:
    """An HMAC-SHA256 key with its padded-key hash states computed once.

    RFC 2104, section 4 ("Implementation notes"): the hash states after absorbing
    ``K xor ipad`` and ``K xor opad`` "may be precomputed and stored" so each message costs
    only its own compression rounds. Per message: copy the two states instead of re-keying,
    which roughly halves the cost of a 1 KiB verification, and feed the id/timestamp prefix and
    the body separately, so the body is never copied into one signed-content buffer. Equal to
    ``hmac.digest(key, prefix + body, "sha256")``; a test holds it to that.
    """

    __slots__ = ("_inner", "_outer")

    _BLOCK = 64  # SHA-256 block size in bytes

    def __init__(self, key: bytes) -> None:
        if len(key) > self._BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self._BLOCK, b"\0")
        self._inner: HASH = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer: HASH = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def mac(self, prefix: bytes, body: bytes) -> bytes:
        """HMAC-SHA256 of ``prefix + body``."""
        inner = self._inner.copy()
        inner.update(prefix)
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return "HmacKey(<redacted>)"


def decode_b64(text: str) -> bytes | None:
    """Strict standard base64 (padding optional), or None when `text` is not base64."""
    try:
        return binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII characters in a str
        return None


def parse_keys(
    whsecret: str | bytes | Sequence[str | bytes],
) -> tuple[tuple[HmacKey, ...], tuple[bytes, ...]]:
    """``(hmac_keys, raw ed25519_public_keys)``, each in the order given (newest first).

    Raises `InvalidSecretError` naming the position of the first bad key, never its value.
    """
    given: Sequence[str | bytes] = (
        [whsecret] if isinstance(whsecret, str | bytes | bytearray) else whsecret
    )
    if not given:
        raise InvalidSecretError(index=0, reason="no secret or public key given")
    secrets: list[bytes] = []
    public_keys: list[bytes] = []
    for index, key in enumerate(given):
        if isinstance(key, bytes | bytearray):
            secrets.append(_check_secret_size(index, bytes(key)))
        elif not isinstance(key, str):
            raise InvalidSecretError(
                index=index, reason=f"expected str or bytes, got {type(key).__name__}"
            )
        elif key.startswith(SECRET_PREFIX):
            secrets.append(_check_secret_size(index, _decode(index, key, SECRET_PREFIX)))
        elif key.startswith(PUBLIC_KEY_PREFIX):
            raw = _decode(index, key, PUBLIC_KEY_PREFIX)
            if len(raw) != ED25519_PUBLIC_KEY_BYTES:
                raise InvalidSecretError(
                    index=index,
                    reason=f"a whpk_ key decodes to {len(raw)} bytes, "
                    f"expected {ED25519_PUBLIC_KEY_BYTES}",
                )
            public_keys.append(raw)
        elif key and (unprefixed := decode_b64(key)) is not None:
            # What every official Standard Webhooks library accepts: the secret without its
            # prefix (the base64 alone). The key length rules still apply.
            secrets.append(_check_secret_size(index, unprefixed))
        else:
            raise InvalidSecretError(
                index=index,
                reason=f"expected a {SECRET_PREFIX!r} secret, a {PUBLIC_KEY_PREFIX!r} public "
                "key or the base64 of an HMAC secret (pass bytes for an already-decoded key)",
            )
    return tuple(HmacKey(secret) for secret in secrets), tuple(public_keys)


def _decode(index: int, key: str, prefix: str) -> bytes:
    raw = decode_b64(key[len(prefix) :])
    if raw is None:
        raise InvalidSecretError(index=index, reason=f"not valid base64 after {prefix!r}")
    return raw


def _check_secret_size(index: int, raw: bytes) -> bytes:
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise InvalidSecretError(
            index=index,
            reason=f"an HMAC secret must be {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes, "
            f"got {len(raw)}",
        )
    return raw


def load_ed25519(public_keys: tuple[bytes, ...]) -> tuple[Ed25519Check, ...] | None:
    """One checker per public key, or None when ``cryptography`` is not installed."""
    if not public_keys:
        return ()
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return None

    def checker(raw: bytes) -> Ed25519Check:
        key = Ed25519PublicKey.from_public_bytes(raw)

        def check(signature: bytes, content: bytes) -> bool:
            try:
                key.verify(signature, content)
            except InvalidSignature:
                return False
            return True

        return check

    return tuple(checker(raw) for raw in public_keys)
