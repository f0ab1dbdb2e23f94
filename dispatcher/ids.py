"""Prefixed, time-sortable identifiers (`dlv_01J…`), like Stripe's and Svix's.

26 Crockford base32 characters: 48 bits of milliseconds then 80 random bits (the ULID
layout), so ids sort by creation time and cursor pagination by id is chronological.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = frozenset({"ep", "dlv", "att", "dl", "key", "rpl", "sec", "req", "evt", "org"})


def new_id(prefix: str, *, now_ms: int | None = None, entropy: bytes | None = None) -> str:
    """A new id such as `dlv_01JD3ZQ8M6V7X9K2N4P5R6S7T8`.

    `now_ms` and `entropy` are parameters so tests can pin them; by default they are the
    current time and 10 random bytes.
    """
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = os.urandom(10) if entropy is None else entropy
    if len(rand) != 10:
        raise ValueError("entropy must be 10 bytes")
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(rand, "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
