"""One request through a real node is one trace: gateway → alpha → relay (function) → beta.

alpha and beta are uninstrumented stdlib services (alpha forwards ``traceparent``, beta echoes
it); the spans asserted on are the gateway's and the function runtime's, read back through the
node's Zipkin API.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackyard.testing import NodeProcess, wait_until

APP = Path(__file__).resolve().parent / "apps" / "tracing"
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("tracing") / "data"
    with NodeProcess(APP, data_dir=data_dir, env={"PYTHON": sys.executable}) as running:
        running.wait_ready(60)
        yield running


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, response.headers, json.loads(response.read())


def test_one_request_is_one_trace(node: NodeProcess) -> None:
    status, headers, body = get(
        node.gateway_url + "/alpha/hop", {"traceparent": f"00-{TRACE}-{PARENT}-01"}
    )
    assert status == 200 and headers["x-trace-id"] == TRACE
    relay = body["relay"]

    def trace() -> list[dict[str, Any]] | None:
        code, spans = node.get_json(f"{node.control_url}/api/v2/trace/{TRACE}")
        return spans if code == 200 and len(spans) >= 7 else None

    spans = wait_until(trace, 15, 0.2, "the trace to be stored")
    by_id = {span["id"]: span for span in spans}
    assert len(by_id) == len(spans) == 7, spans

    def service(span: dict[str, Any]) -> str:
        return str(span["localEndpoint"]["serviceName"])

    def one(kind: str, name: str) -> dict[str, Any]:
        [found] = [s for s in spans if s.get("kind") == kind and s["name"].lower() == name]
        return found

    entry = one("SERVER", "get /alpha/{proxy+}")
    to_alpha = one("CLIENT", "get /alpha/{proxy+}")
    via_alpha = one("SERVER", "get /relay")
    to_relay = one("CLIENT", "invoke relay")
    function = one("SERVER", "relay")
    via_relay = one("SERVER", "get /beta/{proxy+}")
    to_beta = one("CLIENT", "get /beta/{proxy+}")

    assert entry["parentId"] == PARENT
    assert to_alpha["parentId"] == entry["id"]
    # alpha is not instrumented: it forwards the traceparent naming the gateway's CLIENT span
    assert body["alpha"]["traceparent"] == f"00-{TRACE}-{to_alpha['id']}-01"
    assert via_alpha["parentId"] == to_alpha["id"]
    assert to_relay["parentId"] == via_alpha["id"]
    assert function["parentId"] == to_relay["id"]
    assert relay["event_traceparent"] == f"00-{TRACE}-{to_relay['id']}-01"
    # the function continued from _X_AMZN_TRACE_ID: its call to beta is its child
    assert relay["sent"] == f"00-{TRACE}-{function['id']}-01"
    assert via_relay["parentId"] == function["id"]
    assert to_beta["parentId"] == via_relay["id"]
    assert relay["beta"]["beta"]["traceparent"] == f"00-{TRACE}-{to_beta['id']}-01"

    assert {service(s) for s in spans} == {"gateway", "relay"}
    assert to_alpha["remoteEndpoint"]["serviceName"] == "alpha"
    assert to_relay["remoteEndpoint"]["serviceName"] == "relay"
    assert to_beta["remoteEndpoint"]["serviceName"] == "beta"
    assert entry["tags"]["http.status_code"] == "200"
    assert all(s["traceId"] == TRACE for s in spans)

    code, links = node.get_json(f"{node.control_url}/api/v2/dependencies")
    assert code == 200
    pairs = {(link["parent"], link["child"]) for link in links}
    assert {("gateway", "alpha"), ("gateway", "relay"), ("relay", "gateway"),
            ("gateway", "beta")} <= pairs, links  # fmt: skip


def test_services_see_the_correlation_id_and_trace_is_searchable(node: NodeProcess) -> None:
    _, headers, body = get(node.gateway_url + "/alpha/hop", {"x-correlation-id": "e2e-corr-1"})
    trace_id = headers["x-trace-id"]
    assert body["alpha"]["x-correlation-id"] == "e2e-corr-1"
    assert body["relay"]["beta"]["beta"]["x-correlation-id"] is not None

    def found() -> Any:
        code, traces = node.get_json(f"{node.control_url}/api/v2/traces?serviceName=relay&limit=50")
        return code == 200 and any(t and t[0]["traceId"] == trace_id for t in traces)

    wait_until(found, 15, 0.2, "the trace in /api/v2/traces")
