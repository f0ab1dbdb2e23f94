"""Structured logs: one JSON object per line on stderr.

Context is bound with `extra=` (delivery_id, endpoint_id, attempt, …) and every such field
is emitted as a top-level key. Secrets are never passed to a logger; as a second line of
defence any field whose name mentions a secret or key material is redacted.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_REDACT = ("secret", "password", "authorization", "api_key", "token", "encryption_key")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            entry[key] = "<redacted>" if any(r in key.lower() for r in _REDACT) else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Send the `dispatcher` loggers (and aiokafka's warnings) to `stream` as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("dispatcher").setLevel(level.upper())
