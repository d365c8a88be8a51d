"""The traces pages: a trace search, and one trace as a waterfall with its logs beside it.

``GET /traces`` renders the search form and the matching traces (root span, services, span
count, duration, errors), newest first; ``GET /fragments/traces`` renders the list alone. Query
parameters: ``service``, ``span_name``, ``min_duration`` (milliseconds), ``lookback`` (a
duration such as ``15m``, ``1h``, ``1d``) and ``limit``. The traces come from the span store's
query (``node.telemetry.spans.traces_json``, what ``GET /api/v2/traces`` answers).

``GET /traces/{trace_id}`` renders the trace page's frame; ``static/trace.js`` fetches the trace
once from ``GET /api/v2/trace/{trace_id}``, builds the span tree and draws only the rows in
view, so a trace of 10k+ spans stays responsive. ``GET /fragments/trace-logs`` renders the
trace's log lines — a log search by ``trace_id`` and by each ``correlation_id`` given (the
script passes those it finds on the spans), oldest first.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...telemetry.logs import LogQuery
from ...telemetry.model import valid_trace_id
from ...telemetry.spans import TraceQuery
from ..app import Console

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
DEFAULT_LOOKBACK = "1h"
LOOKBACKS = {"5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400, "7d": 604800}
TRACE_LOG_LIMIT = 200  # log lines per search on the trace page
MAX_CORRELATION_IDS = 5
_LOOKBACK = re.compile(r"^(\d+)(m|h|d)$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


class FilterError(ValueError):
    """A filter the page cannot apply (shown above the list, answered with status 400)."""


@dataclass(frozen=True)
class TraceFilters:
    service: str = ""
    span_name: str = ""
    min_duration: str = ""  # milliseconds, as typed
    lookback: str = DEFAULT_LOOKBACK
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, request: Request) -> TraceFilters:
        params = request.query_params
        raw_limit = params.get("limit") or str(DEFAULT_LIMIT)
        if not raw_limit.isdigit():
            raise FilterError(f"limit must be an integer, not {raw_limit!r}")
        return cls(
            service=(params.get("service") or "").strip().lower(),
            span_name=(params.get("span_name") or "").strip().lower(),
            min_duration=(params.get("min_duration") or "").strip(),
            lookback=(params.get("lookback") or DEFAULT_LOOKBACK).strip(),
            limit=max(1, min(int(raw_limit), MAX_LIMIT)),
        )

    def query(self) -> TraceQuery:
        match = _LOOKBACK.match(self.lookback)
        if match is None:
            raise FilterError(f"lookback: {self.lookback!r} is not a duration like 15m, 1h, 1d")
        lookback_ms = int(match.group(1)) * _UNITS[match.group(2)] * 1000
        min_us = None
        if self.min_duration:
            try:
                min_us = int(float(self.min_duration) * 1000)
            except ValueError:
                raise FilterError("min duration must be a number of milliseconds") from None
        return TraceQuery(
            service=self.service or None,
            span_name=self.span_name or None,
            min_duration=min_us,
            lookback=lookback_ms,
            limit=self.limit,
        )

    def query_string(self) -> str:
        pairs = {
            "service": self.service,
            "span_name": self.span_name,
            "min_duration": self.min_duration,
            "lookback": "" if self.lookback == DEFAULT_LOOKBACK else self.lookback,
            "limit": "" if self.limit == DEFAULT_LIMIT else str(self.limit),
        }
        return urlencode({key: value for key, value in pairs.items() if value})


def routes(console: Console) -> list[BaseRoute]:
    async def search(request: Request) -> dict[str, Any]:
        return await _search_context(console, request)

    async def trace(request: Request) -> Response:
        trace_id = str(request.path_params["trace_id"]).lower()
        if not valid_trace_id(trace_id):
            return console.render(
                request,
                "trace.html",
                title="Trace",
                status_code=400,
                trace_id=trace_id,
                error=f"{trace_id!r} is not a trace id (16 or 32 hex digits)",
            )
        return console.render(
            request, "trace.html", title=f"Trace {trace_id[:8]}", trace_id=trace_id, error=None
        )

    async def trace_logs(request: Request) -> Response:
        params = request.query_params
        trace_id = (params.get("trace_id") or "").lower()
        correlation_ids = [c for c in params.getlist("correlation_id") if c]
        records = await _trace_logs(console, trace_id, correlation_ids[:MAX_CORRELATION_IDS])
        return console.render(
            request,
            "_trace_logs.html",
            records=records,
            trace_id=trace_id,
            correlation_ids=correlation_ids,
            limit=TRACE_LOG_LIMIT,
        )

    return [
        *console.live_routes("/traces", "Traces", search, "traces.html", "_traces_list.html"),
        Route("/traces/{trace_id}", trace, methods=["GET"]),
        Route("/fragments/trace-logs", trace_logs, methods=["GET"]),
    ]


async def _search_context(console: Console, request: Request) -> dict[str, Any]:
    spans = console.node.telemetry.spans
    error = None
    traces: list[dict[str, Any]] = []
    try:
        filters = TraceFilters.parse(request)
        text = await spans.traces_json(filters.query())
        traces = await asyncio.to_thread(summarize_traces, text)
    except FilterError as exc:
        error = str(exc)
        filters = _as_typed(request)
    return {
        "filters": filters,
        "query": filters.query_string(),
        "traces": traces,
        "error": error,
        "services": sorted(await spans.services()),
        "span_names": await spans.span_names(filters.service) if filters.service else [],
        "lookbacks": list(LOOKBACKS),
    }


def _as_typed(request: Request) -> TraceFilters:
    """The filters as typed, for the form above an error."""
    params = request.query_params
    return TraceFilters(
        service=params.get("service") or "",
        span_name=params.get("span_name") or "",
        min_duration=params.get("min_duration") or "",
        lookback=params.get("lookback") or DEFAULT_LOOKBACK,
    )


def summarize_traces(text: str) -> list[dict[str, Any]]:
    """A Zipkin list of traces → one summary per trace (what the list's rows show)."""
    return [summarize(trace) for trace in json.loads(text) if trace]


def summarize(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Root span, services, span count, start, duration (µs) and error count of a trace."""
    ids = {span.get("id") for span in spans}
    start = min(int(span.get("timestamp") or 0) for span in spans)
    end = max(int(span.get("timestamp") or 0) + int(span.get("duration") or 0) for span in spans)
    roots = [span for span in spans if span.get("parentId") not in ids]
    root = min(roots or spans, key=lambda span: int(span.get("timestamp") or 0))
    services: set[str] = set()
    for span in spans:
        for side in ("localEndpoint", "remoteEndpoint"):
            name = (span.get(side) or {}).get("serviceName")
            if name:
                services.add(name)
    return {
        "trace_id": root.get("traceId"),
        "root_service": (root.get("localEndpoint") or {}).get("serviceName") or "unknown",
        "root_name": root.get("name") or "(unnamed)",
        "services": sorted(services),
        "span_count": len(spans),
        "start_us": start,
        "duration_us": max(0, end - start),
        "errors": sum(1 for span in spans if "error" in (span.get("tags") or {})),
    }


async def _trace_logs(
    console: Console, trace_id: str, correlation_ids: list[str]
) -> list[dict[str, Any]]:
    """The log lines of a trace (by trace id, and by the requests' correlation ids), oldest
    first, each line once."""
    logs = console.node.telemetry.logs
    queries = [LogQuery(correlation_id=c, limit=TRACE_LOG_LIMIT) for c in correlation_ids]
    if valid_trace_id(trace_id):
        queries.insert(0, LogQuery(trace_id=trace_id, limit=TRACE_LOG_LIMIT))
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for query in queries:
        records, _ = await logs.search(query)
        for record in records:
            key = (record["time"], record["service"], record.get("instance"), record["message"])
            found.setdefault(key, record)
    return sorted(found.values(), key=lambda record: str(record["time"]))
