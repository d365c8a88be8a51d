"""HTTP routes of metrics and alarms (Starlette).

- ``POST /v1/metrics`` — OTLP ``ExportMetricsServiceRequest`` (protobuf or JSON, gzip), answers
  an ``ExportMetricsServiceResponse`` (``partialSuccess`` for rejected data points);
- ``GET /metrics`` — Prometheus text format 0.0.4 (cumulative since the node started);
- ``GET /_stackyard/metrics[?name=]`` — ``[{name, kind, help, series: [labels, ...]}]``;
- ``GET /_stackyard/metrics/query`` — ``name`` (required), ``labels=k=v,k2=v2`` (series whose
  labels include these, merged), ``stat`` (sum|count|avg|min|max|p50|p90|p99, default avg, or
  ``all``), ``period`` (seconds, a multiple of 10, default 60), ``since``/``until`` (ISO 8601,
  epoch ms or a duration ago like ``15m``; default the last hour) →
  ``{name, kind, stat, period, labels, datapoints: [{time, value}]}`` (``time`` = period start,
  epoch seconds; periods without data are left out; with ``stat=all`` each datapoint carries
  every statistic instead of ``value``);
- ``GET /_stackyard/alarms`` — every alarm with its state, reason and last change;
- ``GET /_stackyard/alarms/{name}/history[?limit=]`` — its state changes, newest first.

Bad parameters answer 400 ``{"error": {"code": "InvalidParameter", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .alarms import Alarms
from .body import JSON, PROTOBUF, media_type, read_body
from .errors import AlarmNotFound, InvalidQuery, TelemetryError
from .exposition import CONTENT_TYPE, render
from .ingest import _decode
from .metrics import MetricsAggregator
from .otlp_metrics import (
    OtlpMetricsSink,
    decode_metrics_json,
    decode_metrics_protobuf,
    metrics_response,
)
from .query import int_param, parse_moment
from .responses import error_response, otlp_error_response
from .rollups import MetricQuery, MetricsStore, check_stat

MAX_POINTS = 10_000
DEFAULT_LOOKBACK = 3600


def parse_labels(raw: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` → a dict (raises ``InvalidQuery``)."""
    out: dict[str, str] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidQuery(f"labels must look like k=v,k2=v2 (got {part!r})")
        out[key.strip()] = value.strip()
    return out


def metric_query(request: Request, now: float) -> tuple[MetricQuery, str]:
    """The query and statistic of a ``/_stackyard/metrics/query`` request."""
    params = request.query_params
    name = params.get("name")
    if not name:
        raise InvalidQuery("name is required")
    stat = params.get("stat") or "avg"
    check_stat(stat, None)
    period = int_param(request, "period", minimum=10, maximum=366 * 86400) or 60
    if period % 10:
        raise InvalidQuery("period must be a multiple of 10 seconds")
    until_raw, since_raw = params.get("until"), params.get("since")
    until = parse_moment(until_raw, "until", now) // 1_000_000 if until_raw else int(now) + 1
    since = (
        parse_moment(since_raw, "since", now) // 1_000_000
        if since_raw
        else until - DEFAULT_LOOKBACK
    )
    if since >= until:
        raise InvalidQuery("since must be before until")
    since = since // period * period
    if (until - since) / period > MAX_POINTS:
        raise InvalidQuery(f"at most {MAX_POINTS} periods per query; widen period")
    labels = parse_labels(params.get("labels"))
    return MetricQuery(name, labels, period, since, until), stat


def metrics_routes(
    aggregator: MetricsAggregator,
    store: MetricsStore,
    alarms: Alarms,
    clock: Callable[[], float],
) -> list[BaseRoute]:
    """The metric ingest, exposition, query and alarm endpoints."""
    sink = OtlpMetricsSink(aggregator)

    async def otlp_metrics(request: Request) -> Response:
        media = PROTOBUF
        try:
            media = media_type(request)
            body = await read_body(request)
            decoder = decode_metrics_json if media == JSON else decode_metrics_protobuf
            result = await _decode(decoder, body)
        except TelemetryError as exc:
            return otlp_error_response(exc, media)
        sink.apply(result.samples)
        return Response(metrics_response(result, media == JSON), media_type=media)

    async def exposition(request: Request) -> Response:
        return Response(render(aggregator), headers={"Content-Type": CONTENT_TYPE})

    async def names(request: Request) -> Response:
        only = request.query_params.get("name") or None
        found: dict[str, dict[str, Any]] = {}
        for row in await store.names(only):
            entry = found.setdefault(row["name"], {"kind": row["kind"], "series": {}})
            entry["series"][tuple(sorted(row["labels"].items()))] = row["labels"]
        for series in aggregator.series():
            if only is None or series.name == only:
                entry = found.setdefault(series.name, {"kind": series.kind, "series": {}})
                entry["series"].setdefault(series.labels, dict(series.labels))
        body = [
            {
                "name": name,
                "kind": found[name]["kind"],
                "help": aggregator.help.get(name, ""),
                "series": [found[name]["series"][k] for k in sorted(found[name]["series"])],
            }
            for name in sorted(found)
        ]
        return JSONResponse(body)

    async def query(request: Request) -> Response:
        try:
            metric, stat = metric_query(request, clock())
            kind, stats = await store.query(metric)
            check_stat(stat, kind or aggregator.kind_of(metric.name))
        except TelemetryError as exc:
            return error_response(exc)
        if stat == "all":
            points = [s.as_dict() for s in stats]
        else:
            points = [
                {"time": s.time, "value": value}
                for s in stats
                if (value := s.value(stat)) is not None
            ]
        return JSONResponse(
            {
                "name": metric.name,
                "kind": kind or aggregator.kind_of(metric.name),
                "stat": stat,
                "period": metric.period,
                "labels": dict(metric.labels),
                "since": metric.since,
                "until": metric.until,
                "datapoints": points,
            }
        )

    async def alarm_list(request: Request) -> Response:
        return JSONResponse(alarms.states())

    async def alarm_history(request: Request) -> Response:
        name = str(request.path_params["name"])
        try:
            if name not in alarms.configs:
                raise AlarmNotFound(f"no alarm named {name!r}")
            limit = int_param(request, "limit", minimum=1, maximum=1000) or 100
        except TelemetryError as exc:
            return error_response(exc)
        return JSONResponse(await store.alarm_history(name, limit))

    return [
        Route("/v1/metrics", otlp_metrics, methods=["POST"], name="otlp_metrics"),
        Route("/metrics", exposition, methods=["GET"], name="prometheus_metrics"),
        Route("/_stackyard/metrics", names, methods=["GET"], name="metric_names"),
        Route("/_stackyard/metrics/query", query, methods=["GET"], name="metric_query"),
        Route("/_stackyard/alarms", alarm_list, methods=["GET"], name="alarms"),
        Route(
            "/_stackyard/alarms/{name}/history",
            alarm_history,
            methods=["GET"],
            name="alarm_history",
        ),
    ]
