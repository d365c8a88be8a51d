"""Per-request metrics: ``gateway_requests_total{route,service,stage,method,status}`` and the
``gateway_request_duration_seconds{route,service,stage}`` histogram, fed to a ``MetricsRecorder``.

The step sits right inside the correlation step, so every answer is counted — the gateway's own
404/405/413/502/503/504 too (route ``-`` when no route matched). ``service`` is the route's
service (``-`` for function, bucket and mock routes and unmatched requests), so a service's
traffic can be charted across its routes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..asgi import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ..telemetry.instruments import MetricsRecorder

REQUESTS = "gateway_requests_total"
DURATION = "gateway_request_duration_seconds"


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: MetricsRecorder, stage: str) -> None:
        self.app = app
        self.metrics = metrics
        self.stage = stage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # if nothing is answered, the client sees a failure

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            match = scope.get("state", {}).get("route")
            route = match.route.path if match is not None else "-"
            service = (match.route.service if match is not None else "") or "-"
            labels = {"route": route, "service": service, "stage": self.stage}
            self.metrics.count(
                REQUESTS, {**labels, "method": scope["method"], "status": str(status)}
            )
            self.metrics.observe(DURATION, labels, time.perf_counter() - started)
