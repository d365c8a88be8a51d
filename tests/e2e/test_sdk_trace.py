"""Services instrumented with ``stackyard.sdk`` on a real node: one request gateway → alpha →
relay (function) → beta is one trace with the right links and service names, every log line of
it is found by trace id and by correlation id, and the dependency graph shows the chain.

alpha and beta are stdlib ``http.server`` services calling ``sdk.setup()``, ``sdk.server_span``
and ``sdk.urlopen``; relay's handler uses ``sdk.function_span``. Their spans go over OTLP/HTTP
to the node (``OTEL_EXPORTER_OTLP_ENDPOINT`` of the standard environment), batched every
100 ms (``OTEL_BSP_SCHEDULE_DELAY``).
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackyard import sdk
from stackyard.testing import NodeProcess, wait_until

APP = Path(__file__).resolve().parent / "apps" / "sdk_trace"
SPANS = 12  # see test_one_request_is_one_trace


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("sdk-trace") / "data"
    with NodeProcess(APP, data_dir=data_dir, env={"OTEL_BSP_SCHEDULE_DELAY": "100"}) as running:
        running.wait_ready(60)
        yield running


@pytest.fixture(scope="module")
def hop(node: NodeProcess) -> tuple[str, str, Any]:
    """One request through the chain: (trace id, correlation id, alpha's answer)."""
    request = urllib.request.Request(node.gateway_url + "/alpha/hop")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return (
            response.headers["x-trace-id"],
            response.headers["x-correlation-id"],
            json.loads(response.read()),
        )


def test_one_request_is_one_trace(node: NodeProcess, hop: tuple[str, str, Any]) -> None:
    trace_id, correlation_id, body = hop
    # every hop saw the same trace and correlation
    assert body["alpha"] == {"trace_id": trace_id, "correlation_id": correlation_id}
    assert body["relay"]["relay"] == {"trace_id": trace_id, "correlation_id": correlation_id}
    assert body["relay"]["beta"]["beta"] == {"trace_id": trace_id, "correlation_id": correlation_id}

    def trace() -> list[dict[str, Any]] | None:
        code, spans = node.get_json(f"{node.control_url}/api/v2/trace/{trace_id}")
        return spans if code == 200 and len(spans) >= SPANS else None

    spans = wait_until(trace, 20, 0.2, "the whole trace to be stored")
    by_id = {span["id"]: span for span in spans}
    assert len(by_id) == len(spans) == SPANS, spans
    assert all(span["traceId"] == trace_id for span in spans)
    roots = [span for span in spans if not span.get("parentId")]
    assert len(roots) == 1, roots
    assert all(span["parentId"] in by_id for span in spans if span is not roots[0])

    def service(span: dict[str, Any]) -> str:
        return str(span["localEndpoint"]["serviceName"])

    def one(svc: str, kind: str, name: str) -> dict[str, Any]:
        found = [
            s
            for s in spans
            if service(s) == svc and s.get("kind") == kind and s["name"].lower() == name
        ]
        assert len(found) == 1, (svc, kind, name, spans)
        return dict(found[0])

    # the chain, parent by parent (gateway spans are the node's; the others come over OTLP)
    entry = one("gateway", "SERVER", "get /alpha/{proxy+}")
    to_alpha = one("gateway", "CLIENT", "get /alpha/{proxy+}")
    alpha = one("alpha", "SERVER", "get /alpha/hop")
    alpha_out = one("alpha", "CLIENT", "get /relay")
    via_alpha = one("gateway", "SERVER", "get /relay")
    to_relay = one("gateway", "CLIENT", "invoke relay")
    invocation = one("relay", "SERVER", "relay")  # the function runtime's span
    handler = [s for s in spans if service(s) == "relay" and s["name"] == "relay handler"]
    [handler_span] = handler  # sdk.function_span: INTERNAL spans carry no Zipkin kind
    relay_out = one("relay", "CLIENT", "get /beta/end")
    via_relay = one("gateway", "SERVER", "get /beta/{proxy+}")
    to_beta = one("gateway", "CLIENT", "get /beta/{proxy+}")
    beta = one("beta", "SERVER", "get /beta/end")
    chain = [entry, to_alpha, alpha, alpha_out, via_alpha, to_relay, invocation, handler_span]
    chain += [relay_out, via_relay, to_beta, beta]
    assert entry["id"] == roots[0]["id"]
    for parent, child in itertools.pairwise(chain):
        assert child["parentId"] == parent["id"], (parent, child)
    assert {service(s) for s in spans} == {"gateway", "alpha", "relay", "beta"}
    assert alpha["tags"]["correlation.id"] == beta["tags"]["correlation.id"] == correlation_id
    assert alpha_out["remoteEndpoint"]["serviceName"] == "gateway"  # peer.service

    # Dependencies go through the gateway: each service calls the gateway, which calls the next
    # one, so alpha→relay shows as alpha→gateway→relay and relay→beta as relay→gateway→beta
    # (gateway→alpha is the entry request's hop). These are exactly the links of this trace.
    code, links = node.get_json(f"{node.control_url}/api/v2/dependencies")
    assert code == 200
    pairs = {(link["parent"], link["child"]) for link in links}
    assert pairs == {
        ("gateway", "alpha"),
        ("alpha", "gateway"),
        ("gateway", "relay"),
        ("relay", "gateway"),
        ("gateway", "beta"),
    }, links


def search(node: NodeProcess, **query: str) -> list[dict[str, Any]]:
    url = f"{node.control_url}/_stackyard/logs/search?{urllib.parse.urlencode(query)}"
    code, records = node.get_json(url)
    assert code == 200
    return list(records)


def test_every_log_line_is_found_by_trace_and_by_correlation(
    node: NodeProcess, hop: tuple[str, str, Any]
) -> None:
    trace_id, correlation_id, _ = hop
    expected = {
        ("alpha", "alpha handling /alpha/hop"),
        ("alpha", "alpha answering"),
        ("relay", "relay calling beta"),
        ("relay", "relay got beta's answer"),
        ("beta", "beta handling /beta/end"),
        ("beta", "beta answering"),
    }

    def found(**query: str) -> list[dict[str, Any]] | None:
        records = search(node, **query, limit="100")
        got = {(r["service"], r["message"]) for r in records}
        return records if expected <= got else None

    by_trace = wait_until(lambda: found(trace_id=trace_id), 20, 0.2, "log lines by trace id")
    by_correlation = wait_until(
        lambda: found(correlation_id=correlation_id), 20, 0.2, "log lines by correlation id"
    )
    for records in (by_trace, by_correlation):
        for record in records:
            assert record["trace_id"] == trace_id and record["correlation_id"] == correlation_id
            assert record["level"] == "info" and record["span_id"]


def test_discovery_finds_the_passing_instances(node: NodeProcess) -> None:
    discovery = sdk.Discovery(node.control_url)
    [endpoint] = discovery.endpoints("alpha")
    assert discovery.url("alpha") == discovery.url("alpha") == endpoint.url
    with urllib.request.urlopen(endpoint.url + "/health", timeout=5) as response:
        assert json.loads(response.read()) == {"ok": True}
    assert discovery.endpoints("nothing-by-that-name") == []
