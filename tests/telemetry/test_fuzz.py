"""Hypothesis fuzzing of the ingest endpoints: whatever the body, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import TelemetryServer

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "a" * 32,
            "b" * 16,
            "0" * 32,
            "SERVER",
            "CLIENT",
            "1700000000000000000",
            "q6urq6urq6urq6urq6urqw==",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def field_dict(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=len(keys))


zipkin_span = field_dict(
    [
        "traceId",
        "id",
        "parentId",
        "name",
        "kind",
        "timestamp",
        "duration",
        "localEndpoint",
        "remoteEndpoint",
        "annotations",
        "tags",
        "debug",
        "shared",
    ]
)
otlp_span = field_dict(
    [
        "traceId",
        "spanId",
        "parentSpanId",
        "name",
        "kind",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "attributes",
        "events",
        "status",
    ]
)
otlp_traces = st.fixed_dictionaries(
    {
        "resourceSpans": st.lists(
            st.fixed_dictionaries(
                {
                    "resource": st.one_of(
                        json_values,
                        st.just(
                            {
                                "attributes": [
                                    {"key": "service.name", "value": {"stringValue": "fz"}}
                                ]
                            }
                        ),
                    ),
                    "scopeSpans": st.lists(
                        st.fixed_dictionaries({"spans": st.lists(otlp_span, max_size=3)}),
                        max_size=2,
                    ),
                }
            ),
            max_size=2,
        )
    }
)
otlp_logs = st.fixed_dictionaries(
    {
        "resourceLogs": st.lists(
            st.fixed_dictionaries(
                {
                    "scopeLogs": st.lists(
                        st.fixed_dictionaries(
                            {
                                "logRecords": st.lists(
                                    field_dict(
                                        [
                                            "timeUnixNano",
                                            "severityNumber",
                                            "severityText",
                                            "body",
                                            "attributes",
                                            "traceId",
                                            "spanId",
                                        ]
                                    ),
                                    max_size=3,
                                )
                            }
                        ),
                        max_size=2,
                    )
                }
            ),
            max_size=2,
        )
    }
)
JS = {"Content-Type": "application/json"}


@FUZZ
@given(body=st.one_of(st.lists(zipkin_span, max_size=4), json_values))
def test_zipkin_never_5xx(shared_server: TelemetryServer, body: Any) -> None:
    response = shared_server.post("/api/v2/spans", json.dumps(body).encode(), **JS)
    assert response.status_code in (202, 400), response.text


@FUZZ
@given(body=st.one_of(otlp_traces, json_values))
def test_otlp_json_traces_never_5xx(shared_server: TelemetryServer, body: Any) -> None:
    response = shared_server.post("/v1/traces", json.dumps(body).encode(), **JS)
    assert response.status_code in (200, 400), response.text


@FUZZ
@given(body=st.one_of(otlp_logs, json_values))
def test_otlp_json_logs_never_5xx(shared_server: TelemetryServer, body: Any) -> None:
    response = shared_server.post("/v1/logs", json.dumps(body).encode(), **JS)
    assert response.status_code in (200, 400), response.text


@FUZZ
@given(body=st.binary(max_size=300), path=st.sampled_from(["/v1/traces", "/v1/logs"]))
def test_otlp_protobuf_never_5xx(shared_server: TelemetryServer, body: bytes, path: str) -> None:
    response = shared_server.post(path, body, **{"Content-Type": "application/x-protobuf"})
    assert response.status_code in (200, 400), response.content


def test_server_still_healthy_after_fuzz(shared_server: TelemetryServer) -> None:
    shared_server.flush()
    assert shared_server.get("/api/v2/services").status_code == 200
    assert shared_server.get("/api/v2/traces", limit=5).status_code == 200
    assert shared_server.get("/api/v2/dependencies").status_code == 200
    assert shared_server.get("/_stackyard/logs/search", q="x").status_code == 200
