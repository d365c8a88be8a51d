"""``x-amazon-apigateway-integration`` objects → the integration part of an ``api.routes`` entry.

- ``http_proxy``: ``uri: http://<service>[:port]/path`` → ``service: <service>`` (the host must
  name a service of the stack; the port is the service's own business). The upstream path:
  the route's path as is when ``uri``'s path is the same template, a ``strip_prefix`` when it
  is a tail of it, else a ``transform.request.path`` rewrite; ``requestParameters`` that map
  ``integration.request.path.X`` from ``method.request.path.Y`` rename the parameter.
- ``aws_proxy``: ``uri`` naming a function — an API Gateway invocation ARN
  (``arn:aws:apigateway:...:lambda:path/2015-03-31/functions/<function>/invocations``), a
  Lambda ARN, ``${Name.Arn}``/``${Name}`` or a plain name → ``function: <Name>``;
  ``payloadFormatVersion`` → ``payload_version`` (default ``1.0``, a REST API's).
- ``mock``: the status from ``requestTemplates``' ``{"statusCode": N}`` (else
  ``responses.default.statusCode``, else 200); the response of that status (or ``default``)
  gives the body (its ``responseTemplates``: JSON text becomes a JSON body, other text is sent
  with the template's media type) and static headers
  (``responseParameters: {method.response.header.X: "'value'"}``).
- ``timeoutInMillis`` → ``timeout``. Other types (``http``, ``aws``) are warned about and the
  operation is not routed; keys Stackyard does not implement are named in the warnings.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from .loader import FieldPath
from .openapi_doc import OpenApiDocument

Route = dict[str, Any]

_IGNORED = {"type", "uri", "httpMethod", "passthroughBehavior", "credentials", "description"}
_KNOWN = {
    "http_proxy": {"timeoutInMillis", "requestParameters", "payloadFormatVersion"},
    "aws_proxy": {"timeoutInMillis", "payloadFormatVersion", "requestParameters"},
    "mock": {"requestTemplates", "responses", "timeoutInMillis"},
}
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,140}$")
_INVOCATION = re.compile(r"/functions/(?P<target>.+?)/invocations$")
_LAMBDA_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:[^:]*:[^:]*:function:(?P<name>[^:/]+)(?::[^:/]+)?$"
)
_SUBSTITUTION = re.compile(r"^\$\{(?P<name>[A-Za-z0-9_.-]+?)(?:\.Arn)?\}$")
_STATUS = re.compile(r'"statusCode"\s*:\s*"?(\d{3})')
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\+?\}")
_HEADER_PARAM = "method.response.header."


def integration_route(
    doc: OpenApiDocument, value: Any, where: FieldPath, path: str
) -> tuple[Route, dict[str, FieldPath]] | None:
    """The integration fields of a route at ``path`` (and where each came from), or None
    (a problem or a warning was recorded) when the operation is not routed."""
    if not isinstance(value, dict):
        doc.problem(where, "must be a mapping")
        return None
    kind = str(value.get("type", "")).lower()
    if kind not in _KNOWN:
        if kind in ("http", "aws"):
            doc.warn((*where, "type"), f"type {kind!r} is not supported yet; not routed")
        else:
            doc.problem((*where, "type"), "expected http_proxy, aws_proxy or mock")
        return None
    for key in value:
        if key not in _IGNORED and key not in _KNOWN[kind]:
            doc.unsupported((*where, key))
    route: Route = {}
    fields: dict[str, FieldPath] = {"timeout": (*where, "timeoutInMillis")}
    timeout = value.get("timeoutInMillis")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        route["timeout"] = timeout / 1000
    elif timeout is not None:
        doc.problem((*where, "timeoutInMillis"), "must be a number of milliseconds")
    if kind == "http_proxy":
        ok = _http_proxy(doc, value, where, path, route, fields)
    elif kind == "aws_proxy":
        ok = _aws_proxy(doc, value, where, route, fields)
    else:
        ok = _mock(doc, value, where, route, fields)
    return (route, fields) if ok else None


def _http_proxy(
    doc: OpenApiDocument,
    value: dict[str, Any],
    where: FieldPath,
    path: str,
    route: Route,
    fields: dict[str, FieldPath],
) -> bool:
    at = (*where, "uri")
    uri = value.get("uri")
    if not isinstance(uri, str) or not uri:
        doc.problem(at, "an http_proxy integration needs uri: http://<service>[:port]/path")
        return False
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError as exc:
        doc.problem(at, f"invalid URL: {exc}")
        return False
    if parts.scheme not in ("http", "https") or not host:
        doc.problem(at, f"{uri!r}: expected http://<service>[:port]/path")
        return False
    if "${" in host:
        doc.problem(at, f"{uri!r}: a host chosen by a variable is not supported")
        return False
    if host not in doc.services:
        doc.problem(
            at,
            f"host {host!r} is not a service of this stack (http_proxy routes go to "
            f"http://<service>[:port]/path; define service {host!r} or change the uri)",
        )
        return False
    if parts.query:
        doc.warn(at, "the uri's query string is not supported yet, ignored")
    route["service"] = host
    fields["service"] = at
    upstream = _renamed(doc, unquote(parts.path) or "/", value.get("requestParameters"), where)
    _upstream_path(path, upstream, route, fields, at)
    return True


def _renamed(doc: OpenApiDocument, upstream: str, params: Any, where: FieldPath) -> str:
    """``upstream`` with the path parameters that ``requestParameters`` map renamed."""
    if params is None:
        return upstream
    if not isinstance(params, dict):
        doc.problem((*where, "requestParameters"), "must be a mapping")
        return upstream
    for target, source in params.items():
        at = (*where, "requestParameters", target)
        name = target.removeprefix("integration.request.path.")
        origin = str(source).removeprefix("method.request.path.")
        if name == target or origin == str(source) or not _PATH_PARAM.fullmatch(f"{{{origin}}}"):
            doc.warn(at, "only path parameter mappings are supported yet; ignored")
            continue
        upstream = re.sub(rf"\{{{re.escape(name)}(\+?)\}}", rf"{{{origin}\1}}", upstream)
    return upstream


def _plain(template: str) -> str:
    return _PATH_PARAM.sub(r"{\1}", template).rstrip("/") or "/"


def _upstream_path(
    path: str, upstream: str, route: Route, fields: dict[str, FieldPath], at: FieldPath
) -> None:
    here, there = _plain(path), _plain(upstream)
    if here == there:
        return
    prefix = here[: len(here) - len(there)] if there != "/" else here
    if (there == "/" or here.endswith(there)) and "{" not in prefix and prefix.startswith("/"):
        route["strip_prefix"] = prefix
        fields["strip_prefix"] = at
        return
    route["transform"] = {"request": {"path": there}}
    fields["transform"] = at


def function_name(uri: str) -> str | None:
    """The Stackyard function an ``aws_proxy`` uri or an authorizer uri names, if any."""
    uri = uri.strip()
    invocation = _INVOCATION.search(uri)
    target = invocation.group("target") if invocation else uri
    for pattern in (_LAMBDA_ARN, _SUBSTITUTION):
        match = pattern.match(target)
        if match:
            return match.group("name")
    return target if _FUNCTION_NAME.match(target) else None


def _aws_proxy(
    doc: OpenApiDocument,
    value: dict[str, Any],
    where: FieldPath,
    route: Route,
    fields: dict[str, FieldPath],
) -> bool:
    at = (*where, "uri")
    uri = value.get("uri")
    name = function_name(uri) if isinstance(uri, str) else None
    if name is None:
        doc.problem(
            at,
            "an aws_proxy integration needs a uri naming a function: an invocation ARN "
            "(...:lambda:path/2015-03-31/functions/<function ARN>/invocations), "
            "${Name.Arn} or a function name",
        )
        return False
    if "requestParameters" in value:
        doc.unsupported((*where, "requestParameters"))
    route["function"] = name
    fields["function"] = at
    version = value.get("payloadFormatVersion", "1.0")
    route["payload_version"] = str(version)
    fields["payload_version"] = (*where, "payloadFormatVersion")
    return True


def _mock(
    doc: OpenApiDocument,
    value: dict[str, Any],
    where: FieldPath,
    route: Route,
    fields: dict[str, FieldPath],
) -> bool:
    responses = value.get("responses") or {}
    if not isinstance(responses, dict):
        doc.problem((*where, "responses"), "must be a mapping")
        return False
    status = _requested_status(value.get("requestTemplates"))
    key = "default"
    if status is not None:
        key = next(
            (k for k, r in responses.items() if isinstance(r, dict) and _code(r) == status),
            "default",
        )
    chosen = responses.get(key) or {}
    at = (*where, "responses", key)
    if not isinstance(chosen, dict):
        doc.problem(at, "must be a mapping")
        return False
    if status is None:
        status = _code(chosen) or 200
    mock: dict[str, Any] = {"status": status}
    headers = _static_headers(doc, chosen.get("responseParameters"), at)
    templates = chosen.get("responseTemplates") or {}
    if isinstance(templates, dict) and templates:
        media_type, text = next(iter(templates.items()))
        body, is_json = _body(text)
        if body is not None:
            mock["body"] = body
            default = "application/json" if is_json else "text/plain"
            if str(media_type) != default:
                headers.setdefault("content-type", str(media_type))
    for extra in chosen:
        if extra not in ("statusCode", "responseParameters", "responseTemplates"):
            doc.unsupported((*at, extra))
    if headers:
        mock["headers"] = headers
    route["mock"] = mock
    fields["mock"] = at
    return True


def _requested_status(templates: Any) -> int | None:
    if not isinstance(templates, dict):
        return None
    for text in templates.values():
        match = _STATUS.search(str(text))
        if match:
            return int(match.group(1))
    return None


def _code(response: dict[str, Any]) -> int | None:
    code = str(response.get("statusCode", ""))
    return int(code) if code.isascii() and code.isdigit() else None


def _static_headers(doc: OpenApiDocument, params: Any, at: FieldPath) -> dict[str, str]:
    headers: dict[str, str] = {}
    if not isinstance(params, dict):
        return headers
    for name, value in params.items():
        text = str(value)
        if name.startswith(_HEADER_PARAM) and len(text) >= 2 and text[0] == text[-1] == "'":
            headers[name.removeprefix(_HEADER_PARAM).lower()] = text[1:-1]
        else:
            doc.warn((*at, "responseParameters", name), "only static 'value' headers are supported")
    return headers


def _body(text: Any) -> tuple[Any, bool]:
    """A mock body from a response template: parsed JSON when it is JSON, else the text."""
    if not isinstance(text, str):
        return None, False
    if not text:
        return None, False
    try:
        parsed = json.loads(text)
    except ValueError:
        return text, False
    if isinstance(parsed, dict | list):
        return parsed, True
    return text, False
