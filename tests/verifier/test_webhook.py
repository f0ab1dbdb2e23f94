"""Webhook: the scheme, the timestamp window, rotation, payloads and configuration."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from layers_webhooks import (
    InvalidPayloadError,
    InvalidSecretError,
    MalformedHeaderError,
    MissingHeaderError,
    NoMatchingSignatureError,
    TimestampTooNewError,
    TimestampTooOldError,
    Webhook,
    WebhookVerificationError,
)

from .material import (
    BODY,
    MSG_ID,
    NEW_SECRET,
    NOW,
    OFFICIAL_BODY,
    OFFICIAL_ID,
    OFFICIAL_SECRET,
    OFFICIAL_SIGNATURE,
    OFFICIAL_TIMESTAMP,
    OLD_SECRET,
    OTHER_SECRET,
    raw_key,
    signed,
    v1,
)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- the scheme ---------------------------------------------------------------------------


def test_sign_header_reproduces_the_official_standard_webhooks_vector() -> None:
    """sign_header gives the published signature for the official Standard Webhooks vector."""
    wh = Webhook(OFFICIAL_SECRET)
    assert wh.sign_header(OFFICIAL_ID, OFFICIAL_TIMESTAMP, OFFICIAL_BODY) == OFFICIAL_SIGNATURE


def test_verify_accepts_the_official_vector_and_returns_the_parsed_body() -> None:
    """The official vector verifies at its own timestamp and yields json.loads of the body."""
    headers = {
        "webhook-id": OFFICIAL_ID,
        "webhook-timestamp": str(OFFICIAL_TIMESTAMP),
        "webhook-signature": OFFICIAL_SIGNATURE,
    }
    assert Webhook(OFFICIAL_SECRET).verify_at(OFFICIAL_BODY, headers, OFFICIAL_TIMESTAMP) == {
        "test": 2432232314
    }


def test_sign_header_has_one_entry_per_secret_newest_first() -> None:
    """With several secrets, the header lists one v1 entry per secret in the order given."""
    header = Webhook([NEW_SECRET, OLD_SECRET]).sign_header(MSG_ID, NOW, BODY)
    stamp = str(NOW)
    assert header == f"{v1(NEW_SECRET, MSG_ID, stamp, BODY)} {v1(OLD_SECRET, MSG_ID, stamp, BODY)}"


@pytest.mark.parametrize(
    "timestamp",
    [
        datetime.fromtimestamp(OFFICIAL_TIMESTAMP, UTC),
        datetime.fromtimestamp(OFFICIAL_TIMESTAMP, UTC).replace(tzinfo=None),  # naive = UTC
        datetime.fromtimestamp(OFFICIAL_TIMESTAMP, timezone(timedelta(hours=-5))),
        datetime.fromtimestamp(OFFICIAL_TIMESTAMP + 0.999, UTC),  # floored like the reference
        OFFICIAL_TIMESTAMP,
    ],
    ids=["aware-utc", "naive", "aware-minus-5h", "fractional", "int"],
)
def test_sign_is_standardwebhooks_compatible(timestamp: datetime | int) -> None:
    """sign(msg_id, timestamp, data) returns the one v1 entry, for datetimes and ints alike."""
    wh = Webhook(OFFICIAL_SECRET)
    assert wh.sign(OFFICIAL_ID, timestamp, OFFICIAL_BODY.decode()) == OFFICIAL_SIGNATURE
    assert wh.sign(OFFICIAL_ID, timestamp, OFFICIAL_BODY) == OFFICIAL_SIGNATURE


def test_sign_uses_only_the_newest_secret() -> None:
    """sign() returns a single entry, made with the first (newest) secret."""
    entry = Webhook([NEW_SECRET, OLD_SECRET]).sign(MSG_ID, NOW, BODY)
    assert entry == v1(NEW_SECRET, MSG_ID, str(NOW), BODY)


@pytest.mark.parametrize(
    ("msg_id", "timestamp"),
    [("", NOW), ("msg.1", NOW), ("msg 1", NOW), ("x" * 257, NOW), (MSG_ID, -1), (MSG_ID, 10**12)],
    ids=["empty-id", "dot-in-id", "space-in-id", "long-id", "negative-ts", "13-digit-ts"],
)
def test_sign_header_refuses_what_a_receiver_would_reject(msg_id: str, timestamp: int) -> None:
    """The signer refuses ids and timestamps the verifier rejects, instead of sending them."""
    with pytest.raises(ValueError, match=r"msg_id|timestamp"):
        Webhook(NEW_SECRET).sign_header(msg_id, timestamp, BODY)


def test_signing_needs_a_secret() -> None:
    """A Webhook holding only a public key cannot sign: InvalidSecretError, a ValueError."""
    from .material import PUBLIC_KEY

    with pytest.raises(InvalidSecretError, match="no whsec_ secret"):
        Webhook(PUBLIC_KEY).sign_header(MSG_ID, NOW, BODY)


def test_verify_uses_the_raw_bytes_never_a_reserialisation() -> None:
    """Whitespace and key order are signed as sent; the re-serialised body does not verify."""
    body = b'{ "b": 1,   "a": [1, 2] }'
    headers = signed(body=body)
    wh = Webhook(NEW_SECRET)
    assert wh.verify_at(body, headers, NOW) == {"b": 1, "a": [1, 2]}
    with pytest.raises(NoMatchingSignatureError):
        wh.verify_at(json.dumps(json.loads(body)).encode(), headers, NOW)


@pytest.mark.parametrize(
    "data",
    [BODY, BODY.decode(), bytearray(BODY), memoryview(BODY)],
    ids=["bytes", "str", "bytearray", "memoryview"],
)
def test_verify_accepts_the_body_as_bytes_or_text(data: Any) -> None:
    """The raw body may be bytes, bytes-like, or the exact text (the reference accepts str)."""
    assert Webhook(NEW_SECRET).verify_at(data, signed(), NOW)["data"] == {"organizationId": "org_1"}


def test_json_parse_false_checks_the_signature_only() -> None:
    """json_parse=False (the reference's flag) returns None and does not parse the body."""
    body = b"\xff not json"
    wh = Webhook(NEW_SECRET)
    assert wh.verify_at(body, signed(body=body), NOW, json_parse=False) is None
    with pytest.raises(NoMatchingSignatureError):
        wh.verify_at(body + b"!", signed(body=body), NOW, json_parse=False)


def test_verify_uses_the_current_time() -> None:
    """verify() checks the timestamp against the real clock: a 2023 timestamp is too old."""
    with pytest.raises(TimestampTooOldError):
        Webhook(NEW_SECRET).verify(BODY, signed())


# -- the timestamp window -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "tolerance", "expected"),
    [
        (0, 300, None),
        (300, 300, None),
        (-300, 300, None),
        (301, 300, TimestampTooOldError),
        (-301, 300, TimestampTooNewError),
        (3600, 300, TimestampTooOldError),
        (0, 0, None),
        (1, 0, TimestampTooOldError),
        (-1, 0, TimestampTooNewError),
        (3599, timedelta(hours=1), None),
        (-3601, timedelta(hours=1), TimestampTooNewError),
    ],
)
def test_tolerance_is_enforced_in_both_directions(
    age: int, tolerance: float | timedelta, expected: type[Exception] | None
) -> None:
    """A message `age` seconds old passes iff |age| <= tolerance; else too old / too new."""
    wh = Webhook(NEW_SECRET, tolerance=tolerance)
    if expected is None:
        assert wh.verify_at(BODY, signed(), NOW + age) is not None
    else:
        with pytest.raises(expected):
            wh.verify_at(BODY, signed(), NOW + age)


def test_timestamp_errors_carry_what_a_log_line_needs() -> None:
    """A too-old error carries msg_id, timestamp, now and tolerance as attributes."""
    with pytest.raises(TimestampTooOldError) as caught:
        Webhook(NEW_SECRET, tolerance=60).verify_at(BODY, signed(), NOW + 61.5)
    error = caught.value
    assert (error.msg_id, error.timestamp, error.now, error.tolerance) == (
        MSG_ID,
        NOW,
        NOW + 61.5,
        60.0,
    )
    assert "62 s in the past" in str(error)


def test_default_tolerance_is_five_minutes() -> None:
    """Without a tolerance argument the window is 300 seconds."""
    assert Webhook(NEW_SECRET).tolerance == 300.0


@pytest.mark.parametrize("tolerance", [-1, float("nan"), float("inf"), timedelta(seconds=-1)])
def test_a_nonsensical_tolerance_is_a_configuration_error(tolerance: float | timedelta) -> None:
    """Negative or non-finite tolerances raise ValueError from the constructor."""
    with pytest.raises(ValueError, match="tolerance"):
        Webhook(NEW_SECRET, tolerance=tolerance)


@pytest.mark.parametrize(
    "stamp",
    [
        "",
        " 1700000000",
        "1700000000 ",
        "+1700000000",
        "-1700000000",
        "1_700_000_000",
        "1.7e9",
        "1700000000.0",
        "0x6553f100",
        "١٧٠٠٠٠٠٠٠٠",  # Arabic-Indic digits: int() accepts them
        "１７００００００００",  # fullwidth digits: int() accepts them too
        "¹⁷⁰⁰⁰⁰⁰⁰⁰⁰",  # superscripts: str.isdigit() is true
        "01700000000",
        "1" * 13,
        "nan",
        "inf",
    ],
)
def test_timestamp_must_be_canonical_ascii_digits(stamp: str) -> None:
    """A validly signed but non-canonical timestamp is a MalformedHeaderError, never parsed."""
    with pytest.raises(MalformedHeaderError) as caught:
        Webhook(NEW_SECRET).verify_at(BODY, signed(timestamp=stamp), NOW)
    assert caught.value.header == "webhook-timestamp"


def test_timestamp_zero_is_canonical() -> None:
    """'0' is the one canonical timestamp starting with a zero (and is far too old)."""
    with pytest.raises(TimestampTooOldError):
        Webhook(NEW_SECRET).verify_at(BODY, signed(timestamp="0"), NOW)


# -- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_header_is_required(missing: str) -> None:
    """Dropping any of the three headers raises MissingHeaderError naming it."""
    headers = signed()
    del headers[missing]
    with pytest.raises(MissingHeaderError) as caught:
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)
    assert caught.value.header == missing


@pytest.mark.parametrize(
    "msg_id",
    ["", "msg 1", "msg.1", "x" * 257, "msg\x00", "msg\t1", "msgé", "msg\u2028"],
    ids=["empty", "space", "dot", "too-long", "nul", "tab", "non-ascii", "line-separator"],
)
def test_webhook_id_must_be_printable_ascii_without_dots(msg_id: str) -> None:
    """An id that could blur the `{id}.{timestamp}.{body}` framing is malformed."""
    with pytest.raises(MalformedHeaderError) as caught:
        Webhook(NEW_SECRET).verify_at(BODY, signed(msg_id=msg_id), NOW)
    assert caught.value.header == "webhook-id"


# -- signatures ---------------------------------------------------------------------------


def valid_entry() -> str:
    return v1(NEW_SECRET, MSG_ID, str(NOW), BODY)


@pytest.mark.parametrize(
    "noise",
    [
        "v2,c29tZXRoaW5nIGVsc2U=",
        "v1a,c29tZXRoaW5n",
        "garbage",
        "v1,",
        ",AAAA",
        "v1,not base64!",
        "v1,!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
        "v1," + "A" * 43,  # unpadded: not canonical
        "v1," + b64(bytes(31)),
        "v1," + "é" * 44,
        "v1,a,b",
        "",  # doubled space
    ],
)
def test_unknown_and_malformed_entries_are_skipped(noise: str) -> None:
    """Junk next to a valid entry, before or after it, never breaks verification."""
    wh = Webhook(NEW_SECRET)
    for header in (f"{noise} {valid_entry()}", f"{valid_entry()} {noise}"):
        headers = {**signed(), "webhook-signature": header}
        assert wh.verify_at(BODY, headers, NOW) is not None


def test_no_usable_entry_is_no_matching_signature() -> None:
    """A header of only unknown versions and junk raises NoMatchingSignatureError saying so."""
    headers = {**signed(), "webhook-signature": "v2,AAAA garbage v1,!!"}
    with pytest.raises(NoMatchingSignatureError) as caught:
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)
    assert caught.value.versions == ("v2", "v1")
    assert caught.value.checked == 0
    assert caught.value.msg_id == MSG_ID


def test_too_many_entries_is_a_malformed_header() -> None:
    """More than 32 entries bounds the work of one request: MalformedHeaderError."""
    header = " ".join([valid_entry()] * 33)
    with pytest.raises(MalformedHeaderError, match="more than 32"):
        Webhook(NEW_SECRET).verify_at(BODY, {**signed(), "webhook-signature": header}, NOW)


def test_an_oversized_signature_header_is_malformed() -> None:
    """A signature header over 8 KiB is rejected before it is split."""
    header = valid_entry() + " " * 9000
    with pytest.raises(MalformedHeaderError, match="longer than 8192"):
        Webhook(NEW_SECRET).verify_at(BODY, {**signed(), "webhook-signature": header}, NOW)


@pytest.mark.parametrize(
    ("configured", "signed_with", "accepted"),
    [
        ([NEW_SECRET], [NEW_SECRET], True),
        ([NEW_SECRET, OLD_SECRET], [NEW_SECRET], True),
        ([NEW_SECRET, OLD_SECRET], [OLD_SECRET], True),
        ([NEW_SECRET, OLD_SECRET], [NEW_SECRET, OLD_SECRET], True),
        ([NEW_SECRET, OLD_SECRET], [OLD_SECRET, NEW_SECRET], True),
        ([NEW_SECRET], [OTHER_SECRET, NEW_SECRET], True),
        ([OLD_SECRET], [NEW_SECRET, OLD_SECRET], True),
        ([NEW_SECRET], [OLD_SECRET], False),
        ([NEW_SECRET, OLD_SECRET], [OTHER_SECRET], False),
    ],
)
def test_rotation_accepts_any_matching_secret_and_signature_pair(
    configured: list[str], signed_with: list[str], accepted: bool
) -> None:
    """Several secrets x several entries: one matching pair is enough, none is an error."""
    wh = Webhook(configured)
    headers = signed(*signed_with)
    if accepted:
        assert wh.verify_at(BODY, headers, NOW) is not None
    else:
        with pytest.raises(NoMatchingSignatureError) as caught:
            wh.verify_at(BODY, headers, NOW)
        assert caught.value.checked == len(signed_with)


@pytest.mark.parametrize(
    ("field", "value"),
    [("webhook-id", "msg_other"), ("webhook-timestamp", str(NOW + 1))],
)
def test_the_id_and_timestamp_are_signed(field: str, value: str) -> None:
    """Changing the id or the timestamp invalidates the signature."""
    headers = {**signed(), field: value}
    with pytest.raises(NoMatchingSignatureError):
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)


# -- payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # an encoded surrogate
        ("{}".encode("utf-16"), "not UTF-8"),  # json.loads(bytes) would accept it
        (b"\xef\xbb\xbf{}", "not JSON"),  # a UTF-8 byte order mark
        (b"", "not JSON"),
        (b"<xml/>", "not JSON"),
        (b'{"a": 1} trailing', "not JSON"),
        (b'{"a": NaN}', "not JSON"),
        (b"[Infinity]", "not JSON"),
        (b"1" * 5000, "not JSON"),  # beyond Python's int digit limit
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=[
        "invalid-utf8",
        "utf8-surrogate",
        "utf16",
        "bom",
        "empty",
        "xml",
        "trailing",
        "nan",
        "infinity",
        "huge-int",
        "deep",
    ],
)
def test_a_signed_body_that_is_not_utf8_json_is_an_invalid_payload(
    body: bytes, reason: str
) -> None:
    """A correctly signed body that is not strict UTF-8 JSON raises InvalidPayloadError."""
    with pytest.raises(InvalidPayloadError, match=reason) as caught:
        Webhook(NEW_SECRET).verify_at(body, signed(body=body), NOW)
    assert caught.value.msg_id == MSG_ID


@pytest.mark.parametrize(
    "data", [{"a": 1}, None, 42, "\ud800"], ids=["dict", "none", "int", "lone-surrogate"]
)
def test_a_body_that_is_not_raw_bytes_or_text_is_an_invalid_payload(data: Any) -> None:
    """Passing a parsed body (or anything not bytes/str) fails verification with a hint."""
    with pytest.raises(InvalidPayloadError, match=r"raw request body|surrogates"):
        Webhook(NEW_SECRET).verify_at(data, signed(), NOW)


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("whsecret", "index", "reason"),
    [
        ("", 0, "expected a 'whsec_'"),
        ("whsec_", 0, "must be 24-64 bytes, got 0"),
        ("whsec_!!!!not-base64", 0, "not valid base64"),
        ("whsec_" + b64(bytes(16)), 0, "got 16"),
        ("whsec_" + b64(bytes(65)), 0, "got 65"),
        ("whsec_" + base64.urlsafe_b64encode(bytes([251] * 32)).decode(), 0, "not valid base64"),
        (b64(bytes(16)), 0, "got 16"),
        ("sk_live_" + b64(bytes(32)), 0, "expected a 'whsec_'"),
        (" whsec_" + b64(bytes(32)), 0, "expected a 'whsec_'"),
        ("whpk_" + b64(bytes(31)), 0, "expected 32"),
        (bytes(8), 0, "got 8"),
        ([], 0, "no secret"),
        ([NEW_SECRET, "whsec_" + b64(bytes(8))], 1, "got 8"),
        ([NEW_SECRET, 42], 1, "expected str or bytes, got int"),
    ],
)
def test_malformed_keys_are_a_configuration_error(whsecret: Any, index: int, reason: str) -> None:
    """A bad key raises InvalidSecretError (a ValueError, not a verification error)."""
    with pytest.raises(InvalidSecretError, match=reason) as caught:
        Webhook(whsecret)
    assert caught.value.index == index
    assert not isinstance(caught.value, WebhookVerificationError)


@pytest.mark.parametrize(
    "whsecret",
    [
        NEW_SECRET,
        NEW_SECRET.rstrip("="),  # unpadded base64
        NEW_SECRET.removeprefix("whsec_"),  # no prefix, as every official library accepts
        NEW_SECRET.removeprefix("whsec_").rstrip("="),  # no prefix and no padding
        raw_key(NEW_SECRET),  # already decoded, as standardwebhooks accepts
        bytearray(raw_key(NEW_SECRET)),
        (NEW_SECRET,),
    ],
    ids=["whsec", "unpadded", "unprefixed", "unprefixed-unpadded", "bytes", "bytearray", "tuple"],
)
def test_equivalent_spellings_of_one_secret_verify_alike(whsecret: Any) -> None:
    """Padded, unpadded, unprefixed, raw-bytes and tuple forms of one secret are one key."""
    assert Webhook(whsecret).verify_at(BODY, signed(), NOW) is not None


def test_repr_and_errors_never_show_a_secret() -> None:
    """The repr is redacted, and no error message or attribute contains the secret."""
    secret_text = NEW_SECRET.removeprefix("whsec_")
    wh = Webhook([NEW_SECRET, OLD_SECRET], tolerance=60)
    assert repr(wh) == "Webhook(secrets=<2 redacted>, public_keys=0, tolerance=60)"
    headers = {**signed(OTHER_SECRET)}
    errors: list[BaseException] = []
    for call in (
        lambda: wh.verify_at(BODY, headers, NOW),
        lambda: wh.verify_at(BODY, headers, NOW + 999),
        lambda: Webhook("whsec_" + secret_text[:20]),
        lambda: Webhook(NEW_SECRET + "!"),
    ):
        with pytest.raises((WebhookVerificationError, InvalidSecretError)) as caught:
            call()
        errors.append(caught.value)
    for error in errors:
        shown = f"{error!s} {error!r} {vars(error)!r}"
        assert secret_text[:12] not in shown
        assert repr(raw_key(NEW_SECRET))[2:14] not in shown
