"""Terminal output and input for the on-call commands: plain tables, a progress line, times
given as RFC 3339 or as "that long ago" (`2h`, `30m`), option values checked against their
choices, and a dead letter's bytes shown as what they are."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TextIO

import orjson

from dispatcher.errors import ConfigurationError, UsageError
from dispatcher.setting_values import parse_duration

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})\Z")
_MAX_CELL = 60


def parse_when(text: str, *, now: datetime) -> datetime:
    """`2026-06-09T12:00:00Z` (an explicit offset is required) or `2h`, `30m`, `45s`, `3d`
    meaning that long before `now`. Raises UsageError with a readable message."""
    value = text.strip()
    if _RFC3339.match(value):
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    try:
        ago = parse_duration(value)
    except ConfigurationError:
        raise UsageError(
            f"{text!r} is neither an RFC 3339 time (2026-06-09T12:00:00Z) "
            "nor a duration ago (30m, 2h, 3d)"
        ) from None
    return now - timedelta(seconds=ago)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value) or "-"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    text = " ".join(text.split())  # one line per row, whatever the value holds
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as an aligned text table; `columns` are (key, header) pairs."""
    cells = [[header.upper() for _, header in columns]]
    cells += [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    return "\n".join(lines)


def details(item: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """One `key: value` line per field (nested values as compact text)."""
    shown = keys or list(item)
    width = max((len(k) for k in shown), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(item.get(k))}" for k in shown)


# -- command-line values ---------------------------------------------------------------------

RFC3339_EXAMPLE = "an RFC 3339 time (2026-06-09T12:00:00Z)"
AGO_EXAMPLE = "a duration ago (30m, 2h, 3d)"


def flag_time(flag: str, text: str | None, *, now: datetime) -> datetime | None:
    """`parse_when` for the option `flag`: an error names the flag and both formats."""
    if text is None:
        return None
    try:
        return parse_when(text, now=now)
    except UsageError:
        raise UsageError(
            f"{flag} {text!r} is neither {RFC3339_EXAMPLE} nor {AGO_EXAMPLE}"
        ) from None
    except ValueError as exc:  # an RFC 3339 shape with impossible values (month 13)
        raise UsageError(
            f"{flag} {text!r} is not a valid time ({exc}): give {RFC3339_EXAMPLE} or {AGO_EXAMPLE}"
        ) from None


def flag_period(
    since: str | None, until: str | None, *, now: datetime
) -> tuple[str | None, str | None]:
    """`--since` and `--until` as RFC 3339; an `--until` not after `--since` is refused
    (it would select nothing and look like "nothing happened")."""
    start, end = flag_time("--since", since, now=now), flag_time("--until", until, now=now)
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--until ({rfc3339(end)}) must be later than --since ({rfc3339(start)})")
    return (None if start is None else rfc3339(start)), (None if end is None else rfc3339(end))


def enum_values(allowed: type[StrEnum]) -> frozenset[str]:
    return frozenset(member.value for member in allowed)


def flag_choices(flag: str, values: list[str] | None, allowed: type[StrEnum]) -> list[str] | None:
    """Repeated and comma-separated values (`--status pending,failed`), each one checked."""
    if not values:
        return None
    chosen: list[str] = []
    for value in (v.strip() for text in values for v in text.split(",")):
        if value not in enum_values(allowed):
            raise UsageError(f"{flag} {value!r} is not one of {', '.join(allowed)}")
        if value not in chosen:
            chosen.append(value)
    return chosen


# -- record bytes ---------------------------------------------------------------------------


def record_bytes(label: str, encoded: str | None) -> str:
    """A dead letter's key or value (base64 from the API) for a human: pretty JSON when it
    parses, text when it is UTF-8, else the base64 — labelled with which it is."""
    if encoded is None:
        return f"{label}: (none)"
    raw = base64.b64decode(encoded)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"{label} (base64, {len(raw)} bytes, not UTF-8):\n{encoded}"
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Partner bytes reach a terminal: control characters (an escape sequence) are shown
        # escaped, never interpreted.
        shown = "".join(c if c.isprintable() or c in "\n\t" else ascii(c)[1:-1] for c in text)
        return f"{label} (text, {len(raw)} bytes):\n{shown}"
    pretty = orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode()
    return f"{label} (JSON, {len(raw)} bytes):\n{pretty}"


class ProgressLine:
    """A one-line progress bar redrawn in place on a terminal; elsewhere a line per change."""

    def __init__(self, stream: TextIO, *, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._tty = stream.isatty()
        self._last = ""

    def update(self, done: int, total: int, status: str) -> None:
        filled = self._width if total == 0 else min(self._width, self._width * done // total)
        bar = "#" * filled + "." * (self._width - filled)
        line = f"[{bar}] {done}/{total} {status}"
        if line == self._last:
            return
        self._last = line
        if self._tty:
            columns = shutil.get_terminal_size().columns
            self._stream.write("\r" + line[: columns - 1].ljust(min(columns - 1, len(line) + 2)))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._last:
            self._stream.write("\n")
            self._stream.flush()
