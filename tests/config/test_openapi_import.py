"""``api.openapi``: OpenAPI 3 and Swagger 2 documents with the ``x-amazon-apigateway-*``
extensions become routes, authorizers and API settings; bad documents give located problems."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.config import ConfigError, load_stack
from stackyard.config.api import (
    CorsConfig,
    FunctionAuthorizerConfig,
    JwtAuthorizerConfig,
    MockConfig,
    RouteConfig,
    ValidationConfig,
)
from stackyard.config.openapi import import_document
from stackyard.config.openapi_doc import OpenApiDocument
from stackyard.config.openapi_integrations import function_name


def invocations(text: str) -> str:
    """``INVOCATION(arn)`` → the API Gateway invocation ARN of the Lambda ``arn``."""
    return re.sub(
        r"INVOCATION\((arn:aws:lambda:([^:]+):[^)]+)\)",
        r"arn:aws:apigateway:\2:lambda:path/2015-03-31/functions/\1/invocations",
        text,
    )


def write(tmp_path: Path, document: str | dict[str, Any], stack: str) -> Path:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    name = "openapi.json" if isinstance(document, dict) else "openapi.yaml"
    (tmp_path / name).write_text(
        invocations(text) if name.endswith("yaml") else json.dumps(document)
    )
    (tmp_path / "stackyard.yml").write_text(stack.replace("openapi.yaml", name))
    return tmp_path


def problems(tmp_path: Path, document: str, stack: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack(write(tmp_path, textwrap.dedent(document), stack), {})
    return [str(p) for p in caught.value.problems]


def route(path: str, **fields: Any) -> RouteConfig:
    return RouteConfig.model_validate({"path": path, **fields})


def test_openapi3_document_with_every_extension(openapi_app: Path) -> None:
    stack = load_stack(openapi_app, {})
    api = stack.config.api
    assert api.key_source == "header"
    assert api.cors == CorsConfig(
        origins=["https://app.example"],
        methods=["GET", "POST"],
        headers=["content-type", "x-api-key", "x-token"],
        max_age=600,
    )
    assert api.gzip is not None and api.gzip.min_size == 2048
    assert api.authorizers == {
        "tokens": FunctionAuthorizerConfig(
            type="function",
            function="authorize",
            identity_source=["header.x-token"],
            ttl=0,
            response="simple",
            payload_version="2.0",
        ),
        "users": JwtAuthorizerConfig(
            type="jwt",
            issuer="https://issuer.example",
            audience=["shop"],
            jwks="jwks.json",
            identity_source="header.authorization",
        ),
    }
    new_item = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "price": {"type": ["number", "null"]},
        },
    }
    assert api.routes == [
        route("/native", mock={"body": {"native": True}}),  # the stack's own route comes first
        route("/items", methods=["GET"], service="items", description="List items"),
        route(
            "/items",
            methods=["POST"],
            service="items",
            validate=ValidationConfig(body=new_item),
            description="Create an item",
        ),
        route("/items/{id}", methods=["GET"], service="items", timeout=5, api_key=True),
        route("/api/{proxy+}", service="items", strip_prefix="/api"),
        route("/hello", methods=["GET"], function="hello", payload_version="2.0"),
        route("/hello/v1", methods=["POST"], function="hello", payload_version="1.0"),
        route("/hello/plain", methods=["GET"], function="hello", payload_version="2.0"),
        route(
            "/status", methods=["GET"], mock={"headers": {"x-mock": "yes"}, "body": {"ok": True}}
        ),
        route("/teapot", methods=["GET"], mock=MockConfig(status=418, body="I am a teapot")),
        route("/secure", methods=["GET"], function="hello", authorizer="tokens"),
        route("/me", methods=["GET"], function="hello", authorizer="users", scopes=["profile"]),
        route(
            "/search",
            methods=["GET"],
            service="items",
            validate=ValidationConfig(query=["q"], headers=["x-trace"]),
        ),
    ]
    assert stack.warnings == (
        "openapi.yaml:7: x-amazon-apigateway-binary-media-types: not supported yet, ignored",
        "openapi.yaml:173: paths./legacy.get: no x-amazon-apigateway-integration: not routed",
    )


SWAGGER = """\
swagger: "2.0"
info: {title: legacy, version: "1"}
basePath: /prod
x-amazon-apigateway-api-key-source: AUTHORIZER
x-amazon-apigateway-request-validator: everything
x-amazon-apigateway-request-validators:
  everything: {validateRequestBody: true, validateRequestParameters: true}
  none: {}
x-amazon-apigateway-gateway-responses: {}
securityDefinitions:
  api_key: {type: apiKey, name: x-api-key, in: header}
  custom:
    type: apiKey
    name: Authorization
    in: header
    x-amazon-apigateway-authtype: custom
    x-amazon-apigateway-authorizer:
      type: request
      authorizerUri: INVOCATION(arn:aws:lambda:eu-west-1:1:function:authorize:live)
      identitySource: method.request.header.Authorization, method.request.querystring.tenant
      authorizerResultTtlInSeconds: 60
      identityValidationExpression: "^Bearer .+$"
  legacy:
    type: apiKey
    name: Authorization
    in: header
    x-amazon-apigateway-authorizer: {type: token, authorizerUri: authorize}
definitions:
  Order:
    type: object
    required: [sku]
    properties:
      sku: {type: string}
      note: {type: string, x-internal: true}
paths:
  /orders:
    post:
      security: [{custom: [], api_key: []}]
      parameters:
        - {in: body, name: order, required: true, schema: {$ref: "#/definitions/Order"}}
        - {in: header, name: x-request-id, required: true, type: string}
        - {in: query, name: dry, required: false, type: boolean}
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: ${orders.Arn}
        timeoutInMillis: 10000
  /{proxy+}:
    x-amazon-apigateway-any-method:
      x-amazon-apigateway-request-validator: none
      x-amazon-apigateway-integration:
        type: http_proxy
        uri: http://items:8080/v2/{proxy}
        requestParameters:
          integration.request.path.proxy: method.request.path.proxy
          integration.request.header.x-from: "'gateway'"
        cacheKeyParameters: [method.request.path.proxy]
    options:
      x-amazon-apigateway-request-validator: none
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 204}'}
        responses:
          default:
            statusCode: "204"
            responseParameters:
              method.response.header.Access-Control-Allow-Origin: "'*'"
              method.response.header.X-Dynamic: integration.response.header.x
  /aws:
    get:
      x-amazon-apigateway-integration: {type: aws, uri: "arn:aws:apigateway:...:s3:path/b"}
"""


def test_swagger2_document_with_every_extension(tmp_path: Path, openapi_stack: str) -> None:
    swagger_stack = openapi_stack.replace(
        "hello: {handler: handler.hello}", "orders: {handler: h.orders}"
    )
    (tmp_path / "stackyard.yml").write_text(swagger_stack)
    (tmp_path / "openapi.yaml").write_text(invocations(SWAGGER))
    stack = load_stack(tmp_path, {})
    api = stack.config.api
    assert api.key_source == "authorizer"
    assert api.authorizers == {
        "custom": FunctionAuthorizerConfig(
            type="function",
            function="authorize",
            identity_source=["header.authorization", "query.tenant"],
            ttl=60,
            response="iam",
            payload_version="1.0",
        )
    }
    order = {
        "type": "object",
        "required": ["sku"],
        "properties": {"sku": {"type": "string"}, "note": {"type": "string"}},
    }
    assert api.routes == [
        route(
            "/orders",
            methods=["POST"],
            function="orders",
            payload_version="1.0",
            timeout=10,
            api_key=True,
            authorizer="custom",
            validate=ValidationConfig(body=order, headers=["x-request-id"]),
        ),
        route("/{proxy+}", service="items", transform={"request": {"path": "/v2/{proxy}"}}),
        route(
            "/{proxy+}",
            methods=["OPTIONS"],
            mock=MockConfig(status=204, headers={"access-control-allow-origin": "*"}),
        ),
    ]
    warnings = "\n".join(stack.warnings)
    for ignored in (
        "x-amazon-apigateway-gateway-responses: not supported yet",
        "requestParameters.integration.request.header.x-from: only path parameter mappings",
        "cacheKeyParameters: not supported yet",
        "responseParameters.method.response.header.X-Dynamic: only static 'value' headers",
        "paths./aws.get.x-amazon-apigateway-integration.type: type 'aws' is not supported yet",
        "custom.x-amazon-apigateway-authorizer.identityValidationExpression: not supported yet",
        "legacy.x-amazon-apigateway-authorizer.type: authorizer type 'token' is not supported",
    ):
        assert ignored in warnings


def test_json_document_and_stack_overrides(tmp_path: Path, openapi_stack: str) -> None:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "x-amazon-apigateway-api-key-source": "AUTHORIZER",
        "components": {
            "securitySchemes": {
                "users": {
                    "type": "oauth2",
                    "flows": {},
                    "x-amazon-apigateway-authorizer": {
                        "type": "jwt",
                        "jwtConfiguration": {"issuer": "https://id.example/", "audience": "a"},
                    },
                }
            }
        },
        "paths": {
            "/x": {
                "get": {
                    "security": [{"users": ["x.read"]}],
                    "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": "hello"},
                }
            }
        },
    }
    stack = openapi_stack + (
        "  key_source: header\n"
        "  authorizers:\n"
        "    other: {type: jwt, secret: s3cret}\n"
        "  routes:\n"
        "    - {path: /x, methods: [GET], service: items, authorizer: users}\n"
    )
    config = load_stack(write(tmp_path, document, stack), {}).config.api
    assert config.key_source == "header"  # the stack's setting wins
    users = config.authorizers["users"]
    assert isinstance(users, JwtAuthorizerConfig)
    assert users.jwks == "https://id.example/.well-known/jwks.json"
    assert users.audience == ["a"]
    assert [r.service or r.function for r in config.routes] == ["items", "hello"]
    # a stack-file authorizer of the same name replaces the document's
    stack = stack.replace("other: {type: jwt, secret: s3cret}", "users: {type: jwt, secret: k}")
    config = load_stack(write(tmp_path, document, stack), {}).config.api
    assert config.authorizers["users"] == JwtAuthorizerConfig(type="jwt", secret="k")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                get:
                  x-amazon-apigateway-integration:
                    type: http_proxy
                    uri: https://example.com/a
            """,
            "openapi.yaml:7: paths./a.get.x-amazon-apigateway-integration.uri: host "
            "'example.com' is not a service of this stack",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                post:
                  x-amazon-apigateway-integration:
                    type: aws_proxy
                    uri: INVOCATION(arn:aws:lambda:us-east-1:1:function:nope)
            """,
            "openapi.yaml:7: paths./a.post.x-amazon-apigateway-integration.uri: "
            "no function named 'nope'",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                get:
                  x-amazon-apigateway-integration:
                    type: aws_proxy
                    uri: arn:aws:apigateway:us-east-1:s3:path/bucket
            """,
            "openapi.yaml:7: paths./a.get.x-amazon-apigateway-integration.uri: an aws_proxy "
            "integration needs a uri naming a function",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                get:
                  x-amazon-apigateway-integration: {type: lambda}
            """,
            "openapi.yaml:5: paths./a.get.x-amazon-apigateway-integration.type: "
            "expected http_proxy, aws_proxy or mock",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a/{x+}/b:
                get:
                  x-amazon-apigateway-integration: {type: mock}
            """,
            "openapi.yaml:3: paths./a/{x+}/b: path '/a/{x+}/b': a greedy {name+} parameter "
            "must be the last segment",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                get:
                  x-amazon-apigateway-integration:
                    type: mock
                    timeoutInMillis: -5
            """,
            "openapi.yaml:7: paths./a.get.x-amazon-apigateway-integration.timeoutInMillis: "
            "timeout: duration must not be negative",
        ),
        (
            """\
            openapi: 3.0.0
            components:
              securitySchemes:
                bearer: {type: http, scheme: bearer}
            paths:
              /a:
                get:
                  security:
                    - bearer: []
                  x-amazon-apigateway-integration: {type: mock}
            """,
            "openapi.yaml:9: paths./a.get.security.0.bearer: type 'http' has no "
            "x-amazon-apigateway-authorizer; Stackyard cannot enforce it",
        ),
        (
            """\
            openapi: 3.0.0
            components:
              securitySchemes:
                key: {type: apiKey, in: header, name: x-api-key}
            security: [{key: []}, {}]
            paths:
              /a:
                get:
                  x-amazon-apigateway-integration: {type: mock}
            """,
            "openapi.yaml:5: security: alternative security requirements are not supported",
        ),
        (
            """\
            openapi: 3.0.0
            components:
              securitySchemes:
                legacy:
                  type: apiKey
                  in: header
                  name: Authorization
                  x-amazon-apigateway-authorizer: {type: token, authorizerUri: hello}
            paths:
              /a:
                get:
                  security: [{legacy: []}]
                  x-amazon-apigateway-integration: {type: mock}
            """,
            "openapi.yaml:12: paths./a.get.security.0.legacy: authorizer type 'token' is not "
            "supported (jwt, request); Stackyard cannot enforce it",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                get:
                  security: [{missing: []}]
                  x-amazon-apigateway-integration: {type: mock}
            """,
            "openapi.yaml:5: paths./a.get.security.0.missing: no security scheme named 'missing'",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                get:
                  x-amazon-apigateway-request-validator: strict
                  x-amazon-apigateway-integration: {type: mock}
            """,
            "openapi.yaml:5: paths./a.get.x-amazon-apigateway-request-validator: no request "
            "validator named 'strict'",
        ),
        (
            """\
            openapi: 3.0.0
            x-amazon-apigateway-request-validators:
              all: {validateRequestBody: true}
            paths:
              /a:
                post:
                  x-amazon-apigateway-request-validator: all
                  requestBody: {$ref: "#/components/requestBodies/Nope"}
                  x-amazon-apigateway-integration: {type: mock}
            """,
            "openapi.yaml:8: paths./a.post.requestBody.$ref: cannot resolve "
            "'#/components/requestBodies/Nope'",
        ),
        (
            """\
            openapi: 3.0.0
            x-amazon-apigateway-cors: {allowOrigins: ["*"], allowCredentials: true}
            x-amazon-apigateway-api-key-source: QUERY
            paths: {}
            """,
            "openapi.yaml:2: x-amazon-apigateway-cors: credentials: true needs explicit origins",
        ),
        (
            """\
            openapi: 3.0.0
            x-amazon-apigateway-api-key-source: QUERY
            paths: {}
            """,
            "openapi.yaml:2: x-amazon-apigateway-api-key-source: expected HEADER or AUTHORIZER",
        ),
        (
            """\
            openapi: 2.0.0
            paths: {}
            """,
            "openapi.yaml:1: openapi: not an OpenAPI 3.0/3.1 or Swagger 2.0 document",
        ),
        (
            """\
            openapi: 3.0.0
            paths:
              /a:
                get: [oops
            """,
            "openapi.yaml:5: invalid YAML",
        ),
    ],
)
def test_bad_documents_are_located(
    tmp_path: Path, openapi_stack: str, document: str, expected: str
) -> None:
    found = problems(tmp_path, document, openapi_stack)
    assert any(expected in problem for problem in found), found
    assert all(str(tmp_path / "openapi.yaml") in p for p in found if "openapi.yaml" in p)


def test_every_problem_at_once_with_the_stack_files_own(tmp_path: Path, openapi_stack: str) -> None:
    found = problems(
        tmp_path,
        """\
        openapi: 3.0.0
        paths:
          /a:
            get:
              x-amazon-apigateway-integration: {type: http_proxy, uri: "http://nope/a"}
          /b:
            get:
              x-amazon-apigateway-integration: {type: aws_proxy, uri: nope}
        """,
        openapi_stack + "  routes:\n    - {path: /c, service: missing}\n",
    )
    assert len(found) == 3
    assert any(
        "stackyard.yml:10: api.routes.0.service: no service named 'missing'" in p for p in found
    )
    assert sum("openapi.yaml:" in p for p in found) == 2


def test_missing_document_is_located_in_the_stack(tmp_path: Path, openapi_stack: str) -> None:
    (tmp_path / "stackyard.yml").write_text(openapi_stack)
    with pytest.raises(ConfigError) as caught:
        load_stack(tmp_path, {})
    assert str(caught.value.problems[0]).startswith(f"{tmp_path / 'stackyard.yml'}:8: api.openapi")
    assert "no such file" in str(caught.value)


NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)


@given(name=NAMES, region=st.sampled_from(["us-east-1", "eu-west-3"]), alias=st.booleans())
def test_function_uris(name: str, region: str, alias: bool) -> None:
    arn = f"arn:aws:lambda:{region}:123456789012:function:{name}" + (":live" if alias else "")
    invocation = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    substituted = (
        "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        f"${{{name}.Arn}}/invocations"
    )
    for uri in (invocation, arn, substituted, f"${{{name}}}", name):
        assert function_name(uri) == name


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "x-amazon-apigateway-integration",
        "security",
        "parameters",
        "requestBody",
        "x-amazon-apigateway-request-validator",
        "type",
        "uri",
        "responses",
        "requestTemplates",
        "$ref",
    ]
)
OPERATION = st.dictionaries(KEYS, JSON | st.dictionaries(KEYS, JSON, max_size=4), max_size=5)


@settings(max_examples=300, deadline=None)
@given(
    paths=st.dictionaries(
        st.sampled_from(["/a", "/b/{id}", "/{proxy+}", "bad", "/c/{x+}/d"]),
        st.dictionaries(
            st.sampled_from(["get", "post", "x-amazon-apigateway-any-method", "parameters"]),
            OPERATION | JSON,
            max_size=3,
        ),
        max_size=3,
    ),
    top=st.dictionaries(
        st.sampled_from(
            [
                "x-amazon-apigateway-cors",
                "x-amazon-apigateway-api-key-source",
                "x-amazon-apigateway-request-validators",
                "security",
                "components",
            ]
        ),
        JSON,
        max_size=3,
    ),
    swagger=st.booleans(),
)
def test_any_document_gives_routes_or_problems(
    paths: dict[str, Any], top: dict[str, Any], swagger: bool
) -> None:
    data = {"swagger": "2.0"} if swagger else {"openapi": "3.0.3"}
    doc = OpenApiDocument(
        Path("o.yaml"),
        {**data, **top, "paths": paths},
        {},
        services=frozenset({"items"}),
        functions=frozenset({"hello"}),
    )
    imported = import_document(doc)
    for item in imported.routes:
        RouteConfig.model_validate(item)
    for problem in doc.problems:
        assert problem.message


def _object(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


SCALAR_OR = st.sampled_from(
    ["http_proxy", "aws_proxy", "mock", "jwt", "request", "hello", "http://items/{id}", "'v'"]
)
INTEGRATION = _object(
    ["type", "uri", "requestParameters", "requestTemplates", "responses", "timeoutInMillis",
     "payloadFormatVersion"],
    SCALAR_OR | JSON | _object(["default", "200", "integration.request.path.id"], JSON | SCALAR_OR),
)  # fmt: skip
AUTHORIZER = _object(
    ["type", "authorizerUri", "identitySource", "jwtConfiguration", "enableSimpleResponses",
     "authorizerResultTtlInSeconds", "authorizerPayloadFormatVersion", "x-stackyard-jwks"],
    SCALAR_OR | JSON | _object(["issuer", "audience"], JSON | SCALAR_OR),
)  # fmt: skip
SCHEME = _object(["type", "in", "name", "x-amazon-apigateway-authorizer"], SCALAR_OR | AUTHORIZER)


@settings(max_examples=300, deadline=None)
@given(
    integration=INTEGRATION,
    schemes=st.dictionaries(st.sampled_from(["k", "users", "bad name"]), SCHEME, max_size=2),
    security=st.lists(st.dictionaries(st.sampled_from(["k", "users"]), JSON), max_size=2),
)
def test_any_integration_and_scheme_gives_routes_or_problems(
    integration: dict[str, Any], schemes: dict[str, Any], security: list[Any]
) -> None:
    doc = OpenApiDocument(
        Path("o.yaml"),
        {
            "openapi": "3.0.3",
            "components": {"securitySchemes": schemes},
            "paths": {
                "/i/{id}": {
                    "get": {
                        "security": security,
                        "x-amazon-apigateway-integration": integration,
                    }
                }
            },
        },
        {},
        services=frozenset({"items"}),
        functions=frozenset({"hello"}),
    )
    imported = import_document(doc)
    for item in imported.routes:
        RouteConfig.model_validate(item)
    for config in imported.authorizers.values():
        assert config["type"] in ("jwt", "function")
