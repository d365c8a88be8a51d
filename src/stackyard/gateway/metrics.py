"""Per-request metrics: ``gateway_requests_total{route,service,stage,method,status}`` and the
``gateway_request_duration_seconds{route,service,stage}`` histogram, fed to a ``MetricsRecorder``.

The step sits right inside the correlation step, so every answer is counted — the gateway's own
404/405/413/502/503/504 too (route ``-`` when no route matched). ``service`` is the route's
service (``-`` for function, bucket and mock routes and unmatched requests), so a service's
traffic can be charted across its routes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..asgi import ASGIApp, Receive, Scope, Send
from .answer import observe

if TYPE_CHECKING:
    from ..telemetry.instruments import MetricsRecorder
    from .table import RouteSpec

REQUESTS = "gateway_requests_total"
DURATION = "gateway_request_duration_seconds"


_BOUND_LIMIT = 4096


class RequestMetrics:
    """The metrics step. The two series of an answer are bound once per (route, method,
    status) — routes told apart by identity, as each table has its own — and the bindings are
    dropped together when 4,096 have been made (routes of old tables among them)."""

    def __init__(self, app: ASGIApp, metrics: MetricsRecorder, stage: str) -> None:
        self.app = app
        self.metrics = metrics
        self.stage = stage
        self._bound: dict[tuple[int, str, int], _Bound] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        answer, send = observe(scope, send)
        try:
            await self.app(scope, receive, send)
        finally:
            match = scope["state"].get("route")
            route = match.route if match is not None else None
            method: str = scope["method"]
            status = answer.status or 500  # nothing answered: the client sees a failure
            bound = self._bound.get((id(route), method, status))
            if bound is None or bound.route is not route:
                bound = self._bind(route, method, status)
            bound.count(1.0)
            bound.observe(time.perf_counter() - started)

    def _bind(self, route: RouteSpec | None, method: str, status: int) -> _Bound:
        if len(self._bound) >= _BOUND_LIMIT:  # old tables' routes, odd methods and statuses
            self._bound.clear()
        path = route.path if route is not None else "-"
        service = (route.service if route is not None else "") or "-"
        labels = {"route": path, "service": service, "stage": self.stage}
        bound = _Bound(
            route,
            self.metrics.counter(REQUESTS, {**labels, "method": method, "status": str(status)}),
            self.metrics.histogram(DURATION, labels),
        )
        self._bound[(id(route), method, status)] = bound
        return bound


class _Bound:
    __slots__ = ("count", "observe", "route")

    def __init__(
        self,
        route: RouteSpec | None,
        count: Callable[[float], None],
        observe: Callable[[float], None],
    ) -> None:
        self.route = route  # kept alive, so its id is not reused while the entry exists
        self.count = count
        self.observe = observe
