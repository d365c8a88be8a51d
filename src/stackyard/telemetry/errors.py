"""The telemetry component's exception tree.

Every error raised by ``stackyard.telemetry`` derives from :class:`TelemetryError`; each one
carries the HTTP ``status`` and the ``code`` its API answers with (JSON
``{"error": {"code", "message"}}``, see :func:`stackyard.control.error_response`)::

    TelemetryError (500)
    ├── InvalidPayload (400)        an ingest body that cannot be decoded or is not a valid batch
    ├── PayloadTooLarge (413)       a body over the limit, before or after decompression
    ├── UnsupportedMediaType (415)  a Content-Type or Content-Encoding we do not speak
    ├── InvalidQuery (400)          a query parameter that is malformed or out of range
    ├── TraceNotFound (404)         ``/api/v2/trace/{id}`` for an id with no stored span
    ├── AlarmNotFound (404)         ``/_stackyard/alarms/{name}/history`` for an unknown alarm
    ├── Overloaded (503)            the write queue is full; retry after ``retry_after`` seconds
    └── StoreClosed (503)           the store is not started or already stopped

Third-party errors (protobuf ``DecodeError``, ``json`` errors, ``zlib.error``, ``sqlite3``)
are translated at the boundary with ``raise ... from exc``. Bad input never reaches a store.
"""

from __future__ import annotations


class TelemetryError(Exception):
    """Base of every telemetry error."""

    status = 500
    code = "TelemetryError"


class InvalidPayload(TelemetryError):
    """The request body cannot be decoded, or is not a valid batch (400, never retried)."""

    status = 400
    code = "InvalidPayload"


class PayloadTooLarge(TelemetryError):
    """The body (or its decompressed form) is larger than the ingest limit."""

    status = 413
    code = "PayloadTooLarge"


class UnsupportedMediaType(TelemetryError):
    """A Content-Type or Content-Encoding the endpoint does not accept."""

    status = 415
    code = "UnsupportedMediaType"


class InvalidQuery(TelemetryError):
    """A query parameter is malformed or out of range."""

    status = 400
    code = "InvalidParameter"


class TraceNotFound(TelemetryError):
    """No span of the requested trace is stored."""

    status = 404
    code = "TraceNotFound"


class AlarmNotFound(TelemetryError):
    """No alarm of that name is configured."""

    status = 404
    code = "AlarmNotFound"


class Overloaded(TelemetryError):
    """The store's write queue is full; the client may retry later."""

    status = 503
    code = "Overloaded"
    retry_after = 1


class StoreClosed(TelemetryError):
    """The store is not running (not started yet, or stopped)."""

    status = 503
    code = "StoreClosed"
