"""The Kafka boundary: record bytes become an Event with a canonical body, or a stable rejection."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher import clock
from dispatcher.core.catalog import Catalog
from dispatcher.core.envelope import (
    DEFAULT_MAX_BYTES,
    MAX_DEPTH,
    InvalidEventError,
    Rejection,
    RejectReason,
    decode_event,
    encode_event,
)
from dispatcher.core.models import Event
from dispatcher.errors import EventError

CATALOG = Catalog.load()
GOOD: dict[str, Any] = {
    "id": "evt_1",
    "type": "webhook.test",
    "created": "2026-06-09T12:00:00Z",
    "data": {"organizationId": "org_acme", "endpointId": "ep_1", "message": "hi"},
}
GOOD_BODY = (
    b'{"id":"evt_1","type":"webhook.test","created":"2026-06-09T12:00:00Z",'
    b'"data":{"organizationId":"org_acme","endpointId":"ep_1","message":"hi"}}'
)
NOON = datetime(2026, 6, 9, 12, 0, tzinfo=UTC)


def decode(value: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> Event | Rejection:
    return decode_event(value, catalog=CATALOG, max_bytes=max_bytes)


def envelope(**fields: object) -> bytes:
    """GOOD with `fields` replaced, as compact JSON (Python's json: it writes any integer)."""
    return json.dumps({**GOOD, **fields}, separators=(",", ":")).encode()


def with_data(**fields: object) -> bytes:
    return envelope(data={**GOOD["data"], **fields})


def nested(levels: int) -> object:
    """`levels` nested lists: [[[]]] is 3."""
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_reason_codes_are_stable() -> None:
    """The dead-letter reason codes are exactly these strings (stored and alerted on)."""
    assert [reason.value for reason in RejectReason] == [
        "tombstone",
        "too_large",
        "invalid_utf8",
        "malformed_json",
        "non_finite_number",
        "number_out_of_range",
        "too_deep",
        "not_an_object",
        "duplicate_keys",
        "invalid_envelope",
        "unknown_type",
        "missing_organization",
        "schema_violation",
        "undecodable_batch",
    ]


def test_a_compact_record_decodes_with_the_same_bytes_as_body() -> None:
    """A compact envelope becomes an Event whose body is the record value, byte for byte."""
    assert decode(GOOD_BODY) == Event(
        id="evt_1",
        type="webhook.test",
        created=NOON,
        organization_id="org_acme",
        body=GOOD_BODY,
    )


@pytest.mark.parametrize(
    "value",
    [
        json.dumps(GOOD).encode(),
        json.dumps(GOOD, indent=2).encode(),
        b"\n\t " + GOOD_BODY + b"\r\n",
        GOOD_BODY.replace(b'"hi"', b'"\\u0068\\u0069"'),
    ],
    ids=["spaced", "indented", "surrounding-whitespace", "escaped"],
)
def test_body_is_the_canonical_compact_json(value: bytes) -> None:
    """Whitespace and escapes are normalised: the body is the compact form in publisher order."""
    event = decode(value)
    assert isinstance(event, Event)
    assert event.body == GOOD_BODY


def test_body_keeps_the_publisher_key_order_and_utf8() -> None:
    """Keys stay in the publisher's order and non-ASCII text is sent as UTF-8, not escaped."""
    value = json.dumps(
        {
            "data": {**GOOD["data"], "message": "café ☕"},
            "type": "webhook.test",
            "id": "e",
            "created": "2026-06-09T12:00:00Z",
        }
    ).encode()
    event = decode(value)
    assert isinstance(event, Event)
    assert (
        event.body
        == (
            '{"data":{"organizationId":"org_acme","endpointId":"ep_1","message":"café ☕"},'
            '"type":"webhook.test","id":"e","created":"2026-06-09T12:00:00Z"}'
        ).encode()
    )


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2026-06-09T14:00:00+02:00", NOON),
        ("2026-06-09T07:00:00-05:00", NOON),
        ("2026-06-09T12:00:00.123456789Z", NOON + timedelta(microseconds=123456)),
    ],
)
def test_created_becomes_an_aware_utc_datetime(created: str, expected: datetime) -> None:
    """`created` is converted to UTC (nanoseconds truncate to microseconds)."""
    event = decode(envelope(created=created))
    assert isinstance(event, Event)
    assert (event.created, event.created.tzinfo) == (expected, UTC)


@pytest.mark.parametrize("event_type", CATALOG.types)
def test_every_catalog_example_decodes_into_an_event(event_type: str) -> None:
    """Each example, wrapped in an envelope, decodes into an Event of its type and org."""
    for data in CATALOG.examples(event_type):
        record = {"id": "evt_x", "type": event_type, "created": "2026-06-09T12:00:00Z"}
        value = json.dumps({**record, "data": data}, indent=1).encode()
        event = decode(value)
        assert isinstance(event, Event), event
        assert (event.type, event.organization_id) == (event_type, data["organizationId"])
        assert event.body == orjson.dumps({**record, "data": data})


def test_unnamed_fields_in_data_are_delivered() -> None:
    """Fields the type's schema does not name pass through to the body."""
    event = decode(with_data(experiment={"arm": "b"}))
    assert isinstance(event, Event)
    assert b'"experiment":{"arm":"b"}' in event.body


@pytest.mark.parametrize(
    "value",
    [
        with_data(message="time: 12:00, ratio 9:16"),
        json.dumps({**GOOD, "data": {**GOOD["data"], "message": "a:b"}}, indent=2).encode(),
        GOOD_BODY.replace(b'"hi"', b'"h\\u003ai"'),
        GOOD_BODY.replace(b'"hi"', b'"h\\u003Ai"'),
        json.dumps({**GOOD, "data": {**GOOD["data"], "score": 1e20, "message": "e+"}}).encode(),
        json.dumps({**GOOD, "data": {**GOOD["data"], "big": 2**64 - 1, "low": -(2**63)}}).encode(),
    ],
    ids=[
        "colons",
        "colons-indented",
        "escaped-colon",
        "escaped-colon-upper",
        "e-plus",
        "int-edges",
    ],
)
def test_no_false_alarms_from_the_fast_checks(value: bytes) -> None:
    """Colons in strings, `\\u003a` escapes, `e+` and 64-bit edge integers are not rejections."""
    assert isinstance(decode(value), Event)


def test_a_record_of_exactly_max_bytes_is_accepted() -> None:
    """The size limit is inclusive."""
    assert isinstance(decode(GOOD_BODY, max_bytes=len(GOOD_BODY)), Event)


def test_nesting_of_exactly_max_depth_is_accepted() -> None:
    """Envelope, data and 30 nested lists make 32 levels: accepted."""
    assert isinstance(decode(with_data(deep=nested(MAX_DEPTH - 2))), Event)


PRETTY_DUPLICATE = b"""{
  "id": "evt_1", "type": "webhook.test", "created": "2026-06-09T12:00:00Z",
  "data": {"organizationId": "org_acme", "endpointId": "ep_1", "message": "hi",
           "preview": {"kind": "a", "kind": "b"}}
}"""

CORPUS: list[tuple[str, bytes | None, RejectReason, str]] = [
    ("tombstone", None, RejectReason.TOMBSTONE, "record value is null (tombstone)"),
    (
        "oversize-checked-before-parsing",
        b"{" * (DEFAULT_MAX_BYTES + 1),
        RejectReason.TOO_LARGE,
        f"record value is {DEFAULT_MAX_BYTES + 1} bytes, over the limit of {DEFAULT_MAX_BYTES}",
    ),
    (
        "invalid-utf8",
        b'{"id":"\xff"}',
        RejectReason.INVALID_UTF8,
        "not UTF-8 at byte 7 (0xff): invalid start byte",
    ),
    (
        "latin-1",
        '{"message":"café"}'.encode("latin-1"),
        RejectReason.INVALID_UTF8,
        "not UTF-8 at byte 15 (0xe9): invalid continuation byte",
    ),
    (
        "encoded-surrogate",
        b'{"a":"\xed\xa0\x80"}',
        RejectReason.INVALID_UTF8,
        "not UTF-8 at byte 6 (0xed): invalid continuation byte",
    ),
    (
        "empty",
        b"",
        RejectReason.MALFORMED_JSON,
        "Input is a zero-length, empty document at line 1 column 1",
    ),
    ("whitespace", b" \n", RejectReason.MALFORMED_JSON, "input data is empty at line 1 column 1"),
    (
        "bom",
        b"\xef\xbb\xbf" + GOOD_BODY,
        RejectReason.MALFORMED_JSON,
        "UTF-8 byte order mark (BOM) is not supported at line 1 column 1",
    ),
    (
        "trailing-comma",
        b'{"id": "evt_1",}',
        RejectReason.MALFORMED_JSON,
        "trailing comma is not allowed at line 1 column 15",
    ),
    (
        "trailing-garbage",
        GOOD_BODY + b"x",
        RejectReason.MALFORMED_JSON,
        f"unexpected content after document at line 1 column {len(GOOD_BODY) + 1}",
    ),
    (
        "single-quotes",
        b"{'id': 1}",
        RejectReason.MALFORMED_JSON,
        "unexpected character, expected a string key at line 1 column 2",
    ),
    (
        "lone-surrogate-escape",
        b'{"a":"\\ud800"}',
        RejectReason.MALFORMED_JSON,
        "no low surrogate in string at line 1 column 7",
    ),
    (
        "nan",
        b'{"data": {"score": NaN}}',
        RejectReason.NON_FINITE_NUMBER,
        "line 1 column 20: NaN is not a JSON number",
    ),
    (
        "infinity",
        b'{"data": {"score": Infinity}}',
        RejectReason.NON_FINITE_NUMBER,
        "line 1 column 20: Infinity is not a JSON number",
    ),
    (
        "negative-infinity",
        b'{"data": [1, -Infinity]}',
        RejectReason.NON_FINITE_NUMBER,
        "line 1 column 14: -Infinity is not a JSON number",
    ),
    (
        "float-overflow",
        b'{"data": {"score": 1e400}}',
        RejectReason.NUMBER_OUT_OF_RANGE,
        "line 1 column 20: number overflows a 64-bit float",
    ),
    (
        "int-above-u64",
        with_data(big=2**64),
        RejectReason.NUMBER_OUT_OF_RANGE,
        "integer 18446744073709551616 is outside the 64-bit range [-2^63, 2^64)",
    ),
    (
        "int-below-i64",
        json.dumps({**GOOD, "data": {**GOOD["data"], "low": -(2**63) - 1}}, indent=2).encode(),
        RejectReason.NUMBER_OUT_OF_RANGE,
        "integer -9223372036854775809 is outside the 64-bit range [-2^63, 2^64)",
    ),
    (
        "int-with-400-digits",
        b'{"a": ' + b"9" * 400 + b"}",
        RejectReason.NUMBER_OUT_OF_RANGE,
        "line 1 column 7: number overflows a 64-bit float",
    ),
    (
        "too-deep",
        with_data(deep=nested(MAX_DEPTH - 1)),
        RejectReason.TOO_DEEP,
        "nesting is deeper than 32 levels",
    ),
    (
        "beyond-orjson-depth",
        b"[" * 2000 + b"]" * 2000,
        RejectReason.TOO_DEEP,
        "depth limit exceeded at line 1 column 1026",
    ),
    (
        "array",
        b"[" + GOOD_BODY + b"]",
        RejectReason.NOT_AN_OBJECT,
        "the top-level JSON value is an array, not an object",
    ),
    (
        "string",
        b'"evt"',
        RejectReason.NOT_AN_OBJECT,
        "the top-level JSON value is a string, not an object",
    ),
    (
        "number",
        b"42",
        RejectReason.NOT_AN_OBJECT,
        "the top-level JSON value is a number, not an object",
    ),
    (
        "null",
        b"null",
        RejectReason.NOT_AN_OBJECT,
        "the top-level JSON value is null, not an object",
    ),
    (
        "duplicate-top-level",
        GOOD_BODY.replace(b'{"id":"evt_1",', b'{"id":"evt_1","id":"evt_2",'),
        RejectReason.DUPLICATE_KEYS,
        'duplicate key "id" in envelope',
    ),
    (
        "duplicate-nested",
        PRETTY_DUPLICATE,
        RejectReason.DUPLICATE_KEYS,
        'duplicate key "kind" in data.preview',
    ),
    (
        "duplicate-hidden-by-escaped-colon",
        GOOD_BODY.replace(b'"message":"hi"', b'"message":"hi","message":"\\u003a"'),
        RejectReason.DUPLICATE_KEYS,
        'duplicate key "message" in data',
    ),
    (
        "duplicate-in-array-item",
        with_data(items=[{"a": 1}]).replace(b'{"a":1}', b'{"a":1,"a":1}'),
        RejectReason.DUPLICATE_KEYS,
        'duplicate key "a" in data.items[0]',
    ),
    (
        "duplicate-inside-a-dropped-duplicate",
        with_data(x=1).replace(b'"x":1', b'"x":{"y":1,"y":2},"x":3'),
        RejectReason.DUPLICATE_KEYS,
        'duplicate key "x" in data (and 1 more objects)',
    ),
    (
        "missing-id-and-extra-field",
        orjson.dumps({**{k: v for k, v in GOOD.items() if k != "id"}, "extra": 1}),
        RejectReason.INVALID_ENVELOPE,
        'envelope: "id" is a required property; '
        "envelope: Additional properties are not allowed ('extra' was unexpected)",
    ),
    (
        "type-not-a-string",
        envelope(type=["webhook.test"]),
        RejectReason.INVALID_ENVELOPE,
        'type: ["webhook.test"] is not of type "string"',
    ),
    (
        "data-not-an-object",
        envelope(data="org_acme"),
        RejectReason.INVALID_ENVELOPE,
        'data: "org_acme" is not of type "object"',
    ),
    (
        "created-without-offset",
        envelope(created="2026-06-09T12:00:00"),
        RejectReason.INVALID_ENVELOPE,
        'created: "2026-06-09T12:00:00" is not a "date-time"',
    ),
    (
        "created-out-of-range-in-utc",
        envelope(created="9999-12-31T23:00:00-05:00"),
        RejectReason.INVALID_ENVELOPE,
        "created: date value out of range",
    ),
    (
        "unknown-type",
        envelope(type="ads.campaign.exploded", data={"anything": True}),
        RejectReason.UNKNOWN_TYPE,
        'type "ads.campaign.exploded" is not in the event catalog',
    ),
    (
        "missing-organization",
        envelope(data={"endpointId": "ep_1", "message": "hi"}),
        RejectReason.MISSING_ORGANIZATION,
        'data: "organizationId" is a required property',
    ),
    (
        "null-organization",
        with_data(organizationId=None),
        RejectReason.MISSING_ORGANIZATION,
        'data.organizationId: null is not of type "string"',
    ),
    (
        "unprefixed-organization",
        with_data(organizationId="acme"),
        RejectReason.MISSING_ORGANIZATION,
        'data.organizationId: "acme" does not match "^org_[A-Za-z0-9_-]{1,64}$"',
    ),
    (
        "schema-violation",
        with_data(endpointId=7, requestedBy={"type": "user"}),
        RejectReason.SCHEMA_VIOLATION,
        'data.endpointId: 7 is not of type "string"; data.requestedBy: "id" is a required property',
    ),
    (
        "many-schema-violations",
        with_data(endpointId=1, message=2, requestedBy={"type": 3, "id": 4, "name": 5}),
        RejectReason.SCHEMA_VIOLATION,
        'data.endpointId: 1 is not of type "string"; data.message: 2 is not of type "string"; '
        'data.requestedBy.type: 3 is not of type "string"; '
        'data.requestedBy.type: 3 is not one of "user", "api_key" or 2 other candidates; '
        'data.requestedBy.id: 4 is not of type "string"; and 1 more',
    ),
]


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_bad_record_maps_to_its_reason(
    value: bytes | None, reason: RejectReason, detail: str
) -> None:
    """Each bad record is rejected with its exact reason code and a detail naming the problem."""
    rejection = decode(value)
    assert isinstance(rejection, Rejection)
    assert rejection.reason == reason
    assert rejection.detail == detail


def test_envelope_problems_win_over_an_unknown_type() -> None:
    """An unknown type with a missing id is an envelope problem: the envelope is checked first."""
    value = orjson.dumps({"type": "ads.nope", "created": GOOD["created"], "data": {}})
    assert decode(value) == Rejection(
        reason=RejectReason.INVALID_ENVELOPE, detail='envelope: "id" is a required property'
    )


def test_an_unknown_type_wins_over_a_missing_organization() -> None:
    """A record of an unknown type is `unknown_type` even when its data has no organization."""
    rejection = decode(envelope(type="ads.nope", data={}))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == RejectReason.UNKNOWN_TYPE


def test_encode_event_round_trips_through_decode() -> None:
    """encode_event produces the compact envelope, which decodes to an Event with it as body."""
    value = encode_event(
        "webhook.test",
        "org_acme",
        {"endpointId": "ep_1", "message": "hi"},
        catalog=CATALOG,
        event_id="evt_1",
        created=datetime(2026, 6, 9, 14, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    assert value == GOOD_BODY
    assert decode(value) == Event(
        id="evt_1", type="webhook.test", created=NOON, organization_id="org_acme", body=value
    )


PINNED: dict[str, Any] = {"event_id": "evt_1", "created": datetime(2026, 6, 9, tzinfo=UTC)}


def test_encode_event_with_the_clocks_id_and_time() -> None:
    """With `dispatcher.clock`'s fresh `evt_` id and current time, the event carries both."""
    before = datetime.now(UTC)
    event = decode(
        encode_event(
            "webhook.test",
            "org_a",
            GOOD["data"] | {"organizationId": "org_a"},
            catalog=CATALOG,
            event_id=clock.new_id("evt"),
            created=clock.utcnow(),
        )
    )
    assert isinstance(event, Event)
    assert event.id.startswith("evt_")
    assert len(event.id) == 30
    assert before <= event.created <= datetime.now(UTC)


def test_encode_event_refuses_what_the_consumer_would_reject() -> None:
    """An event the consumer would dead-letter raises InvalidEventError with that rejection."""
    with pytest.raises(InvalidEventError) as caught:
        encode_event(
            "webhook.test",
            "org_acme",
            {"endpointId": "ep_1"},
            catalog=CATALOG,
            event_id="evt_1",
            created=datetime(2026, 6, 9, tzinfo=UTC),
        )
    assert caught.value.rejection == Rejection(
        reason=RejectReason.SCHEMA_VIOLATION, detail='data: "message" is a required property'
    )


def test_encode_event_refuses_a_conflicting_organization() -> None:
    """A data.organizationId other than the one given is a caller bug."""
    with pytest.raises(EventError, match=re.escape("data.organizationId is not 'org_b'")):
        encode_event(
            "webhook.test",
            "org_b",
            GOOD["data"],
            catalog=CATALOG,
            event_id="evt_1",
            created=datetime(2026, 6, 9, tzinfo=UTC),
        )


def test_encode_event_refuses_a_naive_time() -> None:
    """`created` must carry a timezone."""
    with pytest.raises(EventError, match="timezone-aware"):
        encode_event(
            "webhook.test",
            "org_acme",
            GOOD["data"],
            catalog=CATALOG,
            event_id="evt_1",
            created=datetime(2026, 6, 9),  # noqa: DTZ001 - naive on purpose
        )


# Property tests: whatever arrives on the topic, decode_event answers with a value.

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab:"\\é\u2028 {}[],e+'), max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet="ab:", max_size=3), inner, max_size=4)
    ),
    max_leaves=16,
)


def dump(node: object, duplicate: object, escape_colons: bool) -> str:
    """JSON text for `node`; the object `duplicate` (by identity) repeats its first key, with
    the value 0, so the first value (and anything nested in it) is what parsing drops."""
    if isinstance(node, dict):
        members = [
            f"{dump(key, None, escape_colons)}:{dump(value, duplicate, escape_colons)}"
            for key, value in node.items()
        ]
        if node is duplicate:
            members.append(f"{dump(next(iter(node)), None, escape_colons)}:0")
        return "{" + ", ".join(members) + "}"
    if isinstance(node, list):
        return "[" + ",".join(dump(item, duplicate, escape_colons) for item in node) + "]"
    text = json.dumps(node)
    return text.replace(":", "\\u003a") if escape_colons and isinstance(node, str) else text


def objects(node: object) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found.extend(objects(item))
    return found


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_decode_never_raises_on_arbitrary_bytes(value: bytes) -> None:
    """Any byte string decodes to an Event or a Rejection, never an exception."""
    assert isinstance(decode(value), Event | Rejection)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_decode_never_raises_on_mutated_records(data: st.DataObject) -> None:
    """A valid record with bytes replaced, inserted or removed still decodes to a value."""
    value = bytearray(json.dumps(GOOD, indent=1).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(value) - 1))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.integers(0, 255))
        if action == "replace":
            value[at] = byte
        elif action == "insert":
            value.insert(at, byte)
        else:
            del value[at]
    assert isinstance(decode(bytes(value)), Event | Rejection)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_arbitrary_json_data_is_delivered_exactly(extra: object, escape_colons: bool) -> None:
    """Any JSON value under an extra data field is accepted and delivered as orjson renders it."""
    document = {**GOOD, "data": {**GOOD["data"], "extra": extra}}
    event = decode(dump(document, None, escape_colons).encode())
    assert isinstance(event, Event), event
    assert event.body == orjson.dumps(document)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans(), st.data())
def test_any_repeated_key_is_found(extra: object, escape_colons: bool, data: st.DataObject) -> None:
    """Repeating a member of any object, at any depth, is always `duplicate_keys`."""
    document = {**GOOD, "data": {**GOOD["data"], "extra": extra}}
    target = data.draw(st.sampled_from([obj for obj in objects(document) if obj]))
    rejection = decode(dump(document, target, escape_colons).encode())
    assert isinstance(rejection, Rejection)
    assert rejection.reason == RejectReason.DUPLICATE_KEYS


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2**64) | st.integers(max_value=-(2**63) - 1), st.booleans())
def test_any_out_of_range_integer_is_refused(number: int, pretty: bool) -> None:
    """An integer outside [-2^63, 2^64) anywhere is `number_out_of_range`, never a float."""
    document = {**GOOD, "data": {**GOOD["data"], "extra": [number]}}
    value = json.dumps(document, indent=2 if pretty else None).encode()
    rejection = decode(value)
    assert isinstance(rejection, Rejection)
    assert rejection.reason == RejectReason.NUMBER_OUT_OF_RANGE
