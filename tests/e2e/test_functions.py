"""A serverless.yml app through a real node: proxy events 1.0 and 2.0, errors, boto3, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from stackyard.testing import NodeProcess

APP = Path(__file__).resolve().parent / "apps" / "lambda"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("lambda") / "data"
    with NodeProcess(APP, data_dir=data_dir) as running:
        running.wait_ready(60)
        yield running


def call(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, list[str]], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as response:
            return response.status, _headers(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _headers(exc.headers), exc.read()


def _headers(message: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in message.items():
        out.setdefault(name.lower(), []).append(value)
    return out


def test_rest_event_payload_1_0_under_the_stage(node: NodeProcess) -> None:
    status, headers, body = call(
        f"{node.gateway_url}/test/echo/a/b%20c?x=1&x=2&y=3",
        "POST",
        b'{"k": "v"}',
        {"content-type": "application/json", "X-Custom": "one"},
    )
    assert status == 200, body
    assert headers["x-stage-seen"] == ["test"]
    event = json.loads(body)["event"]
    assert event["resource"] == "/echo/{proxy+}"
    assert event["path"] == "/echo/a/b%20c" or event["path"] == "/echo/a/b c"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"proxy": "a/b c"}
    assert event["queryStringParameters"] == {"x": "2", "y": "3"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["3"]}
    assert event["headers"]["X-Custom"] == "one"
    assert event["multiValueHeaders"]["X-Custom"] == ["one"]
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False
    assert event["stageVariables"] is None
    ctx = event["requestContext"]
    assert ctx["stage"] == "test" and ctx["resourcePath"] == "/echo/{proxy+}"
    assert ctx["httpMethod"] == "POST" and ctx["path"].startswith("/test/echo/")
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"


def test_http_api_event_payload_2_0(node: NodeProcess) -> None:
    status, _, body = call(
        f"{node.gateway_url}/v2/echo/z?x=1&x=2",
        "PUT",
        b"plain text",
        {"content-type": "text/plain", "Cookie": "s=1; t=2", "X-Dup": "a"},
    )
    assert status == 200, body
    event = json.loads(body)["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /v2/echo/{proxy+}"
    assert event["rawPath"] == "/v2/echo/z" and event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-dup"] == "a" and "cookie" not in event["headers"]
    assert "multiValueHeaders" not in event
    assert event["requestContext"]["http"]["method"] == "PUT"
    assert event["requestContext"]["stage"] == "$default"
    assert event["body"] == "plain text" and event["isBase64Encoded"] is False


def test_http_api_response_inference_cookies_and_binary(node: NodeProcess) -> None:
    status, headers, body = call(f"{node.gateway_url}/v2/infer?q=1")
    assert status == 200 and headers["content-type"] == ["application/json"]
    assert json.loads(body) == {"inferred": True, "query": {"q": "1"}}

    status, headers, body = call(f"{node.gateway_url}/v2/cookies", headers={"Cookie": "c=3"})
    assert status == 201 and body == b"ok"
    assert sorted(headers["set-cookie"]) == ["a=1; Path=/", "b=2"]
    assert headers["x-got-cookies"] == ["c=3"]

    payload = bytes(range(256))
    status, headers, body = call(
        f"{node.gateway_url}/v2/binary",
        "POST",
        payload,
        {"content-type": "application/octet-stream"},
    )
    assert status == 200 and body == payload[::-1]


@pytest.mark.parametrize("path", ["/test/boom", "/v2/boom", "/test/malformed"])
def test_function_errors_answer_502_at_once(node: NodeProcess, path: str) -> None:
    started = time.monotonic()
    status, _, body = call(f"{node.gateway_url}{path}")
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert time.monotonic() - started < 3  # the handler's error, not its 5 s timeout


def test_boto3_invoke_and_function_error(node: NodeProcess) -> None:
    client = boto3.client(
        "lambda",
        endpoint_url=node.control_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    names = {f["FunctionName"] for f in client.list_functions()["Functions"]}
    assert {"echo", "boom", "infer"} <= names
    result = client.invoke(FunctionName="infer", Payload=b'{"queryStringParameters": {"a": "b"}}')
    assert result["StatusCode"] == 200
    assert json.loads(result["Payload"].read()) == {"inferred": True, "query": {"a": "b"}}
    started = time.monotonic()
    result = client.invoke(FunctionName="boom", Payload=b"{}", LogType="Tail")
    assert time.monotonic() - started < 3
    assert result["FunctionError"] == "Unhandled"
    error = json.loads(result["Payload"].read())
    assert error["errorType"] == "BoomError" and error["errorMessage"] == "it went boom"
    assert result["LogResult"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="nosuch", Payload=b"{}")


def test_cli_invoke(node: NodeProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stackyard", "invoke", "infer", "--data", "{}",
         "--url", node.control_url],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"inferred": True, "query": None}


@pytest.mark.parametrize("path", ["/v2/infer", "/test/boom"])
def test_cors_preflight_and_headers(node: NodeProcess, path: str) -> None:
    status, headers, body = call(
        f"{node.gateway_url}{path}",
        "OPTIONS",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == ["*"]
    assert headers["access-control-allow-methods"] == ["GET"]
    status, headers, _ = call(f"{node.gateway_url}{path}", headers={"Origin": "https://a.example"})
    assert headers["access-control-allow-origin"] == ["*"]


def test_failed_async_invocation_becomes_a_dead_letter_and_can_be_redriven(
    node: NodeProcess, tmp_path: Path
) -> None:
    client = boto3.client(
        "lambda", endpoint_url=node.control_url, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip
    ok_file, done_file = tmp_path / "ok", tmp_path / "done"
    event = {"ok_file": str(ok_file), "done_file": str(done_file)}
    result = client.invoke(
        FunctionName="flaky", InvocationType="Event", Payload=json.dumps(event).encode()
    )
    assert result["StatusCode"] == 202

    def letters() -> list[dict[str, Any]]:
        url = f"{node.control_url}/_stackyard/functions/dead-letters?function=flaky"
        return list(node.get_json(url)[1]["dead_letters"])

    from stackyard.testing import wait_until

    [letter] = wait_until(letters, 15, what="the dead letter")
    assert letter["attempts"] == 1 and "not yet" in letter["error"]
    listed = subprocess.run(
        [sys.executable, "-m", "stackyard", "dead-letters", "flaky", "--url", node.control_url],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert letter["id"] in listed

    ok_file.write_text("go")
    subprocess.run(
        [sys.executable, "-m", "stackyard", "dead-letters", "--redrive", letter["id"],
         "--url", node.control_url],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    wait_until(done_file.exists, 15, what="the redriven event to be delivered")
    assert letters() == []


def test_function_events_carry_the_gateways_correlation_id(node: NodeProcess) -> None:
    status, headers, body = call(f"{node.gateway_url}/v2/echo/c")
    assert status == 200
    event = json.loads(body)["event"]
    assert event["headers"]["x-correlation-id"] == headers["x-correlation-id"][0]
    assert event["headers"]["x-correlation-counter"] == "1"
