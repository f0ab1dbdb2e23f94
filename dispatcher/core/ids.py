"""Prefixed, time-sortable identifiers (`dlv_01J…`), like Stripe's and Svix's.

26 Crockford base32 characters encoding 48 bits of milliseconds then 80 random bits, so ids
sort by creation time and cursor pagination by id is chronological. (The 128 bits are
left-aligned in the 130 the characters hold; Crockford's alphabet is in ASCII order, so
string order is bit order.) An id is made for every delivery, so this is a hot path: the
encoding is the C base32 codec plus one translation table.
"""

from __future__ import annotations

import base64

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())

PREFIXES = frozenset({"ep", "dlv", "att", "dl", "key", "rpl", "sec", "req", "evt", "org", "pss"})


def new_id(prefix: str, *, now_ms: int, entropy: bytes) -> str:
    """The id `prefix_…` for the millisecond `now_ms` and 10 bytes of `entropy`.

    Pure: `dispatcher.clock.new_id` supplies the current time and fresh random bytes.
    """
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    if len(entropy) != 10:
        raise ValueError("entropy must be 10 bytes")
    raw = (now_ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + entropy
    return f"{prefix}_{base64.b32encode(raw)[:26].translate(_FROM_RFC4648).decode()}"


def new_ids(prefix: str, count: int, *, now_ms: int, entropy: bytes) -> list[str]:
    """`count` ids for one millisecond, from `10 * count` bytes of `entropy`."""
    if len(entropy) != 10 * count:
        raise ValueError(f"entropy must be {10 * count} bytes")
    return [
        new_id(prefix, now_ms=now_ms, entropy=entropy[i : i + 10]) for i in range(0, 10 * count, 10)
    ]
