"""Telemetry: traces (OTLP/HTTP and Zipkin v2 ingest, Zipkin v2 query API, dependency links)
and central logs (full-text search), stored in SQLite under the node's data dir.

Entry point: :class:`Telemetry` (lifecycle, routes, ``log_sink``, ``record_span``). Metrics,
alarms and Prometheus exposition are not implemented yet.
"""

from .errors import (
    InvalidPayload,
    InvalidQuery,
    Overloaded,
    PayloadTooLarge,
    StoreClosed,
    TelemetryError,
    TraceNotFound,
    UnsupportedMediaType,
)
from .ingest import ingest_routes
from .logs import LogQuery, LogRow, LogStore
from .model import Endpoint, Span, new_span
from .query import log_search_route, zipkin_query_routes
from .retention import RetentionSettings
from .spans import SpanStore, TraceQuery
from .telemetry import Telemetry

__all__ = [
    "Endpoint",
    "InvalidPayload",
    "InvalidQuery",
    "LogQuery",
    "LogRow",
    "LogStore",
    "Overloaded",
    "PayloadTooLarge",
    "RetentionSettings",
    "Span",
    "SpanStore",
    "StoreClosed",
    "Telemetry",
    "TelemetryError",
    "TraceNotFound",
    "TraceQuery",
    "UnsupportedMediaType",
    "ingest_routes",
    "log_search_route",
    "new_span",
    "zipkin_query_routes",
]
