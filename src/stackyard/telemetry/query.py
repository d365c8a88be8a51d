"""Read APIs (Starlette routes): the Zipkin v2 query API and the log search.

Zipkin v2 (so Zipkin's UI and tools can read Stackyard), all JSON:

- ``GET /api/v2/services`` — local service names;
- ``GET /api/v2/spans?serviceName=`` — span names of a service;
- ``GET /api/v2/remoteServices?serviceName=`` — remote service names seen by a service;
- ``GET /api/v2/traces`` — ``serviceName``, ``remoteServiceName``, ``spanName``,
  ``annotationQuery`` (``error and http.method=GET``), ``minDuration``/``maxDuration`` (µs),
  ``endTs`` (ms, default now), ``lookback`` (ms, default 1 day), ``limit`` (default 10) → a
  list of traces (each a list of spans), newest first;
- ``GET /api/v2/trace/{traceId}`` — one trace, 404 when unknown;
- ``GET /api/v2/dependencies?endTs=&lookback=`` → ``[{parent, child, callCount, errorCount}]``;
- ``GET /api/v2/autocompleteKeys`` / ``autocompleteValues`` — empty lists (the UI asks).

Logs: ``GET /_stackyard/logs/search`` (:func:`search_logs`) with ``q`` (full text, every word
must match, ``word*`` for a prefix), ``service``, ``level`` (that level and above), ``since``
and ``until`` (ISO 8601, epoch milliseconds, or a duration ago such as ``15m``/``2h``/``1d``),
``trace_id``, ``correlation_id``, ``limit`` (default 100, max 1000) and ``cursor``. The answer
is a JSON list, newest first; when more records match, the ``X-Next-Cursor`` header holds the
``cursor`` value of the next page.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .errors import InvalidQuery, TelemetryError, TraceNotFound
from .logs import MAX_LIMIT, LogQuery, LogStore
from .model import valid_trace_id
from .responses import error_response
from .spans import SpanStore, TraceQuery, parse_annotation_query

MAX_TRACES = 1000
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _json(text: str) -> Response:
    return Response(text, media_type="application/json")


def int_param(
    request: Request, name: str, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidQuery(f"{name} must be an integer") from exc
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidQuery(f"{name} must be between {minimum} and {maximum}")
    return value


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise InvalidQuery(f"{name} is required")
    return value


def zipkin_query_routes(store: SpanStore) -> list[BaseRoute]:
    """The Zipkin v2 read API over ``store``."""

    async def services(request: Request) -> Response:
        return JSONResponse(sorted(await store.services()))

    async def span_names(request: Request) -> Response:
        try:
            service = _required(request, "serviceName")
        except TelemetryError as exc:
            return error_response(exc)
        return JSONResponse(await store.span_names(service))

    async def remote_services(request: Request) -> Response:
        try:
            service = _required(request, "serviceName")
        except TelemetryError as exc:
            return error_response(exc)
        return JSONResponse(await store.remote_services(service))

    async def traces(request: Request) -> Response:
        params = request.query_params
        try:
            query = TraceQuery(
                service=params.get("serviceName") or None,
                remote_service=params.get("remoteServiceName") or None,
                span_name=params.get("spanName") or None,
                annotations=parse_annotation_query(params.get("annotationQuery") or ""),
                min_duration=int_param(request, "minDuration"),
                max_duration=int_param(request, "maxDuration"),
                end_ts=int_param(request, "endTs", minimum=1),
                lookback=int_param(request, "lookback"),
                limit=int_param(request, "limit", minimum=1, maximum=MAX_TRACES) or 10,
            )
        except TelemetryError as exc:
            return error_response(exc)
        return _json(await store.traces_json(query))

    async def trace(request: Request) -> Response:
        trace_id = str(request.path_params["trace_id"]).lower()
        if not valid_trace_id(trace_id):
            return error_response(InvalidQuery(f"malformed trace id {trace_id!r}"))
        text = await store.trace_json(trace_id)
        if text is None:
            return error_response(TraceNotFound(f"trace {trace_id} not found"))
        return _json(text)

    async def dependencies(request: Request) -> Response:
        try:
            end_ts = int_param(request, "endTs", minimum=1)
            lookback = int_param(request, "lookback")
        except TelemetryError as exc:
            return error_response(exc)
        return JSONResponse(await store.dependencies(end_ts, lookback))

    async def empty(request: Request) -> Response:
        return JSONResponse([])

    return [
        Route("/api/v2/services", services, methods=["GET"]),
        Route("/api/v2/spans", span_names, methods=["GET"]),
        Route("/api/v2/remoteServices", remote_services, methods=["GET"]),
        Route("/api/v2/traces", traces, methods=["GET"]),
        Route("/api/v2/trace/{trace_id}", trace, methods=["GET"]),
        Route("/api/v2/dependencies", dependencies, methods=["GET"]),
        Route("/api/v2/autocompleteKeys", empty, methods=["GET"]),
        Route("/api/v2/autocompleteValues", empty, methods=["GET"]),
    ]


def parse_moment(raw: str, name: str, now: float | None = None) -> int:
    """ISO 8601, epoch milliseconds, or a duration ago (``15m``) → µs since the epoch."""
    text = raw.strip()
    now = time.time() if now is None else now
    if text.isdigit():
        return int(text) * 1000
    if match := _DURATION.match(text):
        return int((now - float(match.group(1)) * _UNITS[match.group(2)]) * 1_000_000)
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError as exc:
        raise InvalidQuery(f"{name} must be ISO 8601, epoch ms or a duration like 15m") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def _cursor(raw: str | None) -> tuple[int, int] | None:
    if not raw:
        return None
    ts, sep, row_id = raw.partition(".")
    try:
        if not sep:
            raise ValueError
        return int(ts), int(row_id)
    except ValueError as exc:
        raise InvalidQuery("malformed cursor") from exc


def log_query(request: Request) -> LogQuery:
    """The :class:`LogQuery` of a search request (raises ``InvalidQuery``)."""
    params = request.query_params
    since, until = params.get("since"), params.get("until")
    return LogQuery(
        text=params.get("q") or None,
        service=params.get("service") or None,
        level=params.get("level") or None,
        since=parse_moment(since, "since") if since else None,
        until=parse_moment(until, "until") if until else None,
        trace_id=params.get("trace_id") or None,
        correlation_id=params.get("correlation_id") or None,
        limit=int_param(request, "limit", minimum=1, maximum=MAX_LIMIT) or 100,
        cursor=_cursor(params.get("cursor")),
    )


def log_search_route(store: LogStore, path: str = "/_stackyard/logs/search") -> Route:
    """The log search endpoint (handler :func:`search_logs` bound to ``store``)."""

    async def search_logs(request: Request) -> Response:
        try:
            records, cursor = await store.search(log_query(request))
        except TelemetryError as exc:
            return error_response(exc)
        headers = {"X-Next-Cursor": f"{cursor[0]}.{cursor[1]}"} if cursor else None
        body = json.dumps(records, ensure_ascii=False, separators=(",", ":"))
        return Response(body, media_type="application/json", headers=headers)

    return Route(path, search_logs, methods=["GET"], name="search_logs")
