"""Interop with `standardwebhooks` and `svix`: each verifies what the other signs.

The reference libraries only verify against the real clock, so these requests are stamped
with the current time (they verify well within the 5-minute window).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
from layers_webhooks import Webhook
from svix import webhooks as svix

from .material import MSG_ID, NEW_SECRET, OLD_SECRET, OTHER_SECRET

BODIES = [
    b'{"id":"evt_1","type":"content.generated","data":{"organizationId":"org_1"}}',
    '{"name":"Zoë Ünïcødé","emoji":"🦀","cjk":"漢字","sep":"\u2028"}'.encode(),
    b'{\n  "pretty": [1, 2.5, true, null],\n  "z": "last"\n}',
]
REFERENCES: dict[str, Any] = {
    "standardwebhooks": standardwebhooks.Webhook,
    "svix": svix.Webhook,
}


def now() -> int:
    return int(time.time())


def headers(prefix: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        f"{prefix}-id": MSG_ID,
        f"{prefix}-timestamp": str(timestamp),
        f"{prefix}-signature": signature,
    }


@pytest.mark.parametrize("reference", REFERENCES.values(), ids=REFERENCES.keys())
@pytest.mark.parametrize("body", BODIES)
def test_reference_signatures_verify_with_ours(reference: Any, body: bytes) -> None:
    """A signature made by the reference library verifies with ours, under either name."""
    stamp = now()
    signature = reference(NEW_SECRET).sign(
        MSG_ID, datetime.fromtimestamp(stamp, UTC), body.decode()
    )
    for prefix in ("webhook", "svix"):
        assert Webhook(NEW_SECRET).verify(body, headers(prefix, stamp, signature)) == (
            standardwebhooks.Webhook(NEW_SECRET).verify(body, headers("webhook", stamp, signature))
        )


@pytest.mark.parametrize("reference", REFERENCES.values(), ids=REFERENCES.keys())
@pytest.mark.parametrize("body", BODIES)
def test_our_signatures_verify_with_the_reference(reference: Any, body: bytes) -> None:
    """A header made by sign_header verifies with the reference library."""
    stamp = now()
    signature = Webhook(NEW_SECRET).sign_header(MSG_ID, stamp, body)
    reference(NEW_SECRET).verify(body, headers("webhook", stamp, signature))


@pytest.mark.parametrize("reference", REFERENCES.values(), ids=REFERENCES.keys())
def test_our_rotated_header_verifies_with_either_secret_in_the_reference(reference: Any) -> None:
    """A two-secret header verifies with a reference holding only the new or only the old."""
    body, stamp = BODIES[1], now()
    signature = Webhook([NEW_SECRET, OLD_SECRET]).sign_header(MSG_ID, stamp, body)
    for secret in (NEW_SECRET, OLD_SECRET):
        reference(secret).verify(body, headers("webhook", stamp, signature))
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        reference(OTHER_SECRET).verify(body, headers("webhook", stamp, signature))


@pytest.mark.parametrize("reference", REFERENCES.values(), ids=REFERENCES.keys())
def test_a_rotated_reference_header_verifies_with_ours(reference: Any) -> None:
    """Entries signed by two reference instances verify with ours holding either secret."""
    body, stamp = BODIES[0], now()
    moment = datetime.fromtimestamp(stamp, UTC)
    signature = " ".join(
        reference(secret).sign(MSG_ID, moment, body.decode()) for secret in (NEW_SECRET, OLD_SECRET)
    )
    for configured in ([NEW_SECRET], [OLD_SECRET], [OTHER_SECRET, OLD_SECRET]):
        assert (
            Webhook(configured).verify(body, headers("webhook", stamp, signature))["id"] == "evt_1"
        )


@pytest.mark.parametrize("body", BODIES)
def test_sign_matches_the_reference_sign_exactly(body: bytes) -> None:
    """Our standardwebhooks-style sign() returns the reference's string for the same input."""
    moment = datetime.fromtimestamp(1614265330, UTC)
    ours = Webhook(NEW_SECRET).sign(MSG_ID, moment, body.decode())
    assert ours == standardwebhooks.Webhook(NEW_SECRET).sign(MSG_ID, moment, body.decode())
    assert ours == svix.Webhook(NEW_SECRET).sign(MSG_ID, moment, body.decode())


@pytest.mark.parametrize("body", [b'{"id":"evt_1"}', '{"name":"café"}'.encode()])
def test_a_secret_without_its_prefix_is_the_same_key_as_in_the_reference(body: bytes) -> None:
    """A partner moving from the official libraries configures the base64 alone (they strip
    `whsec_` when present): ours accepts it and signs exactly as they do."""
    bare = NEW_SECRET.removeprefix("whsec_")
    moment = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    reference = standardwebhooks.Webhook(bare).sign(MSG_ID, moment, body.decode())
    assert Webhook(bare).sign(MSG_ID, moment, body.decode()) == reference
    assert reference == svix.Webhook(bare).sign(MSG_ID, moment, body.decode())
    signed = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": reference,
    }
    assert Webhook(bare).verify_at(body, signed, int(moment.timestamp())) is not None
