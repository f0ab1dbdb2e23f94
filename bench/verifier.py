"""The partner verifier: microseconds per `verify()` call, ours against `standardwebhooks`.

    .venv/bin/python -m bench.verifier [--json]

Both libraries verify the same request: a Layers event envelope of 1 KiB and of 64 KiB, one
`v1` signature, a plain dict of nine lower-case headers (what a WSGI/ASGI adapter typically
hands over), the body as bytes, the result parsed JSON. The timestamp is the real clock's, so
both run their real `verify()` (the reference has no injectable clock). Repeats of the two are
interleaved so machine noise hits both alike; each cell is the median and the minimum over
the repeats. The ``json_parse=False`` rows isolate the signature check from the JSON parse
(the same stdlib `json` in both, and most of the cost). `sign_header` (the dispatcher's cost
per attempt, with two secrets while rotating) is measured alongside.

Ours does strictly more per call (canonical timestamp and id checks, duplicate-header
detection, strict UTF-8 and NaN-free JSON) and must still be no slower: keys are decoded once
in the constructor with their HMAC pad states precomputed (RFC 2104, section 4), the body is
hashed in place (never copied into one signed-content buffer), only the received signature
is base64-decoded, the timestamp is compared as an int (no datetime), and the body is decoded
and parsed once.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

import standardwebhooks
from layers_webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OLD_SECRET = "whsec_" + base64.b64encode(bytes(range(32, 64))).decode()
MSG_ID = "evt_01JXC1D9H1K3N5Q7S9V1X3Z5B7"
SIZES = {"1 KiB": 1024, "64 KiB": 64 * 1024}
REPEATS = 15
TARGET_SECONDS = 0.02  # per repeat


def _body(size: int) -> bytes:
    """A compact envelope of exactly `size` bytes, as the dispatcher sends."""
    envelope: dict[str, Any] = {
        "id": MSG_ID,
        "type": "content.generated",
        "created": "2026-06-09T12:00:00Z",
        "data": {"organizationId": "org_01JXC1D9H1K3N5Q7S9V1X3Z5B7", "items": [], "pad": ""},
    }
    item = {"id": "itm_01JXC1D9H1K3N5Q7S9V1X3Z5B7", "title": "Crème brûlée", "score": 0.93}
    while len(json.dumps(envelope, separators=(",", ":")).encode()) + 150 < size:
        envelope["data"]["items"].append(item)
    missing = size - len(json.dumps(envelope, separators=(",", ":")).encode())
    envelope["data"]["pad"] = "x" * missing
    body = json.dumps(envelope, separators=(",", ":")).encode()
    assert len(body) == size, (len(body), size)
    return body


def _headers(signature: str, timestamp: int, size: int) -> dict[str, str]:
    return {
        "host": "partner.example.com",
        "user-agent": "layers-webhooks/0.1.0",
        "content-type": "application/json",
        "content-length": str(size),
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def _number(call: Callable[[], object]) -> int:
    """Calls per repeat so that one repeat lasts about TARGET_SECONDS."""
    number, elapsed = timeit.Timer(call).autorange()
    return max(1, int(number * TARGET_SECONDS / elapsed))


def _compare(calls: dict[str, Callable[[], object]]) -> dict[str, dict[str, float]]:
    """Median and min µs per call for each of `calls`, repeats interleaved."""
    numbers = {name: _number(call) for name, call in calls.items()}
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(REPEATS):
        for name, call in calls.items():
            seconds = timeit.Timer(call).timeit(numbers[name])
            samples[name].append(seconds / numbers[name] * 1e6)
    return {
        name: {
            "median_us": round(statistics.median(values), 2),
            "min_us": round(min(values), 2),
        }
        for name, values in samples.items()
    }


def run() -> dict[str, object]:
    """Measure every case; return ``{case: {implementation: {median_us, min_us}}}``."""
    ours = Webhook(SECRET)
    reference = standardwebhooks.Webhook(SECRET)
    rotating = Webhook([SECRET, OLD_SECRET])
    result: dict[str, object] = {}
    for label, size in SIZES.items():
        body = _body(size)
        timestamp = int(time.time())
        headers = _headers(ours.sign_header(MSG_ID, timestamp, body), timestamp, size)
        assert ours.verify(body, headers) == reference.verify(body, headers)
        result[f"verify {label}"] = _compare(
            {
                "layers_webhooks": partial(ours.verify, body, headers),
                "standardwebhooks": partial(reference.verify, body, headers),
            }
        )
        result[f"verify {label}, json_parse=False"] = _compare(
            {
                "layers_webhooks": partial(ours.verify, body, headers, json_parse=False),
                "standardwebhooks": partial(reference.verify, body, headers, json_parse=False),
            }
        )
        result[f"sign_header {label}, 2 secrets"] = _compare(
            {"layers_webhooks": partial(rotating.sign_header, MSG_ID, timestamp, body)}
        )
    return result


def _table(result: dict[str, object]) -> str:
    lines = [
        "| case | implementation | median µs | min µs | vs standardwebhooks |",
        "|---|---|---:|---:|---:|",
    ]
    for case, cells in result.items():
        assert isinstance(cells, dict)
        reference = cells.get("standardwebhooks")
        for name, cell in cells.items():
            ratio = ""
            if reference is not None:
                ratio = f"{cell['median_us'] / reference['median_us']:.2f}x"
            lines.append(
                f"| {case} | {name} | {cell['median_us']:.2f} | {cell['min_us']:.2f} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verifier", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run()
    print(json.dumps(result) if args.json else _table(result))


if __name__ == "__main__":
    main()
