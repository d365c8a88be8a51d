"""The functions pages: every function's invocations, errors, throttles, latency and workers;
one function's configuration, charts, test-invoke form, dead letters and recent logs.

``GET /functions`` lists the functions (the table is ``/fragments/functions``, polled);
``GET /functions/{name}`` shows one (its live part is ``/fragments/functions/{name}``, polled).
Counts and duration percentiles are the node's metrics since it started (the in-memory
aggregator that ``GET /metrics`` exposes); workers come from ``node.functions.status(name)``,
dead letters from ``node.functions.dead_letters`` and logs from the central log search — the
same interfaces the JSON APIs use. The test-invoke form (``static/functions.js``) posts to the
Lambda Invoke API and the redrive buttons to ``/_stackyard/functions/dead-letters/{id}/redrive``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...functions.errors import UnknownFunction
from ...telemetry.logs import LogQuery
from ...telemetry.metrics import HISTOGRAM, MetricsAggregator, percentile
from ..app import Console

DEAD_LETTERS_SHOWN = 50
LOG_LINES_SHOWN = 50
COUNTERS = {
    "invocations": "function_invocations_total",
    "errors": "function_errors_total",
    "throttles": "function_throttles_total",
}
DURATION = "function_duration_seconds"
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def routes(console: Console) -> list[BaseRoute]:
    async def index(request: Request) -> Response:
        return console.render(
            request, "functions.html", title="Functions", rows=await _rows(console)
        )

    async def index_fragment(request: Request) -> Response:
        return console.render(request, "_functions_table.html", rows=await _rows(console))

    async def detail(request: Request) -> Response:
        name = request.path_params["name"]
        context = await _detail(console, name)
        if context is None:
            return _unknown(console, request, name)
        config = console.node.functions.config(name)
        return console.render(
            request,
            "function.html",
            title=f"Function {name}",
            config=config,
            arn=console.node.functions.arn(name),
            sample_event=json.dumps(sample_event(console, name), indent=2),
            **context,
        )

    async def detail_fragment(request: Request) -> Response:
        name = request.path_params["name"]
        context = await _detail(console, name)
        if context is None:
            return _unknown(console, request, name)
        return console.render(request, "_function_live.html", **context)

    return [
        Route("/functions", index, methods=["GET"]),
        Route("/fragments/functions", index_fragment, methods=["GET"]),
        Route("/functions/{name}", detail, methods=["GET"]),
        Route("/fragments/functions/{name}", detail_fragment, methods=["GET"]),
    ]


def _unknown(console: Console, request: Request, name: str) -> Response:
    return console.render(
        request,
        "functions.html",
        status_code=404,
        title="Functions",
        rows=[],
        missing=name,
    )


def function_stats(metrics: MetricsAggregator, names: list[str]) -> dict[str, dict[str, Any]]:
    """Per function: its counters (since the node started) and duration percentiles (ms)."""
    wanted = set(names)
    stats: dict[str, dict[str, Any]] = {
        name: {key: 0 for key in COUNTERS} | dict.fromkeys(QUANTILES) for name in names
    }
    counter_keys = {metric: key for key, metric in COUNTERS.items()}
    for series in metrics.series():
        labels = dict(series.labels)
        function = labels.get("function")
        if function not in wanted or len(labels) != 1:
            continue
        if series.name in counter_keys:
            stats[function][counter_keys[series.name]] = int(series.value)
        elif series.name == DURATION and series.kind == HISTOGRAM and series.bounds:
            high = series.bounds[-1]
            for key, q in QUANTILES.items():
                value = percentile(q, series.bounds, series.buckets, 0.0, high)
                stats[function][key] = None if value is None else value * 1000
    return stats


async def _rows(console: Console) -> list[dict[str, Any]]:
    runtime = console.node.functions
    names = runtime.names()
    stats = function_stats(console.node.telemetry.metrics, names)
    counts = await runtime.event_counts()
    rows = []
    for name in names:
        config = runtime.config(name)
        pending, dead = counts.get(name, (0, 0))
        rows.append(
            {
                "name": name,
                "config": config,
                "status": runtime.status(name),
                "stats": stats[name],
                "pending": pending,
                "dead": dead,
            }
        )
    return rows


async def _detail(console: Console, name: str) -> dict[str, Any] | None:
    node = console.node
    runtime = node.functions
    try:
        runtime.config(name)
    except UnknownFunction:
        return None
    letters = await runtime.dead_letters(name, DEAD_LETTERS_SHOWN)
    logs, _ = await node.telemetry.logs.search(LogQuery(service=name, limit=LOG_LINES_SHOWN))
    counts = await runtime.event_counts()
    pending, dead = counts.get(name, (0, 0))
    return {
        "name": name,
        "status": runtime.status(name),
        "stats": function_stats(node.telemetry.metrics, [name])[name],
        "pending": pending,
        "dead": dead,
        "dead_letters": letters,
        "logs": logs,
    }


def sample_event(console: Console, name: str) -> dict[str, Any]:
    """An event to start the test-invoke form with: for a function behind an HTTP route, the
    API Gateway (HTTP API, payload 2.0) event of a GET of that path; else an empty object."""
    config = console.node.functions.config(name)
    for event in config.events:
        http = event.http_api or event.http
        if http is None:
            continue
        path = http.path if http.path.startswith("/") else "/" + http.path
        return {
            "version": "2.0",
            "routeKey": f"GET {path}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"accept": "application/json"},
            "queryStringParameters": {},
            "requestContext": {
                "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1"},
                "stage": "$default",
            },
            "isBase64Encoded": False,
        }
    return {}
