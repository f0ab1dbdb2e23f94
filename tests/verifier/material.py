"""Keys and a request builder shared by the verifier tests.

Signatures here are computed with `hmac`/`cryptography` directly, not with the library under
test, so a test that builds a request with them checks the library against the scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REPO = Path(__file__).resolve().parents[2]
VECTORS_PATH = REPO / "schemas" / "signature-vectors.json"
README_PATH = REPO / "verifier" / "README.md"

# The official Standard Webhooks vector (a 24-byte secret, the minimum the spec allows).
OFFICIAL_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OFFICIAL_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
OFFICIAL_TIMESTAMP = 1614265330
OFFICIAL_BODY = b'{"test": 2432232314}'
OFFICIAL_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# 32-byte secrets in the format the dispatcher issues: newest first when rotating.
NEW_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OLD_SECRET = "whsec_" + base64.b64encode(bytes(range(32, 64))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(64, 96))).decode()

# RFC 8032 section 7.1, test 1: a well-known ed25519 test key pair.
ED25519_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ED25519_PRIVATE = Ed25519PrivateKey.from_private_bytes(ED25519_SEED)
ED25519_PUBLIC_RAW = ED25519_PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
PUBLIC_KEY = "whpk_" + base64.b64encode(ED25519_PUBLIC_RAW).decode()
OTHER_PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(32))
OTHER_PUBLIC_KEY = (
    "whpk_"
    + base64.b64encode(
        OTHER_PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
)

MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
NOW = 1_700_000_000
BODY = b'{"id":"evt_1","type":"content.generated","data":{"organizationId":"org_1"}}'


def raw_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The signed content, with the timestamp exactly as sent."""
    return f"{msg_id}.{timestamp}.".encode() + body


def v1(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """A `v1,<base64>` entry computed with the standard library alone."""
    mac = hmac.new(raw_key(secret), content(msg_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def v1a(msg_id: str, timestamp: str, body: bytes, private: Ed25519PrivateKey | None = None) -> str:
    """A `v1a,<base64>` entry signed with the RFC 8032 test key (or `private`)."""
    key = ED25519_PRIVATE if private is None else private
    return "v1a," + base64.b64encode(key.sign(content(msg_id, timestamp, body))).decode()


def signed(
    *secrets: str,
    msg_id: str = MSG_ID,
    timestamp: int | str = NOW,
    body: bytes = BODY,
) -> dict[str, str]:
    """Headers for `body` signed with each of `secrets` (default: NEW_SECRET)."""
    stamp = str(timestamp)
    entries = [v1(secret, msg_id, stamp, body) for secret in secrets or (NEW_SECRET,)]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": " ".join(entries),
    }
