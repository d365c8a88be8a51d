"""Metrics: the aggregator, Prometheus exposition (parsed back by prometheus_client), OTLP
ingest from the real OpenTelemetry SDK exporters, EMF log lines, the query API, its 400s, and
retention of the rollups."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.json.http.metric_exporter import (
    OTLPMetricExporter as JsonMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as ProtoMetricExporter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from stackyard.telemetry import RetentionSettings
from stackyard.telemetry.emf import emf_from_record
from stackyard.telemetry.exposition import render
from stackyard.telemetry.metrics import LATENCY_BUCKETS, MetricsAggregator, percentile

from .conftest import FakeClock, TelemetryServer

T0 = 1_800_000_000.0  # a multiple of 3600


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# -- aggregator and exposition (no server) ------------------------------------------------------


def test_aggregator_kinds_and_drain() -> None:
    agg = MetricsAggregator()
    agg.count("requests_total", {"route": "/a"})
    agg.count("requests_total", {"route": "/a"}, 2)
    agg.set("depth", {}, 4)
    for value in (0.003, 0.2, 0.2, 7.0):
        agg.observe("latency_seconds", {"route": "/a"}, value)
    agg.set("requests_total", {"route": "/a"}, 1)  # wrong kind: ignored
    agg.count("requests_total", {"route": "/b"}, -1)  # negative: ignored
    assert agg.rejected == 2
    points = {p.name: p for p in agg.drain()}
    assert (points["requests_total"].sum, points["requests_total"].count) == (3, 2)
    hist = points["latency_seconds"]
    assert (hist.count, hist.min, hist.max) == (4, 0.003, 7.0)
    assert hist.buckets is not None and sum(hist.buckets) == 4
    # next interval: counters and histograms without news are absent, gauges repeat
    again = {p.name: p for p in agg.drain()}
    assert set(again) == {"depth"} and again["depth"].sum == 4
    # cumulative state is kept for the exposition
    assert agg.value_of("requests_total", {"route": "/a"}) == 3


def test_label_order_does_not_matter_and_max_series() -> None:
    agg = MetricsAggregator(max_series=2)
    agg.count("c", {"a": "1", "b": "2"})
    agg.count("c", {"b": "2", "a": "1"})
    agg.count("c", {"a": "2"})
    agg.count("c", {"a": "3"})  # beyond max_series
    assert [s.value for s in agg.series()] == [2, 1]
    assert agg.rejected == 1


def test_bound_instruments_record_as_count_and_observe_do() -> None:
    direct, bound = MetricsAggregator(), MetricsAggregator()
    labels = {"route": "/a", "stage": "dev"}
    add = bound.counter("requests_total", labels)
    record = bound.histogram("latency_seconds", labels)
    for value in (0.003, 0.2, 7.0):
        direct.count("requests_total", labels, 2)
        direct.observe("latency_seconds", labels, value)
        add(2)
        record(value)
    # the bound ones reach the same series as later unbound calls (label order aside)
    bound.count("requests_total", {"stage": "dev", "route": "/a"}, 2)
    direct.count("requests_total", labels, 2)
    assert bound.drain() == direct.drain()
    assert bound.value_of("requests_total", labels) == 8
    # a rejected series (a clash of kinds, or beyond max_series) is bound to nothing
    bound.counter("latency_seconds", labels)(5)
    small = MetricsAggregator(max_series=1)
    small.counter("c", {"a": "1"})(1)
    small.counter("c", {"a": "2"})(1)
    assert [s.value for s in small.series()] == [1] and small.rejected == 1
    assert bound.rejected == 1 and bound.drain() == []


def test_percentile_interpolates_within_buckets() -> None:
    bounds = (1.0, 2.0, 4.0)
    assert percentile(0.5, bounds, [0, 10, 0, 0], 1.0, 2.0) == pytest.approx(1.5)
    assert percentile(0.99, bounds, [0, 0, 0, 5], 5.0, 9.0) == pytest.approx(8.96)
    assert percentile(0.5, bounds, [0, 0, 0, 0], 0, 0) is None


def test_exposition_parses_back_with_escaped_labels() -> None:
    agg = MetricsAggregator()
    tricky = 'say "hi"\\ and\nbye'
    agg.count("gateway_requests_total", {"route": tricky, "status": "200"}, 3)
    agg.set("instance_healthy", {"service": "orders", "instance": "orders-1"}, 1)
    agg.set("temperature", {}, -math.inf)
    for value in (0.004, 0.02, 0.02, 3.0, 100.0):
        agg.observe("gateway_request_duration_seconds", {"route": "/a", "stage": "dev"}, value)
    agg.describe("temperature", "multi\nline \\ help")
    text = render(agg)
    assert text.endswith("\n") and "# TYPE gateway_requests_total counter" in text
    found = families(text)
    assert found["gateway_requests"].type == "counter"
    assert found["instance_healthy"].type == "gauge"
    assert found["temperature"].documentation == "multi\nline \\ help"
    values = samples(text)
    assert values[("gateway_requests_total", (("route", tricky), ("status", "200")))] == 3
    assert values[("temperature", ())] == -math.inf
    hist = found["gateway_request_duration_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 5
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)  # cumulative
    key = (("route", "/a"), ("stage", "dev"))
    assert values[("gateway_request_duration_seconds_count", key)] == 5
    assert values[("gateway_request_duration_seconds_sum", key)] == pytest.approx(103.044)
    assert render(MetricsAggregator()) == ""


def test_emf_parsing() -> None:
    line = {
        "_aws": {
            "Timestamp": 1700000000000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "shop",
                    "Dimensions": [["svc"], ["svc", "route"]],
                    "Metrics": [{"Name": "latency", "Unit": "Milliseconds"}, {"Name": "orders"}],
                }
            ],
        },
        "svc": "orders",
        "route": "/orders",
        "latency": [12, 30.5],
        "orders": 1,
    }
    found = emf_from_record({"message": json.dumps(line)})
    assert {(m.name, tuple(sorted(m.labels.items())), m.values) for m in found} == {
        ("latency", (("namespace", "shop"), ("svc", "orders")), (12.0, 30.5)),
        ("latency", (("namespace", "shop"), ("route", "/orders"), ("svc", "orders")), (12.0, 30.5)),
        ("orders", (("namespace", "shop"), ("svc", "orders")), (1.0,)),
        ("orders", (("namespace", "shop"), ("route", "/orders"), ("svc", "orders")), (1.0,)),
    }
    for message in (
        "plain line",
        '{"_aws": ',
        '{"_aws": 1}',
        '["_aws"]',
        json.dumps({"_aws": {"CloudWatchMetrics": [{"Namespace": "x", "Metrics": "no"}]}}),
        json.dumps(
            {
                "_aws": {
                    "CloudWatchMetrics": [
                        {"Namespace": "x", "Dimensions": [["nope"]], "Metrics": [{"Name": "m"}]}
                    ]
                },
                "m": 1,
            }
        ),
    ):
        assert emf_from_record({"message": message}) == []
    assert emf_from_record({"message": None}) == []


# -- through a server ---------------------------------------------------------------------------


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[TelemetryServer, FakeClock]]:
    clock = FakeClock(T0)
    options = {"clock": clock, "metrics_interval": 3600.0, "process_metrics": False}
    with TelemetryServer(tmp_path / "data", **options) as server:
        yield server, clock


def _provider(url: str, exporter: MetricExporter) -> MeterProvider:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "orders"})
    return MeterProvider(resource=resource, metric_readers=[reader])


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_otel_sdk_metrics_reach_exposition_and_query(
    clocked: tuple[TelemetryServer, FakeClock], encoding: str
) -> None:
    served, clock = clocked
    endpoint = served.url + "/v1/metrics"
    exporter = (
        ProtoMetricExporter(endpoint=endpoint)
        if encoding == "protobuf"
        else JsonMetricExporter(endpoint=endpoint)
    )
    provider = _provider(served.url, exporter)
    meter = provider.get_meter("test")
    placed = meter.create_counter("orders.placed", description="Orders placed.")
    latency = meter.create_histogram("orders.latency", unit="ms")
    depth = meter.create_up_down_counter("queue.depth")
    placed.add(3, {"region": "eu"})
    for value in (12, 40, 250):
        latency.record(value, {"region": "eu"})
    depth.add(5)
    assert provider.force_flush()
    served.flush()
    clock.advance(10)
    served.flush()  # closes the first interval: what follows is dated T0 + 10
    placed.add(2, {"region": "eu"})  # cumulative 5 → a delta of 2 in the next period
    latency.record(30, {"region": "eu"})
    assert provider.force_flush()
    served.flush()
    provider.shutdown()

    text = served.get("/metrics").text
    values = samples(text)
    eu = (("region", "eu"), ("service", "orders"))
    assert values[("orders_placed_total", eu)] == 5
    assert values[("orders_latency_count", eu)] == 4
    assert values[("orders_latency_sum", eu)] == 332
    assert values[("queue_depth", (("service", "orders"),))] == 5
    assert families(text)["orders_placed"].documentation == "Orders placed."

    query = {"name": "orders_placed_total", "labels": "region=eu", "period": "10"}
    answer = served.get("/_stackyard/metrics/query", stat="sum", **query).json()
    assert answer["kind"] == "counter"
    assert answer["datapoints"] == [
        {"time": int(T0), "value": 3.0},
        {"time": int(T0) + 10, "value": 2.0},
    ]
    minute = served.get(
        "/_stackyard/metrics/query", name="orders_latency", stat="all", period="60"
    ).json()["datapoints"]
    assert len(minute) == 1
    point = minute[0]
    assert (point["count"], point["sum"], point["min"], point["max"]) == (4, 332, 12, 250)
    assert 25 <= point["p50"] <= 50 and 100 <= point["p99"] <= 250
    listed = {m["name"]: m for m in served.get("/_stackyard/metrics").json()}
    assert listed["orders_placed_total"]["series"] == [{"region": "eu", "service": "orders"}]


def test_in_process_metrics_and_statistics(clocked: tuple[TelemetryServer, FakeClock]) -> None:
    served, clock = clocked
    metrics = served.telemetry.metrics
    labels = {"route": "/orders", "stage": "prod"}

    def period(values: list[float], status: str) -> None:
        for value in values:
            metrics.observe("gateway_request_duration_seconds", labels, value)
            metrics.count("gateway_requests_total", {**labels, "method": "GET", "status": status})

    served.on_loop(lambda: period([0.01] * 98 + [2.0, 3.0], "200"))
    served.flush()
    clock.advance(10)
    served.flush()
    served.on_loop(lambda: period([0.2] * 10, "500"))
    served.flush()
    clock.advance(10)

    def query(**params: str) -> list[dict[str, Any]]:
        response = served.get("/_stackyard/metrics/query", **params)
        assert response.status_code == 200, response.text
        points: list[dict[str, Any]] = response.json()["datapoints"]
        return points

    name = "gateway_request_duration_seconds"
    p50 = query(name=name, stat="p50", period="10")
    assert [p["time"] for p in p50] == [T0, T0 + 10]
    assert p50[0]["value"] <= 0.01 and 0.1 <= p50[1]["value"] <= 0.2
    p99 = query(name=name, stat="p99", period="10", labels="route=/orders")
    assert 1.0 <= p99[0]["value"] <= 3.0
    assert query(name=name, stat="max", period="60") == [{"time": T0, "value": 3.0}]
    assert query(name=name, stat="count", period="3600") == [{"time": T0, "value": 110.0}]
    errors = query(name="gateway_requests_total", stat="sum", period="60", labels="status=500")
    assert errors == [{"time": T0, "value": 10.0}]
    assert query(name="gateway_requests_total", stat="sum", labels="status=404") == []
    assert query(name="no_such_metric", stat="sum") == []
    since = str(int(T0 * 1000) + 10_000)  # epoch ms
    assert len(query(name=name, stat="avg", period="10", since=since)) == 1


def test_emf_lines_through_the_log_sink(clocked: tuple[TelemetryServer, FakeClock]) -> None:
    served, _ = clocked
    emf = {
        "_aws": {
            "Timestamp": int(T0 * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "shop",
                    "Dimensions": [["svc"]],
                    "Metrics": [{"Name": "checkout.latency", "Unit": "Milliseconds"}],
                }
            ],
        },
        "svc": "checkout",
        "checkout.latency": [120, 80, 95],
        "msg": "checked out",
    }
    records = [
        {"service": "checkout", "stream": "stdout", "message": json.dumps(emf)},
        {"service": "checkout", "stream": "stdout", "message": "plain line"},
        {"service": "checkout", "stream": "stdout", "message": '{"_aws": broken'},
    ]
    for record in records:
        served.on_loop(lambda r=record: served.telemetry.log_sink(r))  # type: ignore[misc]
    served.flush()
    values = samples(served.get("/metrics").text)
    labels = (("namespace", "shop"), ("svc", "checkout"))
    assert values[("checkout_latency_count", labels)] == 3
    assert values[("checkout_latency_sum", labels)] == 295
    assert values[("checkout_latency_bucket", (("le", "100"), *labels))] == 2
    points = served.get(
        "/_stackyard/metrics/query", name="checkout_latency", stat="max", labels="svc=checkout"
    ).json()["datapoints"]
    assert points == [{"time": T0 - T0 % 60, "value": 120.0}]
    # the lines are still logs
    assert len(served.get("/_stackyard/logs/search", service="checkout").json()) == 3


def test_otlp_metrics_bad_bodies(clocked: tuple[TelemetryServer, FakeClock]) -> None:
    served, _ = clocked
    protobuf = {"Content-Type": "application/x-protobuf"}
    as_json = {"Content-Type": "application/json"}
    assert served.post("/v1/metrics", b"\xff\xff\xff", **protobuf).status_code == 400
    assert served.post("/v1/metrics", b"{nope", **as_json).status_code == 400
    assert served.post("/v1/metrics", b"[]", **as_json).status_code == 400
    bad_list = b'{"resourceMetrics": {"a": 1}}'
    assert served.post("/v1/metrics", bad_list, **as_json).status_code == 400
    assert served.post("/v1/metrics", b"x", **{"Content-Type": "text/xml"}).status_code == 415
    doc = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "good", "gauge": {"dataPoints": [{"asDouble": 1.5}]}},
                            {"name": "no_value", "gauge": {"dataPoints": [{}]}},
                            {
                                "name": "bad_hist",
                                "histogram": {
                                    "dataPoints": [
                                        {"bucketCounts": ["1", "2"], "explicitBounds": [1, 2]}
                                    ]
                                },
                            },
                            {"name": "summary", "summary": {"dataPoints": [{"count": "1"}]}},
                            {"gauge": {"dataPoints": [{"asInt": "1"}]}},
                        ]
                    }
                ],
            }
        ]
    }
    body = gzip.compress(json.dumps(doc).encode())
    response = served.post("/v1/metrics", body, **as_json, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "4" and "summary" in partial["errorMessage"]
    assert samples(served.get("/metrics").text)[("good", (("service", "a"),))] == 1.5


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"name": "x", "stat": "median"},
        {"name": "x", "period": "15"},
        {"name": "x", "period": "abc"},
        {"name": "x", "period": "0"},
        {"name": "x", "since": "yesterday-ish"},
        {"name": "x", "since": "1m", "until": "2m"},
        {"name": "x", "labels": "novalue"},
        {"name": "x", "period": "10", "since": "30d"},
        {"name": "depth", "stat": "p99"},
    ],
)
def test_query_bad_params_are_400(
    clocked: tuple[TelemetryServer, FakeClock], params: dict[str, str]
) -> None:
    served, _ = clocked
    served.on_loop(lambda: served.telemetry.metrics.set("depth", {}, 1))
    served.flush()
    response = served.get("/_stackyard/metrics/query", **params)
    assert response.status_code == 400, params
    assert response.json()["error"]["code"] == "InvalidParameter"


def test_rollup_retention_per_resolution(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    retention = RetentionSettings(metric_ages=(3600.0, 3 * 86400.0, 30 * 86400.0))
    options = {"clock": clock, "metrics_interval": 3600.0, "process_metrics": False}
    with TelemetryServer(tmp_path / "data", retention, **options) as served:
        served.on_loop(lambda: served.telemetry.metrics.count("jobs_total", {"kind": "a"}, 4))
        served.flush()

        def count(period: int) -> int:
            params = {"name": "jobs_total", "stat": "sum", "period": str(period)}
            window = {"since": str(int(T0 * 1000)), "until": str(int(T0 * 1000) + 3_600_000)}
            points = served.get("/_stackyard/metrics/query", **window, **params).json()
            return len(points["datapoints"])

        assert (count(10), count(60), count(3600)) == (1, 1, 1)
        clock.advance(2 * 86400)
        served.run(served.telemetry.enforce_retention())
        assert (count(10), count(60), count(3600)) == (0, 1, 1)
        clock.advance(5 * 86400)
        served.run(served.telemetry.enforce_retention())
        assert (count(10), count(60), count(3600)) == (0, 0, 1)
        clock.advance(40 * 86400)
        served.run(served.telemetry.enforce_retention())
        assert count(3600) == 0
        assert served.run(served.telemetry.metric_store.names()) == []


def test_process_collector_publishes(tmp_path: Path) -> None:
    with TelemetryServer(tmp_path / "data", metrics_interval=3600.0) as served:
        served.flush()
        served.flush()
        values = samples(served.get("/metrics").text)
        assert values[("process_resident_memory_bytes", ())] > 1_000_000
        assert values[("process_cpu_seconds_total", ())] > 0
        assert ("process_cpu_utilization", ()) in values
        assert values[("process_open_fds", ())] >= 3

        remove = served.telemetry.add_collector(
            lambda m: m.set("function_concurrent_executions", {"function": "f"}, 2)
        )
        served.flush()
        remove()
        values = samples(served.get("/metrics").text)
        assert values[("function_concurrent_executions", (("function", "f"),))] == 2
