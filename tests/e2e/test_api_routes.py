"""``api.routes`` integrations other than a service: functions (payload 1.0 and 2.0) and mock
answers, with the stage's variables passed to functions — on a real node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stackyard.testing import NodeProcess, wait_until

APP = Path(__file__).parent / "apps" / "api_routes"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("api-routes") / "data"
    with NodeProcess(APP, data_dir=data_dir, extra_args=("--stage", "live")) as running:
        running.wait_ready(60)
        yield running


def test_function_route_gets_a_v2_event_with_stage_variables(node: NodeProcess) -> None:
    response = httpx.post(f"{node.gateway_url}/v2/things/42?x=1", content=b"hi", timeout=10)
    assert response.status_code == 200
    event = response.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v2/things/{id}"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["stageVariables"] == {"backend": "blue", "level": "3"}
    assert event["body"] == "hi"


def test_function_route_gets_a_v1_event(node: NodeProcess) -> None:
    response = httpx.get(f"{node.gateway_url}/v1/things/7", timeout=10)
    assert response.status_code == 200
    event = response.json()
    assert event["httpMethod"] == "GET"
    assert event["resource"] == "/v1/things/{id}"
    assert event["pathParameters"] == {"id": "7"}
    assert event["requestContext"]["stage"] == "live"
    assert event["stageVariables"] == {"backend": "blue", "level": "3"}


def test_function_route_keeps_its_methods(node: NodeProcess) -> None:
    response = httpx.delete(f"{node.gateway_url}/v2/things/42", timeout=10)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "MethodNotAllowed"


def test_mock_answers_json(node: NodeProcess) -> None:
    response = httpx.get(f"{node.gateway_url}/status", timeout=10)
    assert response.status_code == 202
    assert response.headers["x-mocked"] == "yes"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True}
    assert "x-correlation-id" in response.headers


def test_mock_answers_text_and_head_has_no_body(node: NodeProcess) -> None:
    response = httpx.post(f"{node.gateway_url}/teapot", timeout=10)
    assert (response.status_code, response.text) == (418, "short and stout")
    head = httpx.head(f"{node.gateway_url}/teapot", timeout=10)
    assert head.status_code == 418
    assert head.content == b""
    assert head.headers["content-length"] == str(len("short and stout"))


def test_every_answer_is_in_the_access_log(node: NodeProcess) -> None:
    correlation = "access-log-test-1"
    headers = {"x-correlation-id": correlation, "user-agent": "access-test/1"}
    response = httpx.get(f"{node.gateway_url}/v1/things/9?q=1", headers=headers, timeout=10)
    assert response.status_code == 200
    httpx.get(f"{node.gateway_url}/nowhere", headers={"x-correlation-id": "lost-1"}, timeout=10)

    status, records = node.get_json(
        f"{node.control_url}/_stackyard/api/requests?correlation_id={correlation}"
    )
    assert status == 200 and len(records) == 1
    record = records[0]
    assert record["method"] == "GET" and record["path"] == "/v1/things/9"
    assert record["query"] == "q=1" and record["route"] == "/v1/things/{id}"
    assert record["status"] == 200 and record["bytes"] == len(response.content)
    assert record["integration"] == "function:echo" and record["user_agent"] == "access-test/1"
    assert record["duration_ms"] > 0 and record["trace_id"] == response.headers["x-trace-id"]

    status, missing = node.get_json(f"{node.control_url}/_stackyard/api/requests?status=404")
    assert status == 200 and missing[0]["correlation_id"] == "lost-1"
    assert missing[0]["route"] is None and missing[0]["integration"] is None
    assert node.get_json(f"{node.control_url}/_stackyard/api/requests?limit=x")[0] == 400

    # the same lines in the file and, by correlation id, in the central logs
    log_file = node.data_dir / "logs" / "gateway-access.log"
    wait_until(lambda: log_file.exists() and correlation in log_file.read_text(), timeout=10)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["status"] for r in lines if r["correlation_id"] == correlation] == [200]

    def central() -> list[dict[str, object]]:
        url = f"{node.control_url}/_stackyard/logs/search?correlation_id={correlation}"
        found: list[dict[str, object]] = node.get_json(url)[1]
        return [record for record in found if record.get("service") == "gateway"]

    wait_until(lambda: bool(central()), timeout=10)
    assert "GET /v1/things/9 200" in str(central()[0]["message"])


def test_a_stage_with_a_path_is_served_under_it(node: NodeProcess) -> None:
    response = httpx.get(f"{node.gateway_url}/prod/v2/things/5", timeout=10)
    assert response.status_code == 200
    event = response.json()
    assert event["stageVariables"] == {"backend": "green"}
    assert event["requestContext"]["stage"] == "prod"
    assert event["pathParameters"] == {"id": "5"}

    rest = httpx.get(f"{node.gateway_url}/prod/v1/things/6", timeout=10).json()
    assert rest["path"] == "/v1/things/6"  # the stage's path is not part of a REST event's path
    assert rest["requestContext"]["path"] == "/prod/v1/things/6"
    assert rest["requestContext"]["stage"] == "prod"
    assert httpx.get(f"{node.gateway_url}/prod/status", timeout=10).json() == {"ok": True}
    # the node's own stage stays at the root
    root = httpx.get(f"{node.gateway_url}/v2/things/5", timeout=10).json()
    assert root["stageVariables"]["backend"] == "blue"


def test_a_stage_with_a_host_answers_only_that_host(node: NodeProcess) -> None:
    url = f"{node.gateway_url}/v2/things/1"
    beta = httpx.get(url, headers={"host": "Beta.localhost:8080"}, timeout=10).json()
    assert beta["stageVariables"] == {"backend": "red"}
    assert beta["requestContext"]["stage"] == "beta"
    other = httpx.get(url, headers={"host": "gamma.localhost"}, timeout=10).json()
    assert other["stageVariables"]["backend"] == "blue"
