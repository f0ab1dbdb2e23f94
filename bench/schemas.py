"""Envelope validation and decoding: microseconds per Kafka record, median of several runs.

    .venv/bin/python -m bench.schemas [--json]

Validators compared on the same schema (the envelope with `data` checked by the event type's
schema, every `$ref` inlined) and the same ~1 KB `ads.optimizer.action` envelope:

- jsonschema-rs (the runtime validator), raw `is_valid` and through `Catalog.violations`;
- fastjsonschema (compiled Python; it knows drafts 4–7, and these schemas use nothing newer);
- jsonschema (the reference implementation; it checks `date-time` and `uri` only when its
  optional rfc3339-validator / rfc3987 packages are installed, which they are not here).

Then the whole boundary, `decode_event`: compact input (the body equals the input: the fast
path), pretty-printed input (whitespace: the byte-count checks run), and a schema violation
(the error path that builds a detail).
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema
import jsonschema_rs
import orjson

from dispatcher.core.catalog import Catalog
from dispatcher.core.envelope import DEFAULT_MAX_BYTES, Rejection, decode_event
from dispatcher.core.models import Event

EVENT_TYPE = "ads.optimizer.action"


def _envelope(catalog: Catalog) -> dict[str, Any]:
    data = catalog.examples(EVENT_TYPE)[0]
    data["changes"] += [
        {"field": "bidStrategy", "from": "LOWEST_COST", "to": "COST_CAP"},
        {
            "field": "bidAmount",
            "from": {"amountCents": 250, "currency": "USD"},
            "to": {"amountCents": 275, "currency": "USD"},
        },
    ]
    return {
        "id": "evt_01JXC1D9H1K3N5Q7S9V1X3Z5B7",
        "type": EVENT_TYPE,
        "created": "2026-06-09T06:00:12.481Z",
        "data": data,
    }


def _inlined(catalog: Catalog) -> dict[str, Any]:
    """The record schema with every reference inlined, so all three libraries get one document."""
    record = {
        "allOf": [catalog.envelope_schema()],
        "properties": {"data": catalog.schema(EVENT_TYPE)},
    }
    return jsonschema_rs.dereference(record)


def _median_us(call: Callable[[], object], budget: float = 0.2, repeat: int = 5) -> float:
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    number = max(1, int(number * budget / 0.2))
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def run() -> dict[str, object]:
    """Time the validators and decode_event; every case is checked to give the expected answer."""
    catalog = Catalog.load()
    envelope = _envelope(catalog)
    compact = orjson.dumps(envelope)
    pretty = json.dumps(envelope, indent=2).encode()
    invalid = orjson.dumps({**envelope, "data": {**envelope["data"], "confidence": 1.5}})
    schema = _inlined(catalog)

    rust = jsonschema_rs.validator_for(schema, validate_formats=True, offline=True)
    fast = fastjsonschema.compile({k: v for k, v in schema.items() if k != "$schema"})
    reference = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert rust.is_valid(envelope)
    assert reference.is_valid(envelope)
    assert fast(envelope)
    assert catalog.violations(envelope) == []
    assert isinstance(decode_event(compact, catalog=catalog, max_bytes=DEFAULT_MAX_BYTES), Event)
    assert isinstance(decode_event(pretty, catalog=catalog, max_bytes=DEFAULT_MAX_BYTES), Event)
    assert isinstance(
        decode_event(invalid, catalog=catalog, max_bytes=DEFAULT_MAX_BYTES), Rejection
    )

    def decode(value: bytes) -> Callable[[], object]:
        return lambda: decode_event(value, catalog=catalog, max_bytes=DEFAULT_MAX_BYTES)

    return {
        "bench": "schemas",
        "event_type": EVENT_TYPE,
        "envelope_bytes": len(compact),
        "pretty_bytes": len(pretty),
        "validate_us": {
            "jsonschema-rs": round(_median_us(lambda: rust.is_valid(envelope)), 2),
            "jsonschema-rs (Catalog.violations)": round(
                _median_us(lambda: catalog.violations(envelope)), 2
            ),
            "fastjsonschema": round(_median_us(lambda: fast(envelope)), 2),
            "jsonschema": round(_median_us(lambda: reference.is_valid(envelope)), 2),
        },
        "decode_us": {
            "orjson.loads alone": round(_median_us(lambda: orjson.loads(compact)), 2),
            "decode_event, compact": round(_median_us(decode(compact)), 2),
            "decode_event, pretty-printed": round(_median_us(decode(pretty)), 2),
            "decode_event, schema violation": round(_median_us(decode(invalid)), 2),
        },
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"{EVENT_TYPE} envelope: {result['envelope_bytes']} bytes compact, "
        f"{result['pretty_bytes']} pretty-printed",
        "",
        "| what | median µs |",
        "|---|---:|",
    ]
    for section in ("validate_us", "decode_us"):
        for name, micros in result[section].items():
            prefix = "validate: " if section == "validate_us" else ""
            lines.append(f"| {prefix}{name} | {micros:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.schemas", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run()
    print(json.dumps(result) if args.json else _table(result))


if __name__ == "__main__":
    main()
