"""v1a: ed25519 signatures checked with `whpk_` public keys, via the optional extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from layers_webhooks import NoMatchingSignatureError, Webhook

from .material import (
    BODY,
    MSG_ID,
    NEW_SECRET,
    NOW,
    OTHER_PRIVATE,
    OTHER_PUBLIC_KEY,
    PUBLIC_KEY,
    REPO,
    signed,
    v1,
    v1a,
)

STAMP = str(NOW)


def with_signature(header: str) -> dict[str, str]:
    return {**signed(), "webhook-signature": header}


@pytest.mark.parametrize(
    ("keys", "header", "accepted"),
    [
        ([PUBLIC_KEY], v1a(MSG_ID, STAMP, BODY), True),
        ([OTHER_PUBLIC_KEY, PUBLIC_KEY], v1a(MSG_ID, STAMP, BODY), True),
        ([PUBLIC_KEY], v1a(MSG_ID, STAMP, BODY, OTHER_PRIVATE), False),
        ([PUBLIC_KEY], v1a(MSG_ID, STAMP, BODY + b" "), False),
        ([PUBLIC_KEY], v1a("msg_other", STAMP, BODY), False),
        ([NEW_SECRET, PUBLIC_KEY], f"v1a,{'A' * 88} {v1(NEW_SECRET, MSG_ID, STAMP, BODY)}", True),
        ([NEW_SECRET, PUBLIC_KEY], f"v1,{'A' * 43}= {v1a(MSG_ID, STAMP, BODY)}", True),
        ([NEW_SECRET], v1a(MSG_ID, STAMP, BODY), False),
        ([PUBLIC_KEY], v1(NEW_SECRET, MSG_ID, STAMP, BODY), False),
    ],
    ids=[
        "own-key",
        "second-key",
        "other-private-key",
        "tampered-body",
        "other-id",
        "v1-matches-v1a-junk",
        "v1a-matches-v1-junk",
        "v1a-without-public-key",
        "v1-without-secret",
    ],
)
def test_v1a_signatures_verify_with_the_public_key(
    keys: list[str], header: str, accepted: bool
) -> None:
    """A v1a entry verifies iff a configured whpk_ key made it over the same content."""
    wh = Webhook(keys)
    if accepted:
        assert wh.verify_at(BODY, with_signature(header), NOW)["id"] == "evt_1"
    else:
        with pytest.raises(NoMatchingSignatureError):
            wh.verify_at(BODY, with_signature(header), NOW)


@pytest.mark.parametrize(
    ("keys", "header", "hint"),
    [
        ([NEW_SECRET], v1a(MSG_ID, STAMP, BODY), "configure the sender's whpk_ public key"),
        ([PUBLIC_KEY], v1(NEW_SECRET, MSG_ID, STAMP, BODY), "configure the endpoint's whsec_"),
    ],
)
def test_a_scheme_without_a_key_says_which_key_is_missing(
    keys: list[str], header: str, hint: str
) -> None:
    """When the header only carries a scheme no configured key can check, the error says so."""
    with pytest.raises(NoMatchingSignatureError, match=hint) as caught:
        Webhook(keys).verify_at(BODY, with_signature(header), NOW)
    assert hint in caught.value.hint


# A child interpreter in which `import cryptography` fails, as on a machine without the extra.
WITHOUT_CRYPTOGRAPHY = """
import sys
sys.modules["cryptography"] = None  # import cryptography -> ImportError
from layers_webhooks import NoMatchingSignatureError, Webhook

headers = {"webhook-id": %(msg_id)r, "webhook-timestamp": %(stamp)r}
wh = Webhook([%(secret)r, %(public_key)r])
headers["webhook-signature"] = %(v1a)r
try:
    wh.verify_at(%(body)r, headers, %(now)r)
except NoMatchingSignatureError as error:
    print("v1a-only:", error)
headers["webhook-signature"] = %(v1a)r + " " + %(v1)r
print("v1 still verifies:", wh.verify_at(%(body)r, headers, %(now)r)["id"])
"""


def test_without_cryptography_v1a_fails_with_the_install_hint() -> None:
    """Without `cryptography`, whpk_ keys load, a v1a-only header names the extra to install,
    and v1 entries still verify."""
    code = WITHOUT_CRYPTOGRAPHY % {
        "msg_id": MSG_ID,
        "stamp": STAMP,
        "now": NOW,
        "body": BODY,
        "secret": NEW_SECRET,
        "public_key": PUBLIC_KEY,
        "v1a": v1a(MSG_ID, STAMP, BODY),
        "v1": v1(NEW_SECRET, MSG_ID, STAMP, BODY),
    }
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("v1a-only: no matching signature")
    assert lines[0].endswith('pip install "layers-webhooks[ed25519]"')
    assert lines[1] == "v1 still verifies: evt_1"
