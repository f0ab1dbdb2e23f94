"""SecretBox: AES-256-GCM at rest with key rotation, bound to its row by associated data."""

from __future__ import annotations

import base64
import re

import pytest

from dispatcher.errors import DecryptionError, EncryptionKeyError
from dispatcher.store.secretbox import KEY_BYTES, SecretBox, new_endpoint_secret

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
AAD = b"ep_01JD3ZQ8M6V7X9K2N4P5R6S7T8"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_round_trip() -> None:
    """What one box encrypts, it decrypts to the same text."""
    box = SecretBox([KEY_A])
    assert box.decrypt(box.encrypt(SECRET, aad=AAD), aad=AAD) == SECRET


def test_layout_is_key_id_nonce_ciphertext() -> None:
    """A sealed secret is 1 key-id byte, a 12-byte nonce, the ciphertext and a 16-byte tag."""
    blob = SecretBox([KEY_A]).encrypt(SECRET, aad=AAD)
    assert len(blob) == 1 + 12 + len(SECRET) + 16
    assert SECRET.encode() not in blob


def test_nonce_is_fresh_for_every_encryption() -> None:
    """Encrypting the same text twice gives different bytes (random nonce)."""
    box = SecretBox([KEY_A])
    assert box.encrypt(SECRET, aad=AAD) != box.encrypt(SECRET, aad=AAD)


def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    """After prepending a new key, old ciphertexts open and new ones use the new key only."""
    old_box = SecretBox([KEY_A])
    rotated = SecretBox([KEY_B, KEY_A])
    old_blob = old_box.encrypt(SECRET, aad=AAD)
    new_blob = rotated.encrypt(SECRET, aad=AAD)

    assert rotated.decrypt(old_blob, aad=AAD) == SECRET
    assert SecretBox([KEY_B]).decrypt(new_blob, aad=AAD) == SECRET
    with pytest.raises(DecryptionError, match="not among the configured keys"):
        old_box.decrypt(new_blob, aad=AAD)


def test_tampered_ciphertext_fails() -> None:
    """Flipping any bit of the ciphertext makes decryption fail."""
    box = SecretBox([KEY_A])
    blob = bytearray(box.encrypt(SECRET, aad=AAD))
    blob[20] ^= 0x01
    with pytest.raises(DecryptionError, match="authentication failed"):
        box.decrypt(bytes(blob), aad=AAD)


def test_wrong_aad_fails() -> None:
    """A ciphertext moved onto another row (different aad) does not decrypt."""
    box = SecretBox([KEY_A])
    blob = box.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError, match="different aad"):
        box.decrypt(blob, aad=b"ep_other")


def test_truncated_blob_fails() -> None:
    """A blob shorter than header plus tag is rejected before any crypto."""
    with pytest.raises(DecryptionError, match="too short"):
        SecretBox([KEY_A]).decrypt(b"\x01" * 20, aad=AAD)


def test_from_setting_accepts_a_comma_list_first_key_encrypts() -> None:
    """`WEBHOOKS_ENCRYPTION_KEY` with two keys (spaces allowed) encrypts with the first."""
    box = SecretBox.from_setting(f"{b64(KEY_B)} , {b64(KEY_A)}")
    blob = box.encrypt(SECRET, aad=AAD)
    assert SecretBox([KEY_B]).decrypt(blob, aad=AAD) == SECRET


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", "no encryption key given"),
        ("   ", "no encryption key given"),
        (f"{b64(KEY_A)},", "encryption key #2 is empty"),
        ("not base64!", "encryption key #1 is not standard base64"),
        (b64(KEY_A).replace("+", "-").replace("/", "_") + ",-_-_", "#2 is not standard base64"),
        (b64(bytes(16)), "encryption key #1 decodes to 16 bytes; expected 32"),
        (f"{b64(KEY_A)},{b64(bytes(48))}", "encryption key #2 decodes to 48 bytes"),
        (f"{b64(KEY_A)},{b64(KEY_B)},{b64(KEY_A)}", "encryption key #3 repeats key #1"),
    ],
)
def test_from_setting_rejects_bad_input_precisely(setting: str, message: str) -> None:
    """Each kind of bad setting names the entry and the problem."""
    with pytest.raises(EncryptionKeyError, match=re.escape(message)):
        SecretBox.from_setting(setting)


def test_errors_never_echo_key_material() -> None:
    """A wrong-length key's error message does not contain the key text."""
    text = b64(bytes(range(24)))
    with pytest.raises(EncryptionKeyError, match="decodes to 24 bytes") as info:
        SecretBox.from_setting(text)
    assert text not in str(info.value)


def test_constructor_rejects_wrong_key_length() -> None:
    """Raw keys must be exactly 32 bytes."""
    with pytest.raises(ValueError, match="key #1 is 31 bytes; expected 32"):
        SecretBox([bytes(31)])


def test_generate_makes_a_working_random_box() -> None:
    """Two generated boxes each round-trip, and neither opens the other's ciphertext."""
    first, second = SecretBox.generate(), SecretBox.generate()
    blob = first.encrypt(SECRET, aad=AAD)
    assert first.decrypt(blob, aad=AAD) == SECRET
    with pytest.raises(DecryptionError):
        second.decrypt(blob, aad=AAD)


def test_repr_is_redacted() -> None:
    """The repr shows how many keys, never their bytes or base64."""
    text = repr(SecretBox([KEY_A, KEY_B]))
    assert text == "SecretBox(keys=<2 redacted>)"
    assert b64(KEY_A) not in text


def test_new_endpoint_secret_shape() -> None:
    """Endpoint secrets are `whsec_` + standard base64 of 32 random bytes, never repeated."""
    secret = new_endpoint_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == KEY_BYTES
    assert new_endpoint_secret() != secret
