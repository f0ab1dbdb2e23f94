"""The event catalog: every type has a documented schema and valid examples; errors name paths."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from dispatcher.core.catalog import Catalog, format_path
from dispatcher.errors import CatalogError, UnknownEventTypeError

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EVENT_TYPES = (
    "ads.account.connected",
    "ads.account.disconnected",
    "ads.account.token_expired",
    "ads.budget.cap_exceeded",
    "ads.creative.flagged",
    "ads.creative.unlocked",
    "ads.optimizer.action",
    "ads.optimizer.run.completed",
    "ads.policy.violation",
    "ads.write.denied",
    "ads.write.executed",
    "approval.approved",
    "approval.disapproved",
    "approval.dispatch_failed",
    "approval.dispatched",
    "content.generated",
    "lease_request.assigned",
    "webhook.endpoint.disabled",
    "webhook.test",
)
ENVELOPE = {
    "id": "evt_01JXB4Q9R1T3V5X7Z9B1D3F5H7",
    "type": "webhook.test",
    "created": "2026-06-09T12:00:00Z",
    "data": {"organizationId": "org_acme", "endpointId": "ep_1", "message": "hi"},
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def walk(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def test_catalog_lists_every_platform_event(catalog: Catalog) -> None:
    """The catalog holds exactly the event types the platform emits, sorted."""
    assert catalog.types == EVENT_TYPES


def test_default_directory_is_the_repository_schemas(catalog: Catalog) -> None:
    """Loading without a directory reads the repository's `schemas/`, the source of truth."""
    assert Catalog.load(SCHEMAS).types == catalog.types


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_type_has_a_documented_schema_and_an_example(
    catalog: Catalog, event_type: str
) -> None:
    """Each type's schema has its $id, a title, a description, required org and an example."""
    schema = catalog.schema(event_type)
    assert schema["$id"].endswith(f"/events/{event_type}.schema.json")
    assert schema["title"]
    assert schema["description"]
    assert "organizationId" in schema["required"]
    assert len(catalog.examples(event_type)) >= 1


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_example_validates(catalog: Catalog, event_type: str) -> None:
    """Every example of every type validates against its own schema."""
    for example in catalog.examples(event_type):
        assert catalog.validate(event_type, example) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_served_schema_is_self_contained(catalog: Catalog, event_type: str) -> None:
    """The schema handed to partners compiles with no other file and accepts its examples."""
    validator = jsonschema_rs.validator_for(
        catalog.schema(event_type), validate_formats=True, offline=True
    )
    assert all(validator.is_valid(example) for example in catalog.examples(event_type))
    assert not validator.is_valid({"organizationId": "acme"})


def test_envelope_schema_is_self_contained_and_closed(catalog: Catalog) -> None:
    """The envelope schema compiles alone, accepts an envelope and refuses a fifth field."""
    schema = catalog.envelope_schema()
    validator = jsonschema_rs.validator_for(schema, validate_formats=True, offline=True)
    assert schema["additionalProperties"] is False
    assert validator.is_valid(ENVELOPE)
    assert not validator.is_valid({**ENVELOPE, "extra": 1})


def test_event_data_schemas_stay_open_to_new_fields() -> None:
    """No event schema closes an object, so publishers can add fields before the catalog."""
    for path in sorted((SCHEMAS / "events").glob("*.schema.json")):
        closed = [
            node
            for node in walk(json.loads(path.read_text()))
            if node.get("additionalProperties") is False
        ]
        assert closed == [], path.name


def test_unknown_fields_in_data_are_accepted(catalog: Catalog) -> None:
    """A field the catalog does not name yet passes validation."""
    example = {**catalog.examples("webhook.test")[0], "shinyNewField": {"nested": [1, 2]}}
    assert catalog.validate("webhook.test", example) == []


def test_validate_names_the_failing_path(catalog: Catalog) -> None:
    """A schema error is reported as `data.<path>: <message>`."""
    example = catalog.examples("content.generated")[0]
    example["preview"]["durationMs"] = -5
    assert catalog.validate("content.generated", example) == [
        "data.preview.durationMs: -5 is less than the minimum of 0"
    ]


def test_validate_reports_every_error(catalog: Catalog) -> None:
    """All errors are reported, each with its own path, array indexes included."""
    example = catalog.examples("ads.creative.flagged")[0]
    example["flags"][0]["severity"] = "urgent"
    del example["locked"]
    assert sorted(catalog.validate("ads.creative.flagged", example)) == [
        'data.flags[0].severity: "urgent" is not one of "low", "medium" or "high"',
        'data: "locked" is a required property',
    ]


def test_nullable_field_errors_name_the_inner_problem(catalog: Catalog) -> None:
    """A field that may be X or null reports why it is not X, not a generic anyOf failure."""
    example = catalog.examples("ads.budget.cap_exceeded")[0]
    example["projectedSpend"]["currency"] = "usd"
    assert catalog.validate("ads.budget.cap_exceeded", example) == [
        'data.projectedSpend.currency: "usd" does not match "^[A-Z]{3}$"'
    ]


def test_huge_values_are_truncated_in_messages(catalog: Catalog) -> None:
    """A message quoting a 10 000-character value is cut to 200 characters."""
    example = {**catalog.examples("webhook.test")[0], "message": "x" * 10_000}
    (error,) = catalog.validate("webhook.test", example)
    assert error.startswith('data.message: "xxx')
    assert len(error.removeprefix("data.message: ")) == 200
    assert error.endswith("…")


def test_unknown_type_raises_a_lookup_error(catalog: Catalog) -> None:
    """Asking for a type the catalog does not have raises UnknownEventTypeError."""
    with pytest.raises(UnknownEventTypeError, match=re.escape("'ads.nope' is not in the")):
        catalog.validate("ads.nope", {})
    with pytest.raises(UnknownEventTypeError):
        catalog.schema("ads.nope")
    assert "ads.nope" not in catalog
    assert "webhook.test" in catalog


def test_schema_and_examples_are_fresh_copies(catalog: Catalog) -> None:
    """Mutating what the catalog returned never changes the catalog."""
    catalog.schema("webhook.test")["required"].clear()
    catalog.examples("webhook.test")[0].clear()
    assert "organizationId" in catalog.schema("webhook.test")["required"]
    assert catalog.examples("webhook.test")[0]["organizationId"].startswith("org_")


def test_violations_of_a_valid_envelope_are_empty(catalog: Catalog) -> None:
    """A valid envelope of a known type has no violations."""
    assert catalog.violations(ENVELOPE) == []


def test_violations_check_the_envelope_and_the_data(catalog: Catalog) -> None:
    """Violations cover the envelope fields and, for a known type, the type's data schema."""
    envelope = {**ENVELOPE, "id": "", "data": {"organizationId": "org_acme", "endpointId": 7}}
    assert sorted(map(str, catalog.violations(envelope))) == [
        'data.endpointId: 7 is not of type "string"',
        'data: "message" is a required property',
        'id: "" does not match "^[A-Za-z0-9_:-]{1,128}$"',
    ]


@pytest.mark.parametrize(
    "event_id",
    [
        "evt_01JXB4Q9R1T3V5X7Z9B1D3F5H7",
        "0b6f3c1e-8a7d-4c2b-9e1f-2a3b4c5d6e7f",
        "svc:42:7",
        "a" * 128,
    ],
)
def test_publisher_ids_in_the_charset_are_accepted(catalog: Catalog, event_id: str) -> None:
    """Ids of 1–128 characters from A-Z a-z 0-9 _ : - are valid."""
    assert catalog.violations({**ENVELOPE, "id": event_id}) == []


@pytest.mark.parametrize("event_id", ["", "a" * 129, "evt 1", "evt/1", "évt_1", "evt_1\n", "evt.1"])
def test_ids_outside_the_charset_are_refused(catalog: Catalog, event_id: str) -> None:
    """Empty, too long or non-charset ids (space, slash, non-ASCII, newline, dot) are invalid."""
    assert [v.path for v in catalog.violations({**ENVELOPE, "id": event_id})] == [("id",)]


@pytest.mark.parametrize(
    "created",
    ["2026-06-09T12:00:00Z", "2026-06-09T14:00:00.123456789+02:00", "2026-06-09T07:00:00-05:00"],
)
def test_rfc3339_times_with_an_offset_are_accepted(catalog: Catalog, created: str) -> None:
    """`created` accepts RFC 3339 date-times with `Z` or a numeric offset."""
    assert catalog.violations({**ENVELOPE, "created": created}) == []


@pytest.mark.parametrize(
    "created",
    ["2026-06-09T12:00:00", "2026-06-09 12:00:00Z", "2026-02-30T12:00:00Z", "1717934400", ""],
)
def test_times_without_offset_or_impossible_are_refused(catalog: Catalog, created: str) -> None:
    """`created` refuses naive, space-separated, impossible and numeric times."""
    assert {v.path for v in catalog.violations({**ENVELOPE, "created": created})} == {("created",)}


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "envelope"),
        (("id",), "id"),
        (("data", "preview", "durationMs"), "data.preview.durationMs"),
        (("data", "flags", 0, "severity"), "data.flags[0].severity"),
        (("data", "a b", "c"), 'data["a b"].c'),
        (("data", 'q"'), 'data["q\\""]'),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    """Instance paths render as dotted names, with brackets for indexes and odd keys."""
    assert format_path(path) == text


def edit(relative: str, change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / relative
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc))

    return apply


def remove(relative: str) -> Callable[[Path], None]:
    return lambda root: (root / relative).unlink()


def garble(relative: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / relative).write_text("{not json")

    return apply


TEST = "events/webhook.test.schema.json"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (remove("envelope.schema.json"), "no envelope.schema.json"),
        (garble(TEST), "webhook.test.schema.json: unexpected character"),
        (edit(TEST, lambda d: d.update(type=5)), "webhook.test.schema.json: not a valid JSON"),
        (
            edit(TEST, lambda d: d.pop("title")),
            "webhook.test.schema.json: needs a non-empty 'title'",
        ),
        (edit(TEST, lambda d: d.update(examples=[])), "events/webhook.test.schema.json: needs at"),
        (
            edit(TEST, lambda d: d["examples"][0].pop("endpointId")),
            'examples[0]: data: "endpointId" is a required property',
        ),
        (
            edit(TEST, lambda d: d.update({"$id": "https://x.example/test.schema.json"})),
            "does not end with /events/webhook.test.schema.json",
        ),
        (
            edit(TEST, lambda d: d["properties"].update(x={"$ref": "https://x.example/s.json"})),
            "https://x.example/s.json",
        ),
    ],
)
def test_a_broken_catalog_fails_to_load(
    tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    """Load refuses a catalog with a missing, unreadable, invalid or inconsistent document."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root, ignore=shutil.ignore_patterns("openapi*", "signature*"))
    damage(root)
    with pytest.raises(CatalogError, match=re.escape(message)):
        Catalog.load(root)
