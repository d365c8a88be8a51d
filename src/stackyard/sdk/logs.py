"""JSON log lines on stdout, one object per line, with the request's trace and correlation ids.

    {"time": "2025-01-02T03:04:05.678Z", "level": "info", "msg": "order placed",
     "logger": "shop.orders", "trace_id": "<32 hex>", "span_id": "<16 hex>",
     "correlation_id": "..."}

``trace_id``/``span_id`` come from the current OpenTelemetry span (or the forwarded context
without OpenTelemetry), ``correlation_id`` from the request context (:mod:`.context`); each is
left out when there is none. Fields given with ``extra={...}`` are added as they are (values
that are not JSON become strings); an exception adds ``exc`` (the formatted traceback). These are
the names the node's log store picks out (``stackyard.telemetry.logs``), so every line of a
request is found by its trace id and its correlation id.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from .context import current_correlation_id
from .tracing import current_ids

# LogRecord attributes that are not user fields
_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", "trace_id", "span_id", "correlation_id"}
)


class ContextFilter(logging.Filter):
    """Puts ``trace_id``, ``span_id`` and ``correlation_id`` (None when absent) on each record,
    so any formatter can use them (``%(trace_id)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id, span_id = current_ids()
        record.trace_id = trace_id
        record.span_id = span_id
        record.correlation_id = current_correlation_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "correlation_id"):  # used without ContextFilter
            ContextFilter().filter(record)
        seconds = time.gmtime(record.created)
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        for key in ("trace_id", "span_id", "correlation_id"):
            value = getattr(record, key, None)
            if value is not None:
                document[key] = value
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in document:
                document[key] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exc"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class StdoutHandler(logging.StreamHandler[TextIO]):
    """A stream handler writing to whatever ``sys.stdout`` is at each record (so redirection
    and test capture keep working); flushes every line."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def install(level: int | str = "INFO") -> logging.Handler:
    """Make the root logger write JSON lines to stdout at ``level``: replaces a handler this
    function installed before, leaves other handlers alone. Returns the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StdoutHandler):
            root.removeHandler(handler)
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
