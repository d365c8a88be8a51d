"""CloudWatch embedded metric format (EMF): metrics carried by JSON log lines.

A line is EMF when it is a JSON object with ``"_aws": {"Timestamp": ms, "CloudWatchMetrics":
[{"Namespace", "Dimensions": [["svc", ...], ...], "Metrics": [{"Name", "Unit"}]}]}`` and the
dimension and metric values as top-level members (a metric value may be a number or a list of
up to 100 numbers). :func:`emf_from_record` is cheap for ordinary lines (a substring test before
any parsing) and never raises: a malformed directive is skipped.

Each metric becomes one observation per value, per dimension set, in a histogram named after
the metric (Prometheus-safe) with labels = the dimension values + ``namespace``. The bucket
bounds follow the unit: ``Seconds`` → latency buckets, ``Milliseconds``/``Microseconds`` → the
same scaled, anything else → decades 0.001 … 5e9; so sum, count, avg, min, max and percentiles
all work on EMF metrics. Values are recorded when the line arrives (``Timestamp`` is not used).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from .metrics import GENERIC_BUCKETS, LATENCY_BUCKETS, MetricsAggregator
from .otlp_metrics import prometheus_name

MAX_VALUES = 100
_SCALE = {"Seconds": 1.0, "Milliseconds": 1e3, "Microseconds": 1e6}
_BOUNDS = {unit: tuple(round(b * k, 9) for b in LATENCY_BUCKETS) for unit, k in _SCALE.items()}


class EmfMetric(NamedTuple):
    """One metric of an EMF line for one dimension set."""

    name: str
    labels: dict[str, str]
    values: tuple[float, ...]
    unit: str


def emf_from_record(record: Mapping[str, Any]) -> list[EmfMetric]:
    """The EMF metrics of a log record (``record["message"]``); ``[]`` for any other line."""
    message = record.get("message")
    if not isinstance(message, str) or '"_aws"' not in message:
        return []
    try:
        doc = json.loads(message)
    except (ValueError, RecursionError):
        return []
    if not isinstance(doc, dict):
        return []
    aws = doc.get("_aws")
    directives = aws.get("CloudWatchMetrics") if isinstance(aws, dict) else None
    if not isinstance(directives, list):
        return []
    out: list[EmfMetric] = []
    for directive in directives:
        if isinstance(directive, dict):
            out.extend(_directive(directive, doc))
    return out


def _directive(directive: Mapping[str, Any], doc: Mapping[str, Any]) -> list[EmfMetric]:
    namespace = directive.get("Namespace")
    dimension_sets = directive.get("Dimensions")
    metrics = directive.get("Metrics")
    if not isinstance(namespace, str) or not isinstance(metrics, list):
        return []
    if not isinstance(dimension_sets, list) or not dimension_sets:
        dimension_sets = [[]]
    label_sets: list[dict[str, str]] = []
    for keys in dimension_sets:
        if not isinstance(keys, list) or not all(isinstance(k, str) and k in doc for k in keys):
            continue
        labels = {prometheus_name(k): _text(doc[k]) for k in keys}
        labels.setdefault("namespace", namespace)
        label_sets.append(labels)
    out: list[EmfMetric] = []
    for metric in metrics:
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
            continue
        values = _values(doc.get(metric["Name"]))
        if not values:
            continue
        unit = metric.get("Unit")
        unit = unit if isinstance(unit, str) else "None"
        name = prometheus_name(metric["Name"])
        out.extend(EmfMetric(name, labels, values, unit) for labels in label_sets)
    return out


def record_emf(aggregator: MetricsAggregator, metrics: list[EmfMetric]) -> None:
    """Observe every value of ``metrics``."""
    for metric in metrics:
        bounds = _BOUNDS.get(metric.unit, GENERIC_BUCKETS)
        for value in metric.values:
            aggregator.observe_in(metric.name, metric.labels, value, bounds)


def _values(raw: Any) -> tuple[float, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out = tuple(
        float(v)
        for v in items[:MAX_VALUES]
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    )
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
