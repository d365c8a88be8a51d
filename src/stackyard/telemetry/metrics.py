"""The in-memory metrics aggregator: :class:`MetricsAggregator` implements ``MetricsRecorder``.

Producers call ``count`` (counter), ``observe`` (histogram) and ``set`` (gauge) with a labels
mapping. Each call is one dict lookup keyed by ``(name, sorted label items)`` plus a few float
updates, so the gateway can call it on its request path. Each series keeps two states:

- cumulative (since the node started) — what ``GET /metrics`` exposes (Prometheus semantics);
- the current interval — what :meth:`MetricsAggregator.drain` hands to the rollup store every
  flush (10 s): ``sum, count, min, max`` of the values recorded, and for histograms the count
  per bucket (bucket ``i`` counts values ``<= bounds[i]``; the last one is ``+Inf``).

Interval statistics per kind: a counter's datapoint is its increments (``sum`` = total added);
a gauge's is the values it was set to — a gauge that was not set during an interval repeats its
current value once, so a gauge never goes missing while it exists (:meth:`remove` ends it); a
histogram's is the observations.

Threads: the aggregator takes no lock. It is meant to be called on the event loop; a call from
another thread never raises or corrupts the maps (each dict operation is atomic under the GIL),
but two threads updating the *same* series at the same instant, or an update racing a drain,
may lose that one update. Producers on threads that need exact counts should hop to the loop
(``loop.call_soon_threadsafe``).

A metric name has one kind (the first use wins; calls of another kind are counted in
``rejected``) and at most ``max_series`` series exist (new ones beyond are counted in
``rejected`` and ignored), so a label with unbounded values cannot exhaust memory.

Names published by Stackyard's components (labels in braces)::

    gateway_requests_total{route,service,stage,method,status} counter
    gateway_request_duration_seconds{route,service,stage}   histogram (seconds)
    function_invocations_total{function}                    counter
    function_errors_total{function}                         counter
    function_throttles_total{function}                      counter
    function_duration_seconds{function}                     histogram (seconds)
    function_concurrent_executions{function}                gauge
    instance_healthy{service,instance}                      gauge (1 healthy, 0 not)
    process_cpu_seconds_total, process_cpu_utilization,
    process_resident_memory_bytes, process_virtual_memory_bytes,
    process_open_fds, process_threads                       node process (collectors.py)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds (seconds) of the histogram buckets of ``observe``; ``+Inf`` is implied."""

GENERIC_BUCKETS: tuple[float, ...] = tuple(
    m * 10.0**e for e in range(-3, 10) for m in (1.0, 2.5, 5.0)
)
"""Bounds for values of unknown scale (EMF metrics without a time unit): 0.001 … 5e9."""

HELP: dict[str, str] = {
    "gateway_requests_total": "Requests answered by the gateway.",
    "gateway_request_duration_seconds": "Gateway request latency in seconds.",
    "function_invocations_total": "Function invocations.",
    "function_errors_total": "Function invocations that failed.",
    "function_throttles_total": "Function invocations refused for lack of concurrency.",
    "function_duration_seconds": "Function invocation duration in seconds.",
    "function_concurrent_executions": "Function invocations running now.",
    "instance_healthy": "1 when the service instance passes its health checks, else 0.",
    "process_cpu_seconds_total": "CPU time (user + system) of the node process in seconds.",
    "process_cpu_utilization": "CPU used by the node process over the last interval (1 = a core).",
    "process_resident_memory_bytes": "Resident memory of the node process in bytes.",
    "process_virtual_memory_bytes": "Virtual memory of the node process in bytes.",
    "process_open_fds": "Open file descriptors of the node process.",
    "process_threads": "Threads of the node process.",
}

Labels = tuple[tuple[str, str], ...]


def freeze(labels: Mapping[str, str]) -> Labels:
    """The canonical (sorted) form of a labels mapping."""
    return tuple(sorted(labels.items())) if labels else ()


class Series:
    """One (name, labels) series: cumulative and current-interval state."""

    __slots__ = (
        "bounds",
        "buckets",
        "count",
        "i_buckets",
        "i_count",
        "i_max",
        "i_min",
        "i_sum",
        "kind",
        "labels",
        "name",
        "sum",
        "value",
    )

    def __init__(self, name: str, labels: Labels, kind: str, bounds: tuple[float, ...]) -> None:
        self.name = name
        self.labels = labels
        self.kind = kind
        self.bounds = bounds
        self.value = 0.0  # counter total / gauge value
        self.sum = 0.0  # histogram: cumulative sum and count
        self.count = 0.0
        size = len(bounds) + 1 if kind == HISTOGRAM else 0
        self.buckets = [0.0] * size
        self.i_buckets = [0.0] * size
        self.i_sum = 0.0
        self.i_count = 0.0
        self.i_min = math.inf
        self.i_max = -math.inf

    def add(self, value: float = 1.0) -> None:
        """A counter's increment (``value`` ≥ 0; callers check)."""
        self.value += value
        self.sample(value)

    def record(self, value: float) -> None:
        """One observation of a histogram (not NaN; callers check)."""
        index = bisect_left(self.bounds, value)
        self.buckets[index] += 1
        self.i_buckets[index] += 1
        self.sum += value
        self.count += 1
        self.sample(value)

    def sample(self, value: float) -> None:
        """Fold ``value`` into the current interval's sum, count, min and max."""
        self.i_sum += value
        self.i_count += 1
        if value < self.i_min:
            self.i_min = value
        if value > self.i_max:
            self.i_max = value


def _ignore(value: float = 1.0) -> None:
    """What a bound instrument of a rejected series records: nothing."""


@dataclass(frozen=True)
class Point:
    """One series' statistics over one flush interval (handed to the rollup store)."""

    name: str
    labels: Labels
    kind: str
    bounds: tuple[float, ...]
    sum: float
    count: float
    min: float
    max: float
    buckets: tuple[float, ...] | None


class MetricsAggregator:
    """Counters, gauges and histograms in memory (a ``MetricsRecorder``)."""

    def __init__(self, *, max_series: int = 50_000) -> None:
        self.max_series = max_series
        self._series: dict[tuple[str, Labels], Series] = {}
        self._kinds: dict[str, str] = {}
        self.help: dict[str, str] = dict(HELP)
        self.rejected = 0

    # -- MetricsRecorder ---------------------------------------------------------------------

    def count(self, name: str, labels: Mapping[str, str], value: float = 1.0) -> None:
        """Add ``value`` (≥ 0) to the counter ``name``."""
        if not value >= 0:  # negative or NaN
            self.rejected += 1
            return
        series = self._series.get((name, freeze(labels)))
        if series is None or series.kind != COUNTER:
            series = self._new(name, labels, COUNTER, ())
            if series is None:
                return
        series.add(value)

    def observe(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """Record ``value`` in the histogram ``name`` (``LATENCY_BUCKETS``, seconds)."""
        self.observe_in(name, labels, value, LATENCY_BUCKETS)

    def set(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """Set the gauge ``name`` to ``value``."""
        if value != value:  # NaN
            return
        series = self._series.get((name, freeze(labels)))
        if series is None or series.kind != GAUGE:
            series = self._new(name, labels, GAUGE, ())
            if series is None:
                return
        series.value = value
        series.sample(value)

    # -- more ways in ------------------------------------------------------------------------

    def observe_in(
        self, name: str, labels: Mapping[str, str], value: float, bounds: tuple[float, ...]
    ) -> None:
        """``observe`` with the bucket ``bounds`` used if this creates the series."""
        series = self._series.get((name, freeze(labels)))
        if series is None or series.kind != HISTOGRAM:
            series = self._new(name, labels, HISTOGRAM, bounds)
            if series is None:
                return
        if value != value:  # NaN
            return
        series.record(value)

    # -- bound instruments: a series looked up once, for hot paths -------------------------

    def counter(self, name: str, labels: Mapping[str, str]) -> Callable[[float], None]:
        """``count(name, labels, value)`` as a function of ``value`` alone, the series found
        once (a rejected series records nothing). Keep it no longer than the series lives:
        ``remove`` forgets it."""
        series = self._series.get((name, freeze(labels)))
        if series is None or series.kind != COUNTER:
            series = self._new(name, labels, COUNTER, ())
        return _ignore if series is None else series.add

    def histogram(self, name: str, labels: Mapping[str, str]) -> Callable[[float], None]:
        """``observe(name, labels, value)`` as a function of ``value`` alone (see ``counter``);
        the caller passes no NaN."""
        series = self._series.get((name, freeze(labels)))
        if series is None or series.kind != HISTOGRAM:
            series = self._new(name, labels, HISTOGRAM, LATENCY_BUCKETS)
        return _ignore if series is None else series.record

    def add_histogram(
        self,
        name: str,
        labels: Mapping[str, str],
        bounds: Sequence[float],
        counts: Sequence[float],
        total: float,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> None:
        """Merge pre-bucketed observations (OTLP): ``counts[i]`` ≤ ``bounds[i]``, last +Inf."""
        series = self._series.get((name, freeze(labels)))
        if series is None or series.kind != HISTOGRAM:
            series = self._new(name, labels, HISTOGRAM, tuple(float(b) for b in bounds))
            if series is None:
                return
        mapped = remap(bounds, counts, series.bounds)
        number = float(sum(mapped))
        if number <= 0:
            return
        for index, value in enumerate(mapped):
            series.buckets[index] += value
            series.i_buckets[index] += value
        series.sum += total
        series.count += number
        series.i_sum += total
        series.i_count += number
        low = minimum if minimum is not None else total / number
        high = maximum if maximum is not None else total / number
        series.i_min = min(series.i_min, low)
        series.i_max = max(series.i_max, high)

    def remove(self, name: str, labels: Mapping[str, str]) -> None:
        """Forget one series (e.g. a gauge of an instance that is gone)."""
        self._series.pop((name, freeze(labels)), None)

    def describe(self, name: str, text: str) -> None:
        """Set the ``# HELP`` text of ``name``."""
        if text:
            self.help[name] = text

    def value_of(self, name: str, labels: Mapping[str, str]) -> float | None:
        """A counter's total or a gauge's value (None for an unknown series)."""
        series = self._series.get((name, freeze(labels)))
        return None if series is None else series.value

    def kind_of(self, name: str) -> str | None:
        return self._kinds.get(name)

    def series(self) -> Iterator[Series]:
        """Every series (a snapshot of the list; safe while others record)."""
        return iter(list(self._series.values()))

    def drain(self) -> list[Point]:
        """The statistics of every series since the last drain, and reset them."""
        points: list[Point] = []
        for series in list(self._series.values()):
            if series.i_count == 0:
                if series.kind != GAUGE:
                    continue
                series.sample(series.value)
            points.append(
                Point(
                    series.name,
                    series.labels,
                    series.kind,
                    series.bounds,
                    series.i_sum,
                    series.i_count,
                    series.i_min,
                    series.i_max,
                    tuple(series.i_buckets) if series.kind == HISTOGRAM else None,
                )
            )
            series.i_sum = series.i_count = 0.0
            series.i_min, series.i_max = math.inf, -math.inf
            if series.kind == HISTOGRAM:
                series.i_buckets = [0.0] * len(series.i_buckets)
        return points

    # -- internals ---------------------------------------------------------------------------

    def _new(
        self, name: str, labels: Mapping[str, str], kind: str, bounds: tuple[float, ...]
    ) -> Series | None:
        known = self._kinds.get(name)
        if known is not None and known != kind:
            self.rejected += 1
            return None
        if len(self._series) >= self.max_series:
            self.rejected += 1
            return None
        if known is None:
            self._kinds[name] = kind
        key = (name, freeze(labels))
        series = self._series.get(key)
        if series is None:
            series = Series(name, key[1], kind, bounds)
            self._series[key] = series
        return series


def remap(bounds: Sequence[float], counts: Sequence[float], target: Sequence[float]) -> list[float]:
    """Bucket ``counts`` (over ``bounds`` + ``+Inf``) re-bucketed onto ``target`` + ``+Inf``.

    A source bucket goes whole into the target bucket holding its upper bound (the estimate
    errs high, as percentiles from buckets do anyway).
    """
    if tuple(bounds) == tuple(target):
        return [float(c) for c in counts]
    out = [0.0] * (len(target) + 1)
    for index, value in enumerate(counts):
        upper = bounds[index] if index < len(bounds) else math.inf
        out[bisect_left(target, upper) if upper != math.inf else len(target)] += float(value)
    return out


def percentile(
    q: float, bounds: Sequence[float], buckets: Sequence[float], low: float, high: float
) -> float | None:
    """The ``q`` quantile (0..1) from bucket counts, interpolated, clamped to [low, high]."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for index, value in enumerate(buckets):
        if value <= 0:
            continue
        if seen + value >= rank:
            lower = bounds[index - 1] if index > 0 else low
            upper = bounds[index] if index < len(bounds) else high
            lower, upper = max(lower, low), min(upper, high)
            if upper <= lower:
                return lower
            return lower + (upper - lower) * (rank - seen) / value
        seen += value
    return high
