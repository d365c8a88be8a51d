"""A real node serving an API imported from OpenAPI (tests/e2e/apps/openapi): requests reach the
service, the function and the mocks with the document's keys, authorizers, CORS and validation;
the live API is exported on the gateway (``/_docs/openapi.json``, with Swagger UI at ``/_docs``)
and on the control port, and schemathesis run against the export finds no 5xx."""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from jwt.algorithms import RSAAlgorithm
from schemathesis.checks import not_a_server_error

from stackyard.testing import NodeProcess

APP = Path(__file__).resolve().parent / "apps" / "openapi"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, signing_key: rsa.RSAPrivateKey
) -> Iterator[NodeProcess]:
    base = tmp_path_factory.mktemp("openapi")
    app = base / "app"
    shutil.copytree(APP, app)
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update({"kid": "test", "use": "sig", "alg": "RS256"})
    (app / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    with NodeProcess(app, data_dir=base / "data", env={"PYTHON": sys.executable}) as running:
        running.wait_ready(60)
        yield running


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_routes_reach_the_service(node: NodeProcess) -> None:
    status, _, body = call(node.gateway_url + "/items?lang=en")
    assert status == 200
    assert json.loads(body) == {
        "service": "items", "method": "GET", "path": "/items?lang=en", "body": ""
    }  # fmt: skip
    # uri http://items/{path} with path ← proxy: the /api prefix is stripped
    status, _, body = call(node.gateway_url + "/api/deep/er?x=1", method="DELETE")
    assert status == 200
    assert json.loads(body)["path"] == "/deep/er?x=1"
    assert json.loads(body)["method"] == "DELETE"


def test_request_validation_from_the_document(node: NodeProcess) -> None:
    status, _, body = call(node.gateway_url + "/items", "POST", body={"name": "tea", "price": None})
    assert status == 200
    assert json.loads(json.loads(body)["body"]) == {"name": "tea", "price": None}
    status, _, body = call(node.gateway_url + "/items", "POST", body={"price": 2})
    assert status == 400
    assert json.loads(body)["error"]["code"] == "BadRequestBody"
    status, _, body = call(node.gateway_url + "/search?q=x")
    assert status == 400
    assert json.loads(body)["error"]["details"][0]["path"] == "header.x-trace"
    assert call(node.gateway_url + "/search?q=x", headers={"x-trace": "1"})[0] == 200


def test_routes_reach_the_function(node: NodeProcess) -> None:
    for path, method, version in (
        ("/hello", "GET", "2.0"),
        ("/hello/plain", "GET", "2.0"),
        ("/hello/v1", "POST", None),  # payload 1.0 (REST): no version field
    ):
        status, _, body = call(node.gateway_url + path, method)
        assert status == 200, (path, body)
        answer = json.loads(body)
        assert answer["function"] == "hello"
        assert answer["path"] == path
        assert answer["version"] == version


def test_mock_answers(node: NodeProcess) -> None:
    status, headers, body = call(node.gateway_url + "/status")
    assert (status, headers["x-mock"], json.loads(body)) == (200, "yes", {"ok": True})
    assert headers["content-type"] == "application/json"
    status, headers, body = call(node.gateway_url + "/teapot")
    assert (status, body) == (418, b"I am a teapot")
    assert headers["content-type"].startswith("text/plain")
    assert call(node.gateway_url + "/native")[0] == 200  # the stack's own route


def test_document_security(node: NodeProcess, signing_key: rsa.RSAPrivateKey) -> None:
    status, _, body = call(node.gateway_url + "/items/7")
    assert status == 403  # api_key scheme
    assert call(node.gateway_url + "/secure")[0] == 401  # request authorizer
    assert call(node.gateway_url + "/secure", headers={"x-token": "nope"})[0] == 403
    status, _, body = call(node.gateway_url + "/secure", headers={"x-token": "letmein"})
    assert status == 200
    assert json.loads(body)["authorizer"]["lambda"] == {"user": "tester"}
    now = int(time.time())
    claims = {"iss": "https://issuer.example", "aud": "shop", "sub": "u1", "iat": now}
    good = jwt.encode(
        {**claims, "exp": now + 60, "scope": "profile"}, signing_key, "RS256", {"kid": "test"}
    )
    unscoped = jwt.encode({**claims, "exp": now + 60}, signing_key, "RS256", {"kid": "test"})
    assert call(node.gateway_url + "/me")[0] == 401
    assert call(node.gateway_url + "/me", headers={"authorization": f"Bearer {unscoped}"})[0] == 403
    status, _, body = call(node.gateway_url + "/me", headers={"authorization": f"Bearer {good}"})
    assert status == 200
    assert json.loads(body)["authorizer"]["jwt"]["claims"]["sub"] == "u1"


def test_cors_from_the_document(node: NodeProcess) -> None:
    status, headers, _ = call(
        node.gateway_url + "/items/7",
        "OPTIONS",
        headers={"origin": "https://app.example", "access-control-request-method": "GET"},
    )
    assert status == 204  # answered before the key check
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-max-age"] == "600"


def test_exported_on_gateway_and_control_port(node: NodeProcess) -> None:
    status, headers, body = call(node.gateway_url + "/_docs/openapi.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["openapi"] == "3.0.3"
    assert document["paths"]["/hello"]["get"]["x-amazon-apigateway-integration"]["type"] == (
        "aws_proxy"
    )
    assert document["paths"]["/items/{id}"]["get"]["security"] == [{"api_key": []}]
    status, _, control = call(node.control_url + "/_stackyard/api/openapi.json")
    assert status == 200
    assert json.loads(control) == document


def test_docs_page_and_assets(node: NodeProcess) -> None:
    status, headers, body = call(node.gateway_url + "/_docs")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"/_docs/swagger-ui-bundle.js" in body
    assert b"https://" not in body  # nothing from a CDN
    status, headers, body = call(node.gateway_url + "/_docs/swagger-ui-bundle.js")
    assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert b"SwaggerUIBundle" in body
    status, headers, _ = call(node.gateway_url + "/_docs/swagger-ui.css")
    assert (status, headers["content-type"]) == (200, "text/css; charset=utf-8")
    status, headers, body = call(node.gateway_url + "/_docs/init.js")
    assert b"/_docs/openapi.json" in body
    assert call(node.gateway_url + "/_docs/nothing-here")[0] == 404


def test_schemathesis_finds_no_server_error(node: NodeProcess) -> None:
    schema = schemathesis.openapi.from_url(node.gateway_url + "/_docs/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11  # x-amazon-apigateway-any-method is no OpenAPI operation
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_5xx(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=node.gateway_url, checks=[not_a_server_error], timeout=20
            )
            statuses.append(response.status_code)

        no_5xx()
    assert len(statuses) >= 100
    assert {200, 400, 401, 403} <= set(statuses)  # reached integrations and policies
