"""`Webhook`: sign and verify Standard Webhooks requests (the one implementation).

The scheme (https://www.standardwebhooks.com, "Signature scheme"):

- signed content: ``{webhook-id}.{webhook-timestamp}.{raw body}`` as bytes;
- ``v1``: base64(HMAC-SHA256(key, content)), the key being the bytes after ``whsec_``;
- ``v1a``: base64(ed25519 signature of content), checked with a ``whpk_`` public key;
- ``webhook-signature``: space-separated ``<version>,<base64>`` entries, one per key, so a
  secret can be rotated without downtime. Any (key, entry) match is accepted.

Verification order, cheapest and least trusting first: headers → timestamp window →
signatures (constant-time) → JSON → replay cache. Everything that can go wrong surfaces as a
`WebhookVerificationError` subclass; `verify` lets nothing else escape.
"""

from __future__ import annotations

import binascii
import hmac
import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import (
    DuplicateMessageError,
    InvalidPayloadError,
    InvalidSecretError,
    NoMatchingSignatureError,
    TimestampTooNewError,
    TimestampTooOldError,
)
from .headers import HeaderSource, SignedHeaders, id_problem, read_signed_headers
from .keys import ED25519_EXTRA_HINT, load_ed25519, parse_keys
from .replay import SeenIdStore

__all__ = ["DEFAULT_TOLERANCE", "Webhook"]

DEFAULT_TOLERANCE = 300.0  # seconds, both directions; the Standard Webhooks libraries' default
_V1_LENGTH = 44  # base64 of a 32-byte HMAC-SHA256
_V1A_LENGTH = 88  # base64 of a 64-byte ed25519 signature


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# NaN and ±Infinity are Python extensions, not JSON; built once, not per call.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


class Webhook:
    """Verify (and sign) webhooks for one endpoint's keys.

    >>> wh = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    >>> wh.sign_header("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='

    `whsecret` is one key or a list of keys, newest first: ``whsec_`` HMAC secrets (or raw
    ``bytes``) and/or ``whpk_`` ed25519 public keys. Keys are decoded here, once; a malformed
    one raises `InvalidSecretError`. `tolerance` bounds how far ``webhook-timestamp`` may be
    from now, in the past or the future. `seen_ids`, if given, rejects a second delivery of an
    accepted ``webhook-id`` within that window (`DuplicateMessageError`).

    Instances are immutable and safe to share between threads.
    """

    __slots__ = ("_ed25519", "_public_key_count", "_secrets", "_seen_ids", "_tolerance")

    def __init__(
        self,
        whsecret: str | bytes | Sequence[str | bytes],
        *,
        tolerance: float | timedelta = DEFAULT_TOLERANCE,
        seen_ids: SeenIdStore | None = None,
    ) -> None:
        seconds = tolerance.total_seconds() if isinstance(tolerance, timedelta) else tolerance
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"tolerance must be a finite number of seconds >= 0, got {seconds}")
        self._secrets, public_keys = parse_keys(whsecret)
        self._public_key_count = len(public_keys)
        self._ed25519 = load_ed25519(public_keys)
        self._tolerance = float(seconds)
        self._seen_ids = seen_ids

    @property
    def tolerance(self) -> float:
        """Allowed distance between ``webhook-timestamp`` and now, in seconds."""
        return self._tolerance

    def __repr__(self) -> str:
        return (
            f"Webhook(secrets=<{len(self._secrets)} redacted>, "
            f"public_keys={self._public_key_count}, tolerance={self._tolerance:g})"
        )

    # -- verifying -----------------------------------------------------------------------

    def verify(self, data: bytes | str, headers: HeaderSource, *, json_parse: bool = True) -> Any:
        """Verify the raw body `data` against `headers` now; return the parsed JSON.

        Same call as `standardwebhooks.Webhook.verify`. With ``json_parse=False`` the body
        is not parsed and None is returned. Raises only `WebhookVerificationError`s.
        """
        return self.verify_at(data, headers, time.time(), json_parse=json_parse)

    def verify_at(
        self, data: bytes | str, headers: HeaderSource, now: float, *, json_parse: bool = True
    ) -> Any:
        """`verify` as of `now` (unix seconds): the clock is a parameter, as in tests."""
        body = _body_bytes(data)
        signed = read_signed_headers(headers)
        self._check_window(signed, now)
        self._check_signatures(signed, body)
        payload = _parse_json(signed.msg_id, body) if json_parse else None
        if self._seen_ids is not None:
            # Remember the id for as long as this message could still pass the window.
            ttl = max(signed.timestamp + self._tolerance - now, 1.0)
            if not self._seen_ids.add(signed.msg_id, ttl=ttl, now=now):
                raise DuplicateMessageError(msg_id=signed.msg_id, timestamp=signed.timestamp)
        return payload

    def _check_window(self, signed: SignedHeaders, now: float) -> None:
        if signed.timestamp < now - self._tolerance:
            raise TimestampTooOldError(
                msg_id=signed.msg_id, timestamp=signed.timestamp, now=now, tolerance=self._tolerance
            )
        if signed.timestamp > now + self._tolerance:
            raise TimestampTooNewError(
                msg_id=signed.msg_id, timestamp=signed.timestamp, now=now, tolerance=self._tolerance
            )

    def _check_signatures(self, signed: SignedHeaders, body: bytes) -> None:
        """Return if any (key, entry) pair matches; unknown versions and junk are skipped."""
        prefix = b"%s.%d." % (signed.msg_id.encode(), signed.timestamp)
        expected: list[bytes] | None = None
        content: bytes | None = None
        checked = 0
        v1a_skipped = False
        for version, signature in signed.signatures:
            if version == "v1" and self._secrets:
                candidate = _decode_signature(signature, _V1_LENGTH)
                if candidate is None:
                    continue
                checked += 1
                if expected is None:  # computed once, and only if a v1 entry exists
                    expected = [key.mac(prefix, body) for key in self._secrets]
                for digest in expected:
                    if hmac.compare_digest(digest, candidate):
                        return
            elif version == "v1a" and self._public_key_count:
                candidate = _decode_signature(signature, _V1A_LENGTH)
                if candidate is None:
                    continue
                if self._ed25519 is None:  # whpk_ keys configured, cryptography missing
                    v1a_skipped = True
                    continue
                checked += 1
                if content is None:  # ed25519 takes the message in one piece
                    content = prefix + body
                if any(check(candidate, content) for check in self._ed25519):
                    return
        versions = tuple(dict.fromkeys(version for version, _ in signed.signatures))
        raise NoMatchingSignatureError(
            msg_id=signed.msg_id,
            timestamp=signed.timestamp,
            versions=versions,
            checked=checked,
            hint=_hint(versions, v1a_skipped=v1a_skipped, has_secrets=bool(self._secrets)),
        )

    # -- signing -------------------------------------------------------------------------

    def sign_header(self, msg_id: str, timestamp: int, payload: bytes) -> str:
        """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, newest first.

        `timestamp` is the unix seconds sent as ``webhook-timestamp``. Raises ValueError for
        an id or timestamp this library would reject on the receiving side, and
        `InvalidSecretError` when only public keys are configured.
        """
        prefix = self._signed_prefix(msg_id, timestamp)
        return " ".join(
            "v1," + binascii.b2a_base64(key.mac(prefix, payload), newline=False).decode()
            for key in self._secrets
        )

    def sign(self, msg_id: str, timestamp: datetime | int, data: str | bytes) -> str:
        """``v1,<base64>`` with the newest secret: `standardwebhooks.Webhook.sign`'s call.

        A naive `timestamp` is taken as UTC, like the reference; an aware one is converted.
        """
        if isinstance(timestamp, datetime):
            aware = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
            timestamp = math.floor(aware.timestamp())
        payload = data.encode() if isinstance(data, str) else data
        mac = self._secrets[0].mac(self._signed_prefix(msg_id, timestamp), payload)
        return "v1," + binascii.b2a_base64(mac, newline=False).decode()

    def _signed_prefix(self, msg_id: str, timestamp: int) -> bytes:
        """``{msg_id}.{timestamp}.``: the signed content is this prefix, then the body."""
        if not self._secrets:
            raise InvalidSecretError(index=0, reason="no whsec_ secret configured to sign with")
        problem = id_problem(msg_id)
        if problem is not None:
            raise ValueError(f"msg_id {msg_id!r}: {problem}")
        if not 0 <= timestamp < 10**12:
            raise ValueError(f"timestamp must be unix seconds, got {timestamp}")
        return b"%s.%d." % (msg_id.encode(), timestamp)


def _body_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):  # the reference accepts str; it must be the exact text sent
        try:
            return data.encode()
        except UnicodeEncodeError:
            raise InvalidPayloadError(msg_id="", reason="body contains lone surrogates") from None
    raise InvalidPayloadError(
        msg_id="",
        reason=f"expected the raw request body as bytes or str, got {type(data).__name__}",
    )


def _decode_signature(signature: str, length: int) -> bytes | None:
    """The signature bytes, if `signature` is canonical padded base64 of `length` chars."""
    if len(signature) != length:
        return None
    try:
        return binascii.a2b_base64(signature, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        return None


def _parse_json(msg_id: str, body: bytes) -> Any:
    try:
        return _JSON.decode(body.decode())
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 (byte {error.start})"
    except RecursionError:
        reason = "JSON nested too deeply"
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, int digit limit
        reason = f"not JSON ({error})"
    raise InvalidPayloadError(msg_id=msg_id, reason=reason)


def _hint(versions: tuple[str, ...], *, v1a_skipped: bool, has_secrets: bool) -> str:
    """A next step for the reader of the error, when the header shows what went wrong."""
    if v1a_skipped:
        return ED25519_EXTRA_HINT
    if "v1" not in versions and "v1a" in versions:
        return "only v1a signatures were sent: configure the sender's whpk_ public key"
    if "v1" in versions and not has_secrets:
        return "only v1 signatures were sent: configure the endpoint's whsec_ secret"
    return ""
