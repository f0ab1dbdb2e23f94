"""The event catalog: the envelope and one JSON Schema per event type, loaded and compiled once.

`schemas/` at the repository root is the source of truth (docs/design.md §2):

    schemas/envelope.schema.json        {id, type, created, data}: closed at the top level
    schemas/common.schema.json          shared `$defs`: prefixed ids, timestamp, money, preview…
    schemas/events/<type>.schema.json   the `data` of one event type, with `examples`

Decisions, kept here so the schemas and the code agree:

- **`data` is open.** Event schemas never set `additionalProperties: false`: a publisher may
  ship a new field before the catalog names it, and receivers are told to ignore fields they do
  not know (Stripe's and Svix's additive-evolution rule). What a schema names it enforces
  (types, patterns, enums, ranges). The envelope itself is closed: a fifth top-level field is
  a publisher bug, not an extension point.
- **Formats are asserted** (`date-time`, `uri`), not just annotations; timestamps also carry a
  `pattern` (RFC 3339 with an explicit offset) so validators that skip formats agree.
- **Event ids** are 1–128 characters of `A-Z a-z 0-9 _ . : -`: anything a publisher's id
  scheme produces (`evt_01J…`, UUIDs, `svc:123.4`) and safe in a header, a URL and a log line.
- **No network.** `$ref`s resolve only against the catalog's own documents; retrieving any
  other URI is refused, so a schema typo fails at load time, never at the first event.
- **Validator: jsonschema-rs**, measured with `python -m bench.schemas` on a 1 KB envelope:
  about 2 µs, against about 11 µs for fastjsonschema and about 200 µs for jsonschema. One
  compiled validator per type checks the envelope and the type's `data` in a single call.

`Catalog.load()` checks every document against its meta-schema, the `$id`/file name
agreement, a title, a description and at least one valid example per type, so a broken catalog
stops the service at start-up. Nothing here does I/O after `load`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urldefrag, urljoin

import jsonschema_rs
import orjson

from dispatcher.errors import CatalogError, UnknownEventTypeError

ENVELOPE_FILE = "envelope.schema.json"
_SUFFIX = ".schema.json"
# The wheel ships the schemas inside the package; a source checkout (and an editable install)
# reads them from the repository root.
_PACKAGED = Path(__file__).resolve().parents[1] / "schemas"
_SOURCE = Path(__file__).resolve().parents[2] / "schemas"
_MAX_MESSAGE = 200  # characters: messages quote the offending value, which may be huge
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_path(path: tuple[str | int, ...]) -> str:
    """`("data", "preview", "durationMs")` → `data.preview.durationMs`; the root is `envelope`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{orjson.dumps(part).decode()}]"
    return text or "envelope"


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One way an instance breaks a schema: where, which keyword, and the validator's words."""

    path: tuple[str | int, ...]  # the instance location, from the envelope root
    keyword: str  # the failing JSON Schema keyword (`required`, `pattern`, `type`…)
    message: str

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _EventType:
    name: str
    schema_json: bytes  # self-contained (bundled) schema of `data`, as served to partners
    examples_json: bytes
    data: jsonschema_rs.Validator  # `data` alone
    record: jsonschema_rs.Validator  # the envelope, with `data` checked by this type's schema


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Catalog:
    """The compiled catalog. Build it with `Catalog.load()`; it never changes afterwards."""

    _envelope_json: bytes
    _envelope: jsonschema_rs.Validator
    _types: Mapping[str, _EventType]

    @classmethod
    def load(cls, directory: Path | None = None) -> Catalog:
        """Read, check and compile the schemas under `directory` (default: the shipped ones)."""
        root = directory or (_PACKAGED if (_PACKAGED / ENVELOPE_FILE).is_file() else _SOURCE)
        shared = {path.name: _read(path) for path in sorted(root.glob(f"*{_SUFFIX}"))}
        if ENVELOPE_FILE not in shared:
            raise CatalogError(f"{root}: no {ENVELOPE_FILE}")
        events = {
            path.name.removesuffix(_SUFFIX): _read(path)
            for path in sorted((root / "events").glob(f"*{_SUFFIX}"))
        }
        if not events:
            raise CatalogError(f"{root / 'events'}: no event schemas")
        resources = {_id_of(name, doc): doc for name, doc in (shared | _by_file(events)).items()}
        try:
            registry = jsonschema_rs.Registry(list(resources.items()), retriever=_refuse)
        except (ValueError, jsonschema_rs.ReferencingError) as exc:
            raise CatalogError(f"{root}: {exc}") from exc
        envelope = shared[ENVELOPE_FILE]
        types = {
            name: _compile(name, doc, envelope=envelope, resources=resources, registry=registry)
            for name, doc in events.items()
        }
        envelope_validator = _validator(envelope, registry, ENVELOPE_FILE)
        for index, example in enumerate(envelope.get("examples", [])):
            if errors := _violations(envelope_validator, example):
                raise CatalogError(f"{ENVELOPE_FILE}: examples[{index}]: {errors[0]}")
        return cls(
            _envelope_json=orjson.dumps(_bundle(envelope, resources)),
            _envelope=envelope_validator,
            _types=types,
        )

    def __repr__(self) -> str:
        return f"Catalog({len(self._types)} event types)"

    def __contains__(self, event_type: object) -> bool:
        return isinstance(event_type, str) and event_type in self._types

    @property
    def types(self) -> tuple[str, ...]:
        """Every event type name, sorted."""
        return tuple(sorted(self._types))

    def schema(self, event_type: str) -> dict[str, Any]:
        """The type's `data` schema, self-contained (shared `$defs` bundled in); a fresh copy."""
        schema: dict[str, Any] = orjson.loads(self._get(event_type).schema_json)
        return schema

    def envelope_schema(self) -> dict[str, Any]:
        """The envelope schema, self-contained; a fresh copy."""
        schema: dict[str, Any] = orjson.loads(self._envelope_json)
        return schema

    def examples(self, event_type: str) -> tuple[dict[str, Any], ...]:
        """The type's example `data` objects (at least one); fresh copies."""
        return tuple(orjson.loads(self._get(event_type).examples_json))

    def validate(self, event_type: str, data: object) -> list[str]:
        """Every error of `data` against the type's schema, as `data.path: message`; [] if valid.

        Raises `UnknownEventTypeError` when the type is not in the catalog.
        """
        validator = self._get(event_type).data
        if validator.is_valid(data):
            return []
        return [str(violation) for violation in _violations(validator, data, prefix=("data",))]

    def violations(self, envelope: Mapping[str, object]) -> list[Violation]:
        """How `envelope` breaks the envelope schema and, when its type is in the catalog, that
        type's data schema; [] when valid. One compiled validator call when it is valid."""
        event_type = envelope.get("type")
        known = self._types.get(event_type) if isinstance(event_type, str) else None
        validator = self._envelope if known is None else known.record
        if validator.is_valid(envelope):
            return []
        return _violations(validator, envelope)

    def _get(self, event_type: str) -> _EventType:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventTypeError(event_type) from None


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise CatalogError(f"{path}: a schema must be a JSON object")
    try:
        jsonschema_rs.meta.validate(doc)
    except jsonschema_rs.ValidationError as exc:
        raise CatalogError(f"{path}: not a valid JSON Schema: {exc.message}") from exc
    for key in ("$id", "title", "description"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise CatalogError(f"{path}: needs a non-empty {key!r}")
    return doc


def _by_file(events: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"events/{name}{_SUFFIX}": doc for name, doc in events.items()}


def _id_of(file: str, doc: Mapping[str, Any]) -> str:
    """A document's `$id`, which must end with its path under `schemas/` (refs are relative)."""
    uri: str = doc["$id"]
    if not uri.endswith("/" + file):
        raise CatalogError(f"{file}: $id {uri!r} does not end with /{file}")
    return uri


def _refuse(uri: str) -> NoReturn:
    raise ValueError(f"{uri} is not a catalog document (the catalog never fetches schemas)")


def _validator(
    schema: Mapping[str, Any], registry: jsonschema_rs.Registry, where: str
) -> jsonschema_rs.Validator:
    try:
        return jsonschema_rs.validator_for(
            dict(schema), registry=registry, validate_formats=True, offline=True
        )
    except jsonschema_rs.ValidationError as exc:
        raise CatalogError(f"{where}: {exc.message}") from exc


def _compile(
    name: str,
    doc: dict[str, Any],
    *,
    envelope: Mapping[str, Any],
    resources: Mapping[str, Mapping[str, Any]],
    registry: jsonschema_rs.Registry,
) -> _EventType:
    where = f"events/{name}{_SUFFIX}"
    examples = doc.get("examples")
    if not isinstance(examples, list) or not examples:
        raise CatalogError(f"{where}: needs at least one example")
    data = _validator(doc, registry, where)
    for index, example in enumerate(examples):
        if errors := _violations(data, example, prefix=("data",)):
            raise CatalogError(f"{where}: examples[{index}]: {errors[0]}")
    record = {
        "$schema": envelope["$schema"],
        "allOf": [{"$ref": envelope["$id"]}],
        "properties": {"data": {"$ref": doc["$id"]}},
    }
    return _EventType(
        name=name,
        schema_json=orjson.dumps(_bundle(doc, resources)),
        examples_json=orjson.dumps(examples),
        data=data,
        record=_validator(record, registry, where),
    )


def _bundle(doc: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`doc` as a compound document: every catalog document it references, embedded whole under
    `$defs` by `$id`, so `$ref`s resolve unchanged without the other files (JSON Schema 2020-12
    §9.3). jsonschema-rs 0.61's own `bundle()` embeds only the last fragment it resolved."""
    own = doc["$id"]
    embedded: dict[str, Mapping[str, Any]] = {}
    pending = [doc]
    while pending:
        current = pending.pop()
        for ref in _refs(current):
            uri = urldefrag(urljoin(current["$id"], ref)).url
            if uri != own and uri not in embedded:
                if uri not in resources:
                    raise CatalogError(f"{current['$id']}: $ref {ref!r} is not in the catalog")
                embedded[uri] = resources[uri]
                pending.append(resources[uri])
    if not embedded:
        return dict(doc)
    return {**doc, "$defs": {**doc.get("$defs", {}), **embedded}}


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in ("examples", "const", "enum", "default"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _violations(
    validator: jsonschema_rs.Validator, instance: object, prefix: tuple[str | int, ...] = ()
) -> list[Violation]:
    found: list[Violation] = []
    for error in validator.iter_errors(instance):
        found.extend(_explain(error, prefix))
    # Timestamps carry both `format` and a `pattern` that spells it out: when both fail, the
    # format's words ("is not a date-time") are the readable ones.
    formats = {violation.path for violation in found if violation.keyword == "format"}
    readable = [v for v in found if not (v.keyword == "pattern" and v.path in formats)]
    # The record schema checks `data.organizationId` twice (envelope and type): say it once.
    return list(dict.fromkeys(readable))


def _explain(
    error: jsonschema_rs.ValidationError, prefix: tuple[str | int, ...]
) -> Iterator[Violation]:
    """One validator error as violations. A failed `anyOf: [X, {"type": "null"}]` (how the
    catalog spells "X or null") is reported as X's own errors, which name the real problem."""
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AnyOf):
        branches = [branch for branch in kind.context if not _only_not_null(branch)]
        if len(branches) == 1 and branches[0]:
            for inner in branches[0]:
                yield from _explain(inner, prefix)
            return
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    yield Violation(path=(*prefix, *error.instance_path), keyword=kind.name, message=message)


def _only_not_null(branch: list[jsonschema_rs.ValidationError]) -> bool:
    return len(branch) == 1 and (
        isinstance(branch[0].kind, jsonschema_rs.ValidationErrorKind.Type)
        and branch[0].kind.types == ["null"]
    )
