"""Telemetry: traces (OTLP/HTTP and Zipkin v2 ingest, Zipkin v2 query API, dependency links),
central logs (full-text search), metrics (in-memory aggregation, OTLP and EMF ingest, 10 s /
1 min / 1 h rollups, Prometheus exposition, JSON query API) and alarms, stored in SQLite under
the node's data dir.

Entry point: :class:`Telemetry` (lifecycle, routes, ``log_sink``, ``record_span``,
``metrics`` — a ``MetricsRecorder`` —, ``add_collector``, ``on_alarm``).

The names below are imported on first use (PEP 562), so a process that needs one module — the
store writer processes run ``python -m stackyard.telemetry.writer_main`` — does not import the
HTTP, OTLP and alarm machinery with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = {
    "ALARM": "alarms",
    "INSUFFICIENT_DATA": "alarms",
    "OK": "alarms",
    "AlarmEvent": "alarms",
    "AlarmHook": "alarms",
    "Alarms": "alarms",
    "Collector": "collectors",
    "ProcessCollector": "collectors",
    "EmfMetric": "emf",
    "emf_from_record": "emf",
    "AlarmNotFound": "errors",
    "InvalidPayload": "errors",
    "InvalidQuery": "errors",
    "Overloaded": "errors",
    "PayloadTooLarge": "errors",
    "StoreClosed": "errors",
    "TelemetryError": "errors",
    "TraceNotFound": "errors",
    "UnsupportedMediaType": "errors",
    "ingest_routes": "ingest",
    "MetricsRecorder": "instruments",
    "SpanRecorder": "instruments",
    "LogQuery": "logs",
    "LogRow": "logs",
    "LogStore": "logs",
    "LATENCY_BUCKETS": "metrics",
    "MetricsAggregator": "metrics",
    "Endpoint": "model",
    "Span": "model",
    "new_span": "model",
    "log_search_route": "query",
    "zipkin_query_routes": "query",
    "RetentionSettings": "retention",
    "MetricQuery": "rollups",
    "MetricsStore": "rollups",
    "SpanStore": "spans",
    "TraceQuery": "spans",
    "Telemetry": "telemetry",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
