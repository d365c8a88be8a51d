"""JSON log lines: the fields, inside and outside a request span, as the node's log store
reads them."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from stackyard import sdk
from stackyard.telemetry.logs import parse_line

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
log = logging.getLogger("tests.sdk")


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.usefixtures("configured")
def test_a_line_outside_a_request_has_no_ids(capsys: pytest.CaptureFixture[str]) -> None:
    log.info("hello %s", "world")
    [line] = lines(capsys.readouterr().out)
    assert line["msg"] == "hello world"
    assert line["level"] == "info"
    assert line["logger"] == "tests.sdk"
    assert line["time"].endswith("Z") and line["time"][10] == "T"
    assert not {"trace_id", "span_id", "correlation_id"} & line.keys()


@pytest.mark.usefixtures("configured")
def test_a_line_inside_a_request_has_trace_span_and_correlation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    headers = {"traceparent": f"00-{TRACE}-{PARENT}-01", "X-Correlation-Id": "corr-42"}
    with sdk.server_span(headers, "GET /x") as request:
        log.warning("inside", extra={"order": 7})
        span_id = f"{request.span.get_span_context().span_id:016x}"  # type: ignore[union-attr]
    log.info("after")
    inside, after = lines(capsys.readouterr().out)
    assert inside["trace_id"] == TRACE and request.trace_id == TRACE
    assert inside["span_id"] == span_id != PARENT
    assert inside["correlation_id"] == "corr-42" == request.correlation_id
    assert inside["level"] == "warning" and inside["order"] == 7
    assert "trace_id" not in after and "correlation_id" not in after


@pytest.mark.usefixtures("configured")
def test_the_log_store_picks_the_fields_out(capsys: pytest.CaptureFixture[str]) -> None:
    with sdk.server_span({"traceparent": f"00-{TRACE}-{PARENT}-01"}, "GET /y") as request:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    [raw] = capsys.readouterr().out.splitlines()
    message, level, fields, trace_id, span_id, correlation_id = parse_line(raw, "stdout")
    assert (message, level, trace_id) == ("failed", "error", TRACE)
    assert span_id is not None and len(span_id) == 16
    assert correlation_id == request.correlation_id  # made up for a request without one
    assert "ValueError: boom" in json.loads(fields)["exc"]


def test_the_formatter_works_on_any_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(sdk.JsonFormatter())
    other = logging.getLogger("tests.sdk.plain")
    other.propagate = False
    other.addHandler(handler)
    try:
        with sdk.server_span({"x-correlation-id": "plain-1"}, "job"):
            other.error("x=%d", 1)
    finally:
        other.removeHandler(handler)
    [line] = lines(stream.getvalue())
    assert line["msg"] == "x=1" and line["correlation_id"] == "plain-1"
