"""Prefixed, time-sortable identifiers (`dlv_01J…`), like Stripe's and Svix's.

26 Crockford base32 characters encoding 48 bits of milliseconds then 80 random bits, so ids
sort by creation time and cursor pagination by id is chronological. (The 128 bits are
left-aligned in the 130 the characters hold; Crockford's alphabet is in ASCII order, so
string order is bit order.) An id is made for every delivery, so this is a hot path: the
encoding is the C base32 codec plus one translation table.
"""

from __future__ import annotations

import base64
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())

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
    raw = (ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + rand
    return f"{prefix}_{base64.b32encode(raw)[:26].translate(_FROM_RFC4648).decode()}"
