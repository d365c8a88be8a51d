"""The live API as OpenAPI 3.0 (``/_docs/openapi.json``), the round trip export → import, and
the Swagger UI pages on ``/_docs`` (answered only when no route claims the path)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from stackyard.config import load_stack
from stackyard.config.api import ApiConfig, MockConfig, RouteConfig
from stackyard.gateway import RouteSpec
from stackyard.gateway.openapi import export_openapi
from stackyard.gateway.table import RouteTable
from stackyard.routes import api_route, cors_policy

from .conftest import make_table


def specs(api: ApiConfig) -> list[RouteSpec]:
    cors = cors_policy(api.cors)
    return [api_route(route, "dev", cors) for route in api.routes]


def without_descriptions(routes: list[RouteConfig]) -> list[RouteConfig]:
    return [route.model_copy(update={"description": ""}) for route in routes]


async def test_export_then_import_gives_the_same_api(
    make_backend, serve, tmp_path: Path, openapi_app: Path, openapi_stack: str
) -> None:
    api = load_stack(openapi_app, {}).config.api
    items = await make_backend("items")
    served = await serve(api=api, root=openapi_app)
    served.gateway.update(make_table(3, specs(api), {"items": [items]}))
    status, headers, body = await served.request("GET", "/_docs/openapi.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["info"]["version"] == "3"
    (tmp_path / "exported.json").write_text(json.dumps(document))
    stack = openapi_stack.replace("openapi.yaml", "exported.json")
    (tmp_path / "stackyard.yml").write_text(stack)
    again = load_stack(tmp_path, {})
    assert again.warnings == ()
    assert without_descriptions(again.config.api.routes) == without_descriptions(api.routes)
    assert again.config.api.authorizers == api.authorizers
    assert again.config.api.cors == api.cors
    assert again.config.api.gzip == api.gzip
    assert again.config.api.key_source == api.key_source


def test_document_shape(openapi_app: Path) -> None:
    api = load_stack(openapi_app, {}).config.api
    document = export_openapi(RouteTable(1, tuple(specs(api))), api, root=openapi_app)
    paths = document["paths"]
    assert document["openapi"] == "3.0.3"
    proxy = paths["/api/{proxy+}"]["x-amazon-apigateway-any-method"]
    assert proxy["parameters"] == [
        {"name": "proxy", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert proxy["x-amazon-apigateway-integration"] == {
        "type": "http_proxy",
        "httpMethod": "ANY",
        "uri": "http://items/{proxy}",
        "timeoutInMillis": 29000,
        "requestParameters": {"integration.request.path.proxy": "method.request.path.proxy"},
    }
    create = paths["/items"]["post"]
    assert create["x-amazon-apigateway-request-validator"] == "body"
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["price"] == {"type": "number", "nullable": True}  # OpenAPI 3.0
    hello = paths["/hello"]["get"]["x-amazon-apigateway-integration"]
    assert hello["uri"].endswith(":function:hello/invocations")
    assert hello["payloadFormatVersion"] == "2.0"
    assert paths["/me"]["get"]["security"] == [{"users": ["profile"]}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    assert schemes["users"]["type"] == "http"
    assert schemes["tokens"]["x-amazon-apigateway-authorizer"]["identitySource"] == (
        "$request.header.x-token"
    )
    assert "secret" not in json.dumps(document)
    assert paths["/teapot"]["get"]["x-amazon-apigateway-integration"]["responses"] == {
        "default": {"statusCode": "418", "responseTemplates": {"text/plain": "I am a teapot"}}
    }
    assert document["x-amazon-apigateway-request-validators"] == {
        "body": {"validateRequestBody": True, "validateRequestParameters": False},
        "params": {"validateRequestBody": False, "validateRequestParameters": True},
    }


def test_secrets_stay_out_and_schema_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "item.yaml").write_text(yaml.safe_dump({"type": "object", "required": ["a"]}))
    api = ApiConfig.model_validate(
        {
            "authorizers": {"hs": {"type": "jwt", "secret": "do-not-leak", "issuer": "me"}},
            "routes": [
                {
                    "path": "/v1/{id}",
                    "service": "s",
                    "authorizer": "hs",
                    "transform": {"request": {"path": "/items/{id}"}},
                    "validate": {"body": "item.yaml", "query": ["q"]},
                },
                {"path": "/m", "mock": {"status": 201, "body": "hi", "headers": {"X-A": "1"}}},
            ],
        }
    )
    document = export_openapi(RouteTable(1, tuple(specs(api))), api, root=tmp_path)
    assert "do-not-leak" not in json.dumps(document)
    op = document["paths"]["/v1/{id}"]["x-amazon-apigateway-any-method"]
    assert op["x-amazon-apigateway-integration"]["uri"] == "http://s/items/{id}"
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "required": ["a"],
    }
    assert {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}} in op[
        "parameters"
    ]
    mock = document["paths"]["/m"]["x-amazon-apigateway-any-method"]
    assert mock["x-amazon-apigateway-integration"]["responses"]["default"] == {
        "statusCode": "201",
        "responseTemplates": {"text/plain": "hi"},
        "responseParameters": {"method.response.header.x-a": "'1'"},
    }


async def test_docs_page_and_assets(serve) -> None:
    served = await serve()
    status, headers, body = await served.request("GET", "/_docs")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b'src="/_docs/swagger-ui-bundle.js"' in body
    for path, content_type, marker in (
        ("/_docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8", b"SwaggerUIBundle"),
        ("/_docs/swagger-ui.css", "text/css; charset=utf-8", b".swagger-ui"),
        ("/_docs/init.js", "text/javascript; charset=utf-8", b"/_docs/openapi.json"),
        ("/_docs/NOTICE", "text/plain; charset=utf-8", b"swagger-ui-dist"),
        ("/_docs/LICENSE", "text/plain; charset=utf-8", b"Apache License"),
    ):
        status, headers, body = await served.request("GET", path)
        assert (status, headers["content-type"]) == (200, content_type), path
        assert marker in body, path
        assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = await served.request("HEAD", "/_docs/swagger-ui.css")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) > 100_000
    status, headers, body = await served.request("POST", "/_docs")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert json.loads(body)["error"]["code"] == "MethodNotAllowed"
    status, _, body = await served.request("GET", "/_docs/other.js")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "NotFound"


async def test_user_routes_win_over_docs(serve) -> None:
    served = await serve()
    mine = RouteSpec(path="/_docs/{proxy+}", integration="mock", mock=MockConfig(body="mine"))
    served.gateway.update(make_table(1, [mine], {}))
    assert (await served.request("GET", "/_docs/openapi.json"))[2] == b"mine"
    assert (await served.request("POST", "/_docs/x"))[2] == b"mine"
    status, _, body = await served.request("GET", "/_docs")  # not claimed by that route
    assert status == 200 and b"swagger-ui" in body
    catch_all = RouteSpec(path="/{proxy+}", methods=frozenset({"GET"}), integration="mock")
    served.gateway.update(make_table(2, [catch_all], {}))
    assert (await served.request("GET", "/_docs"))[2] == b""
    status, _, _ = await served.request("DELETE", "/_docs")  # claimed for another method
    assert status == 405


async def test_document_follows_table_swaps(serve) -> None:
    served = await serve()
    status, document = await served.json("GET", "/_docs/openapi.json")
    assert (status, document["paths"]) == (200, {})
    route = RouteSpec(path="/new", integration="mock", methods=frozenset({"GET"}))
    served.gateway.update(make_table(7, [route], {}))
    status, document = await served.json("GET", "/_docs/openapi.json")
    assert list(document["paths"]) == ["/new"]
    assert document["info"]["version"] == "7"
    served.gateway.configure(ApiConfig(key_source="authorizer"))
    _, document = await served.json("GET", "/_docs/openapi.json")
    assert document["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
