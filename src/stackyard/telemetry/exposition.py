"""Prometheus text exposition format 0.0.4 of the aggregator's cumulative state (``/metrics``).

One ``# HELP`` and ``# TYPE`` per metric name, then its samples sorted by labels: counters and
gauges as ``name{labels} value``; histograms as cumulative ``name_bucket{...,le="…"}`` lines
ending with ``le="+Inf"``, then ``name_sum`` and ``name_count``. Label values escape ``\\``,
``"`` and newlines; HELP text escapes ``\\`` and newlines. The text ends with a newline.
"""

from __future__ import annotations

import math
from itertools import groupby

from .metrics import HISTOGRAM, Labels, MetricsAggregator, Series

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def number(value: float) -> str:
    """A sample value as Prometheus writes it (``+Inf``, ``-Inf``, ``NaN``, shortest float)."""
    value = float(value)  # producers may pass ints
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    items = [*labels, extra] if extra is not None else list(labels)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def render(aggregator: MetricsAggregator) -> str:
    """The whole exposition text."""
    lines: list[str] = []
    ordered = sorted(aggregator.series(), key=lambda s: (s.name, s.labels))
    for name, group in groupby(ordered, key=lambda s: s.name):
        items = list(group)
        text = aggregator.help.get(name, name).replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {items[0].kind}")
        for series in items:
            if series.kind == HISTOGRAM:
                _histogram(lines, series)
            else:
                lines.append(f"{name}{_labels(series.labels)} {number(series.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def _histogram(lines: list[str], series: Series) -> None:
    running = 0.0
    name = series.name
    for index, count in enumerate(series.buckets):
        running += count
        le = number(series.bounds[index]) if index < len(series.bounds) else "+Inf"
        lines.append(f"{name}_bucket{_labels(series.labels, ('le', le))} {number(running)}")
    lines.append(f"{name}_sum{_labels(series.labels)} {number(series.sum)}")
    lines.append(f"{name}_count{_labels(series.labels)} {number(series.count)}")
