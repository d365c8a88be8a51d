"""Imports ``api.openapi``: an OpenAPI 3.0/3.1 or Swagger 2.0 document whose operations join
``api.routes``.

:func:`merge_openapi` is called by the stack loader before validation: it reads the document
(relative to the stack file), turns each operation that has an ``x-amazon-apigateway-integration``
into an ``api.routes`` entry (after the stack's own routes, so a route of the stack file wins
over an imported route for the same path and method) and adds the document's authorizers,
``x-amazon-apigateway-api-key-source`` (→ ``key_source``), ``x-amazon-apigateway-cors``
(→ ``cors``) and ``x-amazon-apigateway-minimum-compression-size`` (→ ``gzip.min_size``) unless
the stack sets them itself. Problems are located in the document (``file:line: field``);
extensions Stackyard does not implement are named in the warnings.

The integrations are read in :mod:`.openapi_integrations`, security and request validators in
:mod:`.openapi_security`, the document itself in :mod:`.openapi_doc`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .api import CorsConfig, RouteConfig, valid_template
from .errors import ConfigError, Problem
from .loader import FieldPath, line_of
from .openapi_doc import OpenApiDocument, read_document
from .openapi_integrations import Route, integration_route
from .openapi_security import (
    Scheme,
    operation_security,
    operation_validation,
    request_validators,
    security_schemes,
)

ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_PATH_ITEM_KEYS = {"parameters", "summary", "description", "servers", "trace"}
_OPERATION_EXTENSIONS = {
    INTEGRATION,
    "x-amazon-apigateway-request-validator",
    "x-amazon-apigateway-auth",
}
_TOP_EXTENSIONS = {
    "x-amazon-apigateway-api-key-source",
    "x-amazon-apigateway-cors",
    "x-amazon-apigateway-request-validators",
    "x-amazon-apigateway-request-validator",
    "x-amazon-apigateway-minimum-compression-size",
    "x-amazon-apigateway-importexport-version",
}
_CORS_FIELDS = {
    "allowOrigins": "origins",
    "allowMethods": "methods",
    "allowHeaders": "headers",
    "exposeHeaders": "expose_headers",
    "allowCredentials": "credentials",
    "maxAge": "max_age",
}


@dataclass
class ImportedApi:
    """What a document adds to the ``api:`` section (plain data, validated piece by piece)."""

    routes: list[Route] = field(default_factory=list)
    authorizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # key_source, cors, gzip


def merge_openapi(
    data: dict[str, Any], file: Path, lines: Mapping[FieldPath, int], warnings: list[str]
) -> list[Problem]:
    """Adds the document named by ``api.openapi`` to the stack ``data`` (in place); returns
    the problems found, appends the warnings."""
    api = data.get("api")
    if not isinstance(api, dict) or not isinstance(api.get("openapi"), str):
        return []
    source = (file.parent / api["openapi"]).resolve()
    if not source.is_file():
        line = line_of(lines, ("api", "openapi"))
        return [Problem(file, line, "api.openapi", f"no such file: {source}")]
    try:
        doc = read_document(source)
    except ConfigError as exc:
        return list(exc.problems)
    doc.services = frozenset(_names(data.get("services")))
    doc.functions = frozenset(_names(data.get("functions")))
    imported = import_document(doc)
    warnings.extend(doc.warnings)
    if imported.routes and isinstance(api.get("routes", []), list):
        api["routes"] = [*api.get("routes", []), *imported.routes]
    if imported.authorizers and isinstance(api.get("authorizers", {}), dict):
        api["authorizers"] = {**imported.authorizers, **api.get("authorizers", {})}
    for key, value in imported.settings.items():
        api.setdefault(key, value)
    return doc.problems


def _names(section: Any) -> list[str]:
    return [str(name) for name in section] if isinstance(section, dict) else []


def import_document(doc: OpenApiDocument) -> ImportedApi:
    """The routes and settings of ``doc``; problems and warnings are recorded in ``doc``."""
    out = ImportedApi()
    version = doc.data.get("openapi", doc.data.get("swagger"))
    if "openapi" in doc.data:
        known = str(version).startswith(("3.0", "3.1"))
    else:
        known = "swagger" in doc.data and str(version) == "2.0"
    if not known:
        at: FieldPath = ("openapi",) if "openapi" in doc.data else ("swagger",)
        doc.problem(at, "not an OpenAPI 3.0/3.1 or Swagger 2.0 document")
        return out
    _top_level(doc, out)
    schemes = security_schemes(doc)
    out.authorizers = {
        name: scheme.config
        for name, scheme in schemes.items()
        if scheme.kind == "authorizer" and scheme.config is not None
    }
    validators = request_validators(doc)
    paths = doc.data.get("paths")
    if not isinstance(paths, dict):
        doc.problem(("paths",), "an OpenAPI document needs paths (a mapping)")
        return out
    for path, item in paths.items():
        out.routes.extend(_path_item(doc, str(path), item, schemes, validators))
    return out


def _top_level(doc: OpenApiDocument, out: ImportedApi) -> None:
    for key in doc.data:
        if key.startswith("x-amazon-apigateway-") and key not in _TOP_EXTENSIONS:
            doc.unsupported((key,))
    source = doc.data.get("x-amazon-apigateway-api-key-source")
    if source is not None:
        kind = str(source).lower()
        if kind in ("header", "authorizer"):
            out.settings["key_source"] = kind
        else:
            doc.problem(("x-amazon-apigateway-api-key-source",), "expected HEADER or AUTHORIZER")
    cors = doc.data.get("x-amazon-apigateway-cors")
    if cors is not None:
        _cors(doc, cors, ("x-amazon-apigateway-cors",), out)
    size = doc.data.get("x-amazon-apigateway-minimum-compression-size")
    if size is not None:
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            out.settings["gzip"] = {"min_size": size}
        else:
            doc.problem(("x-amazon-apigateway-minimum-compression-size",), "must be bytes ≥ 0")


def _cors(doc: OpenApiDocument, value: Any, at: FieldPath, out: ImportedApi) -> None:
    if not isinstance(value, dict):
        doc.problem(at, "must be a mapping")
        return
    config: dict[str, Any] = {}
    for key, item in value.items():
        if key in _CORS_FIELDS:
            config[_CORS_FIELDS[key]] = item
        else:
            doc.unsupported((*at, key))
    try:
        CorsConfig.model_validate(config)
    except ValidationError as exc:
        for error in exc.errors():
            doc.problem(at, str(error["msg"]).removeprefix("Value error, "))
        return
    out.settings["cors"] = config


def _path_item(
    doc: OpenApiDocument,
    path: str,
    item: Any,
    schemes: dict[str, Scheme],
    validators: dict[str, tuple[bool, bool]],
) -> list[Route]:
    where: FieldPath = ("paths", path)
    try:
        valid_template(path)
    except ValueError as exc:
        doc.problem(where, f"path {path!r}: {exc}")
        return []
    if not isinstance(item, dict):
        doc.problem(where, "a path item must be a mapping")
        return []
    routes: list[Route] = []
    for key, op in item.items():
        at = (*where, key)
        if key in _METHODS or key == ANY_METHOD:
            if not isinstance(op, dict):
                doc.problem(at, "an operation must be a mapping")
                continue
            method = "ANY" if key == ANY_METHOD else key.upper()
            params = _parameters(doc, item.get("parameters"), op.get("parameters"), where, at)
            route = _operation(doc, path, method, op, at, params, schemes, validators)
            if route is not None:
                routes.append(route)
        elif key == "trace":
            doc.warn(at, "TRACE is not routed by the gateway, ignored")
        elif key.startswith("x-amazon-apigateway-") or key == "$ref":
            doc.unsupported(at)
    return routes


def _parameters(
    doc: OpenApiDocument, shared: Any, own: Any, where: FieldPath, at: FieldPath
) -> list[tuple[dict[str, Any], FieldPath]]:
    """Path-item parameters overridden by the operation's, ``$ref`` followed."""
    merged: dict[tuple[str, str], tuple[dict[str, Any], FieldPath]] = {}
    for items, base in ((shared, (*where, "parameters")), (own, (*at, "parameters"))):
        if not isinstance(items, list):
            continue
        for index, raw in enumerate(items):
            param, found = doc.deref(raw, (*base, index))
            if isinstance(param, dict):
                merged[(str(param.get("name")), str(param.get("in")))] = (param, found)
    return list(merged.values())


def _operation(
    doc: OpenApiDocument,
    path: str,
    method: str,
    op: dict[str, Any],
    where: FieldPath,
    params: list[tuple[dict[str, Any], FieldPath]],
    schemes: dict[str, Scheme],
    validators: dict[str, tuple[bool, bool]],
) -> Route | None:
    for key in op:
        if key.startswith("x-amazon-apigateway-") and key not in _OPERATION_EXTENSIONS:
            doc.unsupported((*where, key))
    if INTEGRATION not in op:
        doc.warn(where, f"no {INTEGRATION}: not routed")
        return None
    found = integration_route(doc, op[INTEGRATION], (*where, INTEGRATION), path)
    security = operation_security(doc, op, where, schemes)
    validation = operation_validation(doc, op, where, params, validators)
    if found is None or security is None:
        return None
    integration, fields = found
    route: Route = {"path": path, "methods": [method], **integration, **security}
    if validation is not None:
        route["validate"] = validation
    summary = op.get("summary") or op.get("description")
    if isinstance(summary, str):
        route["description"] = summary
    try:
        RouteConfig.model_validate(route)
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            at = fields.get(loc[0], where) if loc else where
            message = str(error["msg"]).removeprefix("Value error, ")
            doc.problem(at, f"{'.'.join(loc)}: {message}" if loc else message)
        return None
    function = route.get("function")
    if function is not None and function not in doc.functions:
        doc.problem(fields["function"], f"no function named {function!r}")
        return None
    return route
