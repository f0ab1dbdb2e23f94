"""Key handling: the precomputed HMAC equals the standard library's, and stays redacted."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layers_webhooks.keys import HmacKey, decode_b64


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=1, max_size=200), prefix=st.binary(), body=st.binary(max_size=5000))
def test_hmac_key_equals_hmac_digest(key: bytes, prefix: bytes, body: bytes) -> None:
    """HmacKey.mac is HMAC-SHA256 of prefix + body, for short, block-sized and long keys."""
    assert HmacKey(key).mac(prefix, body) == hmac.digest(key, prefix + body, "sha256")


@pytest.mark.parametrize("size", [24, 32, 63, 64, 65, 128])
def test_hmac_key_is_reusable(size: int) -> None:
    """One HmacKey signs many messages; each result is independent of the previous ones."""
    key = HmacKey(bytes(range(size)))
    first = key.mac(b"a.", b"1")
    key.mac(b"b.", b"2" * 1000)
    assert key.mac(b"a.", b"1") == first == hmac.digest(bytes(range(size)), b"a.1", "sha256")


def test_hmac_key_repr_is_redacted() -> None:
    """The prepared key never shows its material."""
    assert repr(HmacKey(bytes(32))) == "HmacKey(<redacted>)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AAEC", b"\x00\x01\x02"),
        ("AAE=", b"\x00\x01"),
        ("AAE", b"\x00\x01"),  # missing padding is tolerated
        ("", b""),
        ("AA-_", None),  # URL-safe alphabet
        ("AA E", None),
        ("AAE==", None),  # excess padding
        ("A", None),
        ("AAEC\n", None),
        ("ÀÁÂÃ", None),
    ],
)
def test_decode_b64_is_strict_standard_base64(text: str, expected: bytes | None) -> None:
    """Secrets decode from the standard alphabet only; anything else is None, never raises."""
    assert decode_b64(text) == expected
