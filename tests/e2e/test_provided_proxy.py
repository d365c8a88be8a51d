"""A ``provided`` runtime (a shell script speaking the HTTP Runtime API) behind gateway routes:
it gets the proxy event as JSON, and the gateway maps its result as for any function."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.testing import NodeProcess

SHELL = Path(__file__).resolve().parents[1] / "functions" / "app" / "shellfn"
STACK = """
name: provided-proxy
functions:
  shell:
    handler: shellfn/echo.handler
    runtime: provided
    events:
      - httpApi: "GET /shell/{name}"
      - http: {path: "rest/{name}", method: get}
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("provided")
    shutil.copytree(SHELL, root / "shellfn")
    (root / "stackyard.yml").write_text(STACK)
    with NodeProcess(root, data_dir=root / "data") as running:
        running.wait_ready(60)
        yield running


def _get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=15) as response:
        return response.status, json.loads(response.read())


def test_http_api_route_sends_the_v2_event_as_json(node: NodeProcess) -> None:
    status, body = _get(f"{node.gateway_url}/shell/ada?x=1")
    assert status == 200  # no statusCode: payload 2.0 infers 200 and the value as JSON
    assert body["shell"] is True
    event = body["event"]
    assert isinstance(event, dict)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /shell/{name}"
    assert event["pathParameters"] == {"name": "ada"}
    assert event["queryStringParameters"] == {"x": "1"}


def test_rest_route_sends_the_v1_event_as_json_and_maps_the_result(node: NodeProcess) -> None:
    request = urllib.request.Request(f"{node.gateway_url}/dev/rest/bob")
    with pytest.raises(urllib.error.HTTPError) as failed:  # 1.0 needs a statusCode: 502
        urllib.request.urlopen(request, timeout=15)
    assert failed.value.code == 502
    assert json.loads(failed.value.read()) == {"message": "Internal server error"}
