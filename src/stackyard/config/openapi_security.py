"""Security schemes, operation ``security`` and request validators of an imported document.

- A scheme (``components.securitySchemes`` / Swagger ``securityDefinitions``) with
  ``x-amazon-apigateway-authorizer`` becomes an authorizer of the same name: ``type: jwt``
  (``jwtConfiguration.issuer``/``audience``, ``identitySource``; keys from ``x-stackyard-jwks``,
  else ``<issuer>/.well-known/jwks.json``) → a ``jwt`` authorizer; ``type: request``
  (``authorizerUri`` naming a function, ``identitySource``, ``authorizerResultTtlInSeconds``,
  ``authorizerPayloadFormatVersion``, ``enableSimpleResponses``) → a ``function`` authorizer.
- A header ``apiKey`` scheme without the extension means ``api_key: true``.
- An operation's ``security`` (else the document's) picks them; a requirement Stackyard cannot
  enforce (another scheme type, ``token``/``cognito_user_pools`` authorizers, alternatives,
  ``AWS_IAM``) is a problem, never dropped: dropping it would open the route.
- ``x-amazon-apigateway-request-validators`` + ``x-amazon-apigateway-request-validator``
  (document default or per operation) → ``validate``: the JSON ``requestBody`` schema (Swagger:
  the ``in: body`` parameter) when the validator checks bodies; the required query parameters
  and headers when it checks parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .api import POLICY_NAME_PATTERN, FunctionAuthorizerConfig, JwtAuthorizerConfig
from .loader import FieldPath
from .openapi_doc import OpenApiDocument
from .openapi_integrations import function_name

AUTHORIZER = "x-amazon-apigateway-authorizer"
_AUTHORIZER_KEYS = {
    "jwt": {"type", "jwtConfiguration", "identitySource", "x-stackyard-jwks"},
    "request": {
        "type",
        "authorizerUri",
        "identitySource",
        "authorizerResultTtlInSeconds",
        "authorizerPayloadFormatVersion",
        "enableSimpleResponses",
        "authorizerCredentials",
    },
}
_IDENTITY = re.compile(
    r"^(?:\$request\.|method\.request\.|\$)?(?P<kind>header|querystring|query|path|context|stageVariables)"
    r"\.(?P<name>[A-Za-z0-9_.$-]+)$"
)


@dataclass(frozen=True)
class Scheme:
    """What a named security scheme means here: ``api_key``, an ``authorizer`` (its config,
    None when it cannot be used) or ``other`` (``reason`` says why it cannot be enforced)."""

    kind: str
    config: dict[str, Any] | None = None
    reason: str = ""


def security_schemes(doc: OpenApiDocument) -> dict[str, Scheme]:
    if doc.swagger2:
        where: FieldPath = ("securityDefinitions",)
        raw = doc.data.get("securityDefinitions")
    else:
        where = ("components", "securitySchemes")
        components = doc.data.get("components")
        raw = components.get("securitySchemes") if isinstance(components, dict) else None
    out: dict[str, Scheme] = {}
    if not isinstance(raw, dict):
        return out
    for name, item in raw.items():
        value, at = doc.deref(item, (*where, name))
        if not isinstance(value, dict):
            continue
        for key in value:
            if key.startswith("x-amazon-apigateway-") and key not in (
                AUTHORIZER,
                "x-amazon-apigateway-authtype",
            ):
                doc.unsupported((*at, key))
        if AUTHORIZER in value:
            out[name] = _authorizer(doc, name, value[AUTHORIZER], (*at, AUTHORIZER))
        elif value.get("type") == "apiKey" and value.get("in") == "header":
            if str(value.get("name", "")).lower() != "x-api-key":
                doc.warn((*at, "name"), "API keys are read from the x-api-key header")
            out[name] = Scheme("api_key")
        else:
            out[name] = Scheme("other", reason=f"type {value.get('type')!r} has no {AUTHORIZER}")
    return out


def _authorizer(doc: OpenApiDocument, name: str, ext: Any, at: FieldPath) -> Scheme:
    if not isinstance(ext, dict):
        doc.problem(at, "must be a mapping")
        return Scheme("authorizer")
    if not re.match(POLICY_NAME_PATTERN, name):
        doc.problem(at, f"authorizer name {name!r}: letters, digits, '.', '-' and '_'")
        return Scheme("authorizer")
    kind = str(ext.get("type", "")).lower()
    for key in ext:
        if key not in _AUTHORIZER_KEYS.get(kind, {"type"}):
            doc.unsupported((*at, key))
    config: dict[str, Any]
    if kind == "jwt":
        jwt = ext.get("jwtConfiguration") or {}
        issuer = jwt.get("issuer") if isinstance(jwt, dict) else None
        jwks = ext.get("x-stackyard-jwks")
        if jwks is None and isinstance(issuer, str):
            jwks = issuer.rstrip("/") + "/.well-known/jwks.json"
        config = {"type": "jwt", "issuer": issuer, "jwks": jwks}
        if isinstance(jwt, dict) and "audience" in jwt:
            config["audience"] = jwt["audience"]
        source = _identity(doc, ext.get("identitySource"), (*at, "identitySource"))
        if source:
            config["identity_source"] = source[0]
        model: type[JwtAuthorizerConfig | FunctionAuthorizerConfig] = JwtAuthorizerConfig
    elif kind == "request":
        uri = ext.get("authorizerUri")
        function = function_name(uri) if isinstance(uri, str) else None
        if function is None:
            doc.problem((*at, "authorizerUri"), "needs a uri naming a function")
            return Scheme("authorizer")
        if function not in doc.functions:
            doc.problem((*at, "authorizerUri"), f"no function named {function!r}")
            return Scheme("authorizer")
        config = {
            "type": "function",
            "function": function,
            "payload_version": str(ext.get("authorizerPayloadFormatVersion", "1.0")),
            "response": "simple" if ext.get("enableSimpleResponses") is True else "iam",
        }
        if "authorizerResultTtlInSeconds" in ext:
            config["ttl"] = ext["authorizerResultTtlInSeconds"]
        source = _identity(doc, ext.get("identitySource"), (*at, "identitySource"))
        if source:
            config["identity_source"] = source
        model = FunctionAuthorizerConfig
    else:
        reason = f"authorizer type {kind!r} is not supported (jwt, request)"
        doc.warn((*at, "type"), f"{reason}; operations using it are refused")
        return Scheme("authorizer", reason=reason)
    try:
        model.model_validate(config)
    except ValidationError as exc:
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            doc.problem(at, f"{'.'.join(map(str, error['loc'])) or 'authorizer'}: {message}")
        return Scheme("authorizer")
    return Scheme("authorizer", config)


def _identity(doc: OpenApiDocument, value: Any, at: FieldPath) -> list[str]:
    """``$request.header.X`` / ``method.request.header.X`` (comma-separated or a list) →
    ``header.x`` sources."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out = []
    for item in items:
        match = _IDENTITY.match(str(item).strip())
        if match is None:
            doc.problem(at, f"{item!r}: expected $request.header.NAME or $request.querystring.NAME")
            continue
        kind = {"querystring": "query"}.get(match["kind"], match["kind"])
        name = match["name"].lower() if kind == "header" else match["name"]
        out.append(f"{kind}.{name}")
    return out


def operation_security(
    doc: OpenApiDocument, op: dict[str, Any], where: FieldPath, schemes: dict[str, Scheme]
) -> dict[str, Any] | None:
    """``api_key``/``authorizer``/``scopes`` of an operation; None after a problem."""
    auth = op.get("x-amazon-apigateway-auth")
    if isinstance(auth, dict) and str(auth.get("type", "NONE")).upper() != "NONE":
        doc.problem((*where, "x-amazon-apigateway-auth"), f"{auth.get('type')} is not supported")
        return None
    if "security" in op:
        requirements, at = op["security"], (*where, "security")
    else:
        requirements, at = doc.data.get("security"), ("security",)
    if not requirements:
        return {}
    if not isinstance(requirements, list) or not all(isinstance(r, dict) for r in requirements):
        doc.problem(at, "must be a list of security requirements")
        return None
    if len(requirements) > 1:
        doc.problem(at, "alternative security requirements are not supported (use one)")
        return None
    out: dict[str, Any] = {}
    for name, scopes in requirements[0].items():
        scheme = schemes.get(name)
        if scheme is None:
            doc.problem((*at, 0, name), f"no security scheme named {name!r}")
            return None
        if scheme.kind == "api_key":
            out["api_key"] = True
        elif scheme.kind == "authorizer" and scheme.config is not None:
            if "authorizer" in out:
                doc.problem((*at, 0, name), "one authorizer per operation")
                return None
            out["authorizer"] = name
            if scopes:
                if not isinstance(scopes, list):
                    doc.problem((*at, 0, name), "scopes must be a list")
                    return None
                out["scopes"] = [str(s) for s in scopes]
        else:
            reason = scheme.reason or "the scheme is invalid"
            doc.problem((*at, 0, name), f"{reason}; Stackyard cannot enforce it")
            return None
    return out


def request_validators(doc: OpenApiDocument) -> dict[str, tuple[bool, bool]]:
    """Validator name → (checks the body, checks the parameters)."""
    raw = doc.data.get("x-amazon-apigateway-request-validators")
    out: dict[str, tuple[bool, bool]] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        doc.problem(("x-amazon-apigateway-request-validators",), "must be a mapping")
        return out
    for name, value in raw.items():
        if isinstance(value, dict):
            body = value.get("validateRequestBody") is True
            out[name] = (body, value.get("validateRequestParameters") is True)
    return out


def operation_validation(
    doc: OpenApiDocument,
    op: dict[str, Any],
    where: FieldPath,
    parameters: list[tuple[dict[str, Any], FieldPath]],
    validators: dict[str, tuple[bool, bool]],
) -> dict[str, Any] | None:
    """The ``validate`` of an operation, or None when it has no validator."""
    key = "x-amazon-apigateway-request-validator"
    at: FieldPath = (*where, key) if key in op else (key,)
    name = op.get(key, doc.data.get(key))
    if name is None:
        return None
    if not isinstance(name, str) or name not in validators:
        doc.problem(at, f"no request validator named {name!r} in {key}s")
        return None
    body, params = validators[name]
    out: dict[str, Any] = {}
    if body:
        schema = _body_schema(doc, op, where, parameters)
        if schema is not None:
            out["body"] = schema
    if params:
        for param, _ in parameters:
            if param.get("required") is True and param.get("in") in ("query", "header"):
                out.setdefault("query" if param["in"] == "query" else "headers", []).append(
                    str(param.get("name"))
                )
    return out or None


def _body_schema(
    doc: OpenApiDocument,
    op: dict[str, Any],
    where: FieldPath,
    parameters: list[tuple[dict[str, Any], FieldPath]],
) -> dict[str, Any] | None:
    if doc.swagger2:
        for param, at in parameters:
            if param.get("in") == "body" and "schema" in param:
                return doc.schema(param["schema"], (*at, "schema"))
        return None
    body, at = doc.deref(op.get("requestBody"), (*where, "requestBody"))
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, dict):
        return None
    for media_type, item in content.items():
        if "json" in media_type and isinstance(item, dict) and "schema" in item:
            return doc.schema(item["schema"], (*at, "content", media_type, "schema"))
    return None
