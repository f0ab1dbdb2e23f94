"""Terminal output and input for the on-call commands: plain tables, a progress line, and
times given as RFC 3339 or as "that long ago" (`2h`, `30m`). No third-party dependencies."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

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
