"""How the SQLite backend encodes values in its columns and parameters: times are INTEGER
microseconds since the Unix epoch (UTC), read back as aware UTC datetimes, and a collection
parameter is a JSON array read with `json_each` (SQLite's `= ANY($1)`). Every other module of
the backend encodes through these; none of them imports a sibling.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def us(when: datetime) -> int:
    """An aware datetime as stored: microseconds since the epoch."""
    return (when - _EPOCH) // _MICROSECOND


def maybe_us(when: datetime | None) -> int | None:
    return None if when is None else us(when)


def dt(value: int) -> datetime:
    """A stored time back as an aware UTC datetime."""
    return _EPOCH + value * _MICROSECOND


def json_list(values: Collection[str]) -> str:
    """A parameter for `IN (SELECT value FROM json_each(?))`."""
    return orjson.dumps(list(values)).decode()
