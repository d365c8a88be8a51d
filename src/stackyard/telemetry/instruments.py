"""What components that produce telemetry need of it, as Protocols (so the gateway and the
function runtime depend on these small interfaces, not on the stores).

- :class:`SpanRecorder`: hand over a finished span (``Telemetry.record_span``).
- :class:`MetricsRecorder`: count, observe (histogram) and set (gauge) a named metric with
  labels; cheap enough to call on the gateway's request path (it aggregates in memory; the
  metrics store rolls it up); ``counter``/``histogram`` bind a series once for hot paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from .model import Span


class SpanRecorder(Protocol):
    def record_span(self, span: Span) -> None: ...


class MetricsRecorder(Protocol):
    def count(self, name: str, labels: Mapping[str, str], value: float = 1.0) -> None:
        """Add ``value`` to the counter ``name`` with ``labels``."""
        ...

    def observe(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """Record one observation (e.g. a latency in seconds) in the histogram ``name``."""
        ...

    def set(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """Set the gauge ``name`` with ``labels`` to ``value``."""
        ...

    def counter(self, name: str, labels: Mapping[str, str]) -> Callable[[float], None]:
        """``count`` bound to one series: a function of the value alone (for hot paths)."""
        ...

    def histogram(self, name: str, labels: Mapping[str, str]) -> Callable[[float], None]:
        """``observe`` bound to one series: a function of the value alone (for hot paths)."""
        ...
