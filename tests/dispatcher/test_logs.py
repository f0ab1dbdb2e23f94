"""Structured logs: JSON lines with bound context, secrets redacted."""

from __future__ import annotations

import io
import logging

import orjson

from dispatcher import logs


def test_log_lines_are_json_with_bound_context_and_secret_fields_redacted() -> None:
    """Extra fields become top-level keys; a field named like a secret is redacted."""
    stream = io.StringIO()
    logs.configure("INFO", stream)
    log = logging.getLogger("dispatcher.test")
    log.info(
        "attempt failed",
        extra={"delivery_id": "dlv_1", "attempt": 3, "secret": "whsec_c2VjcmV0"},
    )
    line = orjson.loads(stream.getvalue().strip())
    assert line["msg"] == "attempt failed"
    assert line["level"] == "info"
    assert (line["delivery_id"], line["attempt"]) == ("dlv_1", 3)
    assert line["secret"] == "<redacted>"
    assert "whsec_c2VjcmV0" not in stream.getvalue()


def test_debug_lines_are_dropped_at_info_level() -> None:
    """The configured level applies to the dispatcher's loggers."""
    stream = io.StringIO()
    logs.configure("INFO", stream)
    logging.getLogger("dispatcher.test").debug("noise")
    assert stream.getvalue() == ""
