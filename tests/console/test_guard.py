"""A node listening beyond loopback asks for its token on the console and the admin API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.testing import NodeProcess

STACK = """\
name: guarded
services:
  hello:
    command: python3 -m http.server $PORT --bind 127.0.0.1
    health: {http: /, interval: 200ms}
api:
  routes:
    - {path: "/{proxy+}", service: hello}
"""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def call(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("guarded")
    (root / "stackyard.yml").write_text(STACK)
    with NodeProcess(root, data_dir=root / "data", extra_args=("--host", "0.0.0.0")) as running:
        running.wait_ready(60)  # the health endpoint stays open for probes
        yield running


def token_of(node: NodeProcess) -> str:
    return (Path(node.data_dir) / "console-token").read_text().strip()


def test_console_and_admin_api_refuse_callers_without_the_token(node: NodeProcess) -> None:
    for path in ("/_console/", "/_stackyard/status", "/_stackyard/api/keys"):
        status, headers, body = call(node.control_url + path)
        assert status == 401, path
        assert json.loads(body)["error"]["code"] == "Unauthorized"
        assert headers["www-authenticate"] == "Bearer"
    wrong = {"authorization": "Bearer not-the-token"}
    assert call(node.control_url + "/_console/", wrong)[0] == 401
    assert "?token=" in node.output()  # `stackyard up` printed the console URL with it


def test_the_token_opens_them(node: NodeProcess) -> None:
    bearer = {"authorization": f"Bearer {token_of(node)}"}
    assert call(node.control_url + "/_stackyard/status", bearer)[0] == 200
    assert call(node.control_url + "/_console/", bearer)[0] == 200


def test_a_console_link_with_the_token_sets_a_cookie(node: NodeProcess) -> None:
    status, headers, _ = call(f"{node.control_url}/_console/?token={token_of(node)}")
    assert status == 303 and headers["location"] == "/_console/"
    cookie = headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in headers["set-cookie"]
    assert call(node.control_url + "/_console/", {"cookie": cookie})[0] == 200
    assert call(f"{node.control_url}/_console/?token=wrong")[0] == 401


def test_the_aws_and_gateway_apis_stay_open(node: NodeProcess) -> None:
    assert call(node.control_url + "/v1/catalog/services")[0] == 200
    assert call(node.gateway_url + "/stackyard.yml")[0] == 200
