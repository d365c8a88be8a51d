"""The live API as an OpenAPI 3.0 document: the gateway's current route table and ``api:``.

:func:`export_openapi` writes every route of the table (first route wins for a path and method,
as in the router) with its path parameters, its security (``api_key`` → the ``x-api-key``
scheme; an authorizer → a scheme of the same name carrying ``x-amazon-apigateway-authorizer``,
scopes in the requirement) and its request validation (the body schema as ``requestBody``,
required query parameters and headers, ``x-amazon-apigateway-request-validator``), and each
operation's ``x-amazon-apigateway-integration`` (``http_proxy`` to ``http://<service>/path``,
``aws_proxy`` with a Lambda invocation ARN, ``mock`` with request and response templates), so
that the document imported again (``api.openapi``) gives the same routes. Throttles, caches,
usage plans and transforms other than a path rewrite are not part of the document; neither is
an authorizer's secret (a JWT authorizer's ``jwks`` location is, as ``x-stackyard-jwks``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import yaml

from ..config.api import (
    ApiConfig,
    AuthorizerConfig,
    JwtAuthorizerConfig,
    MockConfig,
    ValidationConfig,
)
from .table import RouteSpec, RouteTable

OPENAPI_VERSION = "3.0.3"
ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
ACCOUNT = "000000000000"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")
_VALIDATORS = {
    "all": {"validateRequestBody": True, "validateRequestParameters": True},
    "body": {"validateRequestBody": True, "validateRequestParameters": False},
    "params": {"validateRequestBody": False, "validateRequestParameters": True},
}


def export_openapi(
    table: RouteTable,
    api: ApiConfig,
    *,
    root: Path | None = None,
    title: str = "Stackyard API",
    region: str = "us-east-1",
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``table`` under ``api`` (``root``: where schema files are)."""
    exporter = _Exporter(api, root, region)
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        item = paths.setdefault(route.path, {})
        for method in sorted(route.methods):
            key = ANY_METHOD if method == "ANY" else method.lower()
            if key not in item:
                item[key] = exporter.operation(route, method)
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": str(table.version)},
        "paths": paths,
        "x-amazon-apigateway-api-key-source": api.key_source.upper(),
    }
    if api.cors is not None:
        cors = api.cors
        doc["x-amazon-apigateway-cors"] = {
            "allowOrigins": list(cors.origins),
            "allowMethods": list(cors.methods),
            **({"allowHeaders": list(cors.headers)} if cors.headers is not None else {}),
            "exposeHeaders": list(cors.expose_headers),
            "allowCredentials": cors.credentials,
            **({"maxAge": cors.max_age} if cors.max_age is not None else {}),
        }
    if api.gzip is not None:
        doc["x-amazon-apigateway-minimum-compression-size"] = api.gzip.min_size
    if exporter.validators:
        doc["x-amazon-apigateway-request-validators"] = {
            name: _VALIDATORS[name] for name in sorted(exporter.validators)
        }
    schemes = exporter.schemes()
    if schemes:
        doc["components"] = {"securitySchemes": schemes}
    return doc


def openapi_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class _Exporter:
    def __init__(self, api: ApiConfig, root: Path | None, region: str) -> None:
        self.api = api
        self.root = root
        self.region = region
        self.validators: set[str] = set()
        self.uses_keys = False
        self.key_scheme = "x-api-key" if "api_key" in api.authorizers else "api_key"
        self._operation_ids: set[str] = set()

    def invocation_arn(self, function: str) -> str:
        lambda_arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{function}"
        return (
            f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
            f"{lambda_arn}/invocations"
        )

    def operation(self, route: RouteSpec, method: str) -> dict[str, Any]:
        op: dict[str, Any] = {"operationId": self._operation_id(route.path, method)}
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name, _ in _PARAM.findall(route.path)
        ]
        policy = route.policy
        requirement: dict[str, list[str]] = {}
        if policy.api_key:
            self.uses_keys = True
            requirement[self.key_scheme] = []
        if policy.authorizer is not None:
            requirement[policy.authorizer] = list(policy.scopes)
        if requirement:
            op["security"] = [requirement]
        if policy.validation is not None:
            parameters.extend(self._validation(op, policy.validation))
        if parameters:
            op["parameters"] = parameters
        op["responses"] = {"default": {"description": "the integration's answer"}}
        op[INTEGRATION] = self.integration(route)
        return op

    def _operation_id(self, path: str, method: str) -> str:
        base = re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()}{path}").strip("_") or "root"
        name, n = base, 1
        while name in self._operation_ids:
            n += 1
            name = f"{base}_{n}"
        self._operation_ids.add(name)
        return name

    def _validation(self, op: dict[str, Any], validation: ValidationConfig) -> list[Any]:
        params = [
            {"name": name, "in": where, "required": True, "schema": {"type": "string"}}
            for where, names in (("query", validation.query), ("header", validation.headers))
            for name in names
        ]
        body = validation.body
        if body is not None:
            schema = self._schema(body)
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _openapi30(schema)}},
            }
        if body is not None or params:
            name = (
                "all" if body is not None and params else "body" if body is not None else "params"
            )
            self.validators.add(name)
            op["x-amazon-apigateway-request-validator"] = name
        return params

    def _schema(self, body: dict[str, Any] | str) -> Any:
        if isinstance(body, dict):
            return body
        try:
            path = Path(body) if self.root is None else self.root / body
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return {}

    def integration(self, route: RouteSpec) -> dict[str, Any]:
        timeout = {"timeoutInMillis": round(route.timeout * 1000)}
        if route.integration == "function":
            return {
                "type": "aws_proxy",
                "httpMethod": "POST",
                "uri": self.invocation_arn(route.function),
                "payloadFormatVersion": route.payload_version,
                **timeout,
            }
        if route.integration == "mock":
            return _mock(route.mock or MockConfig())
        out: dict[str, Any] = {
            "type": "http_proxy",
            "httpMethod": "ANY",
            "uri": f"http://{route.service}{_upstream(route)}",
            **timeout,
        }
        greedy = [name for name, plus in _PARAM.findall(route.path) if plus]
        if greedy:
            out["requestParameters"] = {
                f"integration.request.path.{name}": f"method.request.path.{name}" for name in greedy
            }
        return out

    def schemes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.uses_keys:
            out[self.key_scheme] = {"type": "apiKey", "name": "x-api-key", "in": "header"}
        for name, config in self.api.authorizers.items():
            out[name] = self._authorizer(config)
        return out

    def _authorizer(self, config: AuthorizerConfig) -> dict[str, Any]:
        if isinstance(config, JwtAuthorizerConfig):
            ext: dict[str, Any] = {
                "type": "jwt",
                "identitySource": _identity([config.identity_source]),
                "jwtConfiguration": {"issuer": config.issuer, "audience": list(config.audience)},
            }
            if config.jwks is not None:
                ext["x-stackyard-jwks"] = config.jwks
            scheme = _credential_scheme(config.identity_source)
            if config.identity_source == "header.authorization":
                scheme = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            return {**scheme, "x-amazon-apigateway-authorizer": ext}
        ext = {
            "type": "request",
            "authorizerUri": self.invocation_arn(config.function),
            "identitySource": _identity(config.identity_source),
            "authorizerResultTtlInSeconds": round(config.ttl),
            "authorizerPayloadFormatVersion": config.payload_version,
            "enableSimpleResponses": config.response == "simple",
        }
        scheme = _credential_scheme(config.identity_source[0] if config.identity_source else "")
        return {
            **scheme,
            "x-amazon-apigateway-authtype": "custom",
            "x-amazon-apigateway-authorizer": ext,
        }


def _credential_scheme(source: str) -> dict[str, Any]:
    """An ``apiKey`` scheme for the header or query parameter a token comes from (so the
    interactive docs can send it)."""
    kind, _, name = source.partition(".")
    if kind == "query":
        return {"type": "apiKey", "name": name, "in": "query"}
    return {"type": "apiKey", "name": name if kind == "header" else "Authorization", "in": "header"}


def _identity(sources: Iterable[str]) -> str:
    out = []
    for source in sources:
        kind, _, name = source.partition(".")
        if kind in ("header", "query", "path"):
            out.append(f"$request.{'querystring' if kind == 'query' else kind}.{name}")
        else:
            out.append(f"${source}")
    return ", ".join(out)


def _upstream(route: RouteSpec) -> str:
    """The path template the service sees (greedy parameters as ``{name}``)."""
    path = route.path
    transform = route.policy.transform
    if transform is not None and transform.request.path is not None:
        path = transform.request.path
    elif route.strip_prefix and path.startswith(route.strip_prefix):
        path = path[len(route.strip_prefix) :] or "/"
    return _PARAM.sub(r"{\1}", path)


def _mock(mock: MockConfig) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in mock.headers.items()}
    response: dict[str, Any] = {"statusCode": str(mock.status)}
    if mock.body is not None:
        if isinstance(mock.body, str):
            media_type, text = headers.pop("content-type", "text/plain"), mock.body
        else:
            media_type = headers.pop("content-type", "application/json")
            text = json.dumps(mock.body)
        response["responseTemplates"] = {media_type: text}
    if headers:
        response["responseParameters"] = {
            f"method.response.header.{name}": f"'{value}'" for name, value in headers.items()
        }
    return {
        "type": "mock",
        "requestTemplates": {"application/json": json.dumps({"statusCode": mock.status})},
        "responses": {"default": response},
    }


def _openapi30(schema: Any) -> Any:
    """A JSON schema as an OpenAPI 3.0 schema object: ``type: [T, "null"]`` → ``nullable``,
    no ``$schema``."""
    if isinstance(schema, list):
        return [_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _openapi30(value) for key, value in schema.items() if key != "$schema"}
    kinds = out.get("type")
    if isinstance(kinds, list) and "null" in kinds and len(kinds) == 2:
        out["type"] = next(kind for kind in kinds if kind != "null")
        out["nullable"] = True
    return out


class ApiSource(Protocol):
    """Where the live document is read from (the :class:`~.app.Gateway`)."""

    @property
    def table(self) -> RouteTable: ...

    @property
    def api(self) -> ApiConfig: ...

    @property
    def root(self) -> Path | None: ...


class LiveDocument:
    """The current OpenAPI JSON of a gateway, rebuilt only when its table or ``api`` changed."""

    def __init__(self, source: ApiSource, title: str = "Stackyard API") -> None:
        self.source = source
        self.title = title
        self._made_from: tuple[RouteTable, ApiConfig] | None = None
        self._json = b""

    def document(self) -> dict[str, Any]:
        return export_openapi(
            self.source.table, self.source.api, root=self.source.root, title=self.title
        )

    def __call__(self) -> bytes:
        table, api = self.source.table, self.source.api
        made = self._made_from
        if made is None or made[0] is not table or made[1] is not api:
            self._json = openapi_json(self.document())
            self._made_from = (table, api)
        return self._json
