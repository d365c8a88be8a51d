"""OTLP/HTTP metrics ingest: ``ExportMetricsServiceRequest`` (protobuf or JSON) → the aggregator.

Protobuf bodies are turned into the OTLP/JSON form (``MessageToDict``) and both go through one
decoder. Mapping (as Prometheus' own OTLP receiver does):

- names and label keys are made Prometheus-safe (``http.server.duration`` →
  ``http_server_duration``); a monotonic sum gets a ``_total`` suffix;
- the resource's ``service.name`` becomes the label ``service``; data point attributes become
  labels (non-string values JSON-encoded);
- gauge → ``set``; monotonic sum → counter increments; non-monotonic sum → gauge; histogram →
  bucket counts merged with the sender's bounds. Cumulative temporality is turned into deltas
  against the last value seen of that series (a lower value or a new start time is a reset);
- exponential histograms and summaries are rejected (counted in ``partialSuccess``).

A malformed body raises :class:`InvalidPayload`; a malformed data point is rejected alone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from .errors import InvalidPayload
from .metrics import MetricsAggregator
from .otlp import (
    Rejections,
    enum_value,
    export_response,
    json_attributes,
    json_list,
    json_object,
    tag_text,
    to_int,
)

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_TEMPORALITY = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}
_CUMULATIVE = 2
_MAX_TRACKED = 100_000


def prometheus_name(name: str) -> str:
    """``name`` with characters Prometheus does not allow replaced by ``_``."""
    safe = _INVALID.sub("_", name) or "_"
    return "_" + safe if safe[0].isdigit() else safe


@dataclass(frozen=True)
class Sample:
    """One decoded data point."""

    kind: str  # counter | gauge | updown | histogram
    name: str
    labels: dict[str, str]
    cumulative: bool
    start: int
    value: float = 0.0
    bounds: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""


@dataclass
class MetricsDecodeResult(Rejections):
    samples: list[Sample] = field(default_factory=list)


def decode_metrics_protobuf(body: bytes) -> MetricsDecodeResult:
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidPayload(f"malformed protobuf: {exc}") from exc
    return _decode(MessageToDict(request, use_integers_for_enums=True))


def decode_metrics_json(body: bytes) -> MetricsDecodeResult:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"malformed JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidPayload("expected a JSON object (ExportMetricsServiceRequest)")
    return _decode(doc)


def metrics_response(result: Rejections, as_json: bool) -> bytes:
    """The ``ExportMetricsServiceResponse`` body (empty, or with ``partialSuccess``)."""
    return export_response(result, as_json, ExportMetricsServiceResponse(), "rejected_data_points")


def _decode(doc: Mapping[str, Any]) -> MetricsDecodeResult:
    result = MetricsDecodeResult()
    for resource_metrics in json_list(doc.get("resourceMetrics"), "resourceMetrics"):
        resource = json_object(resource_metrics, "resourceMetrics[]")
        try:
            attrs = json_attributes(
                json_object(resource.get("resource"), "resource").get("attributes")
            )
        except ValueError as exc:
            raise InvalidPayload(f"resource: {exc}") from exc
        service = attrs.get("service.name")
        for scope in json_list(resource.get("scopeMetrics"), "scopeMetrics"):
            for metric in json_list(json_object(scope, "scopeMetrics[]").get("metrics"), "metrics"):
                _metric(json_object(metric, "metrics[]"), service, result)
    return result


def _metric(metric: Mapping[str, Any], service: Any, result: MetricsDecodeResult) -> None:
    raw_name = metric.get("name")
    if not isinstance(raw_name, str) or not raw_name:
        result.reject("a metric without a name")
        return
    name = prometheus_name(raw_name)
    text = str(metric.get("description") or "")
    if "gauge" in metric:
        data, kind = json_object(metric["gauge"], "gauge"), "gauge"
    elif "sum" in metric:
        data = json_object(metric["sum"], "sum")
        kind = "counter" if data.get("isMonotonic") else "updown"
        if kind == "counter" and not name.endswith("_total"):
            name += "_total"
    elif "histogram" in metric:
        data, kind = json_object(metric["histogram"], "histogram"), "histogram"
    else:
        points = next((v for v in metric.values() if isinstance(v, dict)), {})
        for _ in json_list(points.get("dataPoints"), "dataPoints") or [None]:
            result.reject(f"{raw_name}: only gauge, sum and histogram metrics are supported")
        return
    try:
        cumulative = enum_value(
            data.get("aggregationTemporality", 0), _TEMPORALITY, "aggregationTemporality"
        )
    except ValueError as exc:
        result.reject(f"{raw_name}: {exc}")
        return
    for index, point in enumerate(json_list(data.get("dataPoints"), "dataPoints")):
        try:
            result.samples.append(
                _sample(kind, name, point, service, cumulative == _CUMULATIVE, text)
            )
        except (ValueError, TypeError, AttributeError) as exc:
            result.reject(f"{raw_name} point {index}: {exc}")


def _sample(kind: str, name: str, point: Any, service: Any, cumulative: bool, text: str) -> Sample:
    if not isinstance(point, dict):
        raise ValueError("a data point must be an object")
    labels = {
        prometheus_name(k): tag_text(v)
        for k, v in json_attributes(point.get("attributes")).items()
        if v is not None
    }
    if isinstance(service, str) and service:
        labels.setdefault("service", service)
    start = to_int(point.get("startTimeUnixNano", 0), "startTimeUnixNano")
    if kind != "histogram":
        if "asDouble" in point:
            value = _float(point["asDouble"], "asDouble")
        elif "asInt" in point:
            value = float(to_int(point["asInt"], "asInt"))
        else:
            raise ValueError("asDouble or asInt is required")
        if kind == "counter" and value < 0:
            raise ValueError("a monotonic sum cannot be negative")
        return Sample(kind, name, labels, cumulative, start, value=value, help=text)
    counts = tuple(float(to_int(c, "bucketCounts")) for c in point.get("bucketCounts") or [])
    bounds = tuple(_float(b, "explicitBounds") for b in point.get("explicitBounds") or [])
    if not counts:
        counts = (float(to_int(point.get("count", 0), "count")),)
        bounds = ()
    if len(counts) != len(bounds) + 1 or any(c < 0 for c in counts):
        raise ValueError("bucketCounts must have one more entry than explicitBounds")
    if list(bounds) != sorted(bounds):
        raise ValueError("explicitBounds must be sorted")
    return Sample(
        "histogram",
        name,
        labels,
        cumulative,
        start,
        bounds=bounds,
        counts=counts,
        total=_float(point.get("sum", 0.0), "sum"),
        minimum=_float(point["min"], "min") if "min" in point else None,
        maximum=_float(point["max"], "max") if "max" in point else None,
        help=text,
    )


class OtlpMetricsSink:
    """Applies decoded samples to an aggregator, turning cumulative values into deltas."""

    def __init__(self, aggregator: MetricsAggregator) -> None:
        self.aggregator = aggregator
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, Any]] = {}

    def apply(self, samples: list[Sample]) -> None:
        agg = self.aggregator
        for s in samples:
            if s.help:
                agg.describe(s.name, s.help)
            if s.kind == "gauge":
                agg.set(s.name, s.labels, s.value)
            elif s.kind == "counter":
                agg.count(s.name, s.labels, self._delta(s, s.value))
            elif s.kind == "updown":
                current = 0.0 if s.cumulative else agg.value_of(s.name, s.labels) or 0.0
                agg.set(s.name, s.labels, current + s.value)
            else:
                self._histogram(s)

    def _delta(self, s: Sample, value: float) -> float:
        if not s.cumulative:
            return value
        key = (s.name, tuple(sorted(s.labels.items())))
        last = self._remember(key, s.start, value)
        if last is None or last[0] != s.start or last[1] > value:
            return value
        return float(value - last[1])

    def _histogram(self, s: Sample) -> None:
        counts, total = list(s.counts), s.total
        low, high = s.minimum, s.maximum
        if s.cumulative:
            key = (s.name, tuple(sorted(s.labels.items())))
            last = self._remember(key, s.start, (s.counts, s.total))
            if last is not None and last[0] == s.start and len(last[1][0]) == len(counts):
                before, before_total = last[1]
                delta = [a - b for a, b in zip(counts, before, strict=True)]
                if min(delta) >= 0:
                    counts, total = delta, total - before_total
                    low, high = _narrow(s.bounds, counts, low, high)
        self.aggregator.add_histogram(s.name, s.labels, s.bounds, counts, total, low, high)

    def _remember(self, key: Any, start: int, value: Any) -> tuple[int, Any] | None:
        last = self._last.get(key)
        if last is None and len(self._last) >= _MAX_TRACKED:
            self._last.clear()
        self._last[key] = (start, value)
        return last


def _narrow(
    bounds: tuple[float, ...], counts: list[float], low: float | None, high: float | None
) -> tuple[float | None, float | None]:
    """Lifetime min/max of a cumulative histogram, narrowed to the buckets of this delta."""
    used = [i for i, c in enumerate(counts) if c > 0]
    if not used or low is None or high is None:
        return low, high
    floor = bounds[used[0] - 1] if used[0] > 0 else low
    ceiling = bounds[used[-1]] if used[-1] < len(bounds) else high
    return max(low, floor), min(high, ceiling)


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} must be a number")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{what} must be a number")
    return number
