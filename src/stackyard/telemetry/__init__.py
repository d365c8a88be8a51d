"""Telemetry: traces (OTLP/HTTP and Zipkin v2 ingest, Zipkin v2 query API, dependency links),
central logs (full-text search), metrics (in-memory aggregation, OTLP and EMF ingest, 10 s /
1 min / 1 h rollups, Prometheus exposition, JSON query API) and alarms, stored in SQLite under
the node's data dir.

Entry point: :class:`Telemetry` (lifecycle, routes, ``log_sink``, ``record_span``,
``metrics`` — a ``MetricsRecorder`` —, ``add_collector``, ``on_alarm``).
"""

from .alarms import ALARM, INSUFFICIENT_DATA, OK, AlarmEvent, AlarmHook, Alarms
from .collectors import Collector, ProcessCollector
from .emf import EmfMetric, emf_from_record
from .errors import (
    AlarmNotFound,
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
from .instruments import MetricsRecorder, SpanRecorder
from .logs import LogQuery, LogRow, LogStore
from .metrics import LATENCY_BUCKETS, MetricsAggregator
from .model import Endpoint, Span, new_span
from .query import log_search_route, zipkin_query_routes
from .retention import RetentionSettings
from .rollups import MetricQuery, MetricsStore
from .spans import SpanStore, TraceQuery
from .telemetry import Telemetry

__all__ = [
    "ALARM",
    "INSUFFICIENT_DATA",
    "LATENCY_BUCKETS",
    "OK",
    "AlarmEvent",
    "AlarmHook",
    "AlarmNotFound",
    "Alarms",
    "Collector",
    "EmfMetric",
    "Endpoint",
    "InvalidPayload",
    "InvalidQuery",
    "LogQuery",
    "LogRow",
    "LogStore",
    "MetricQuery",
    "MetricsAggregator",
    "MetricsRecorder",
    "MetricsStore",
    "Overloaded",
    "PayloadTooLarge",
    "ProcessCollector",
    "RetentionSettings",
    "Span",
    "SpanRecorder",
    "SpanStore",
    "StoreClosed",
    "Telemetry",
    "TelemetryError",
    "TraceNotFound",
    "TraceQuery",
    "UnsupportedMediaType",
    "emf_from_record",
    "ingest_routes",
    "log_search_route",
    "new_span",
    "zipkin_query_routes",
]
