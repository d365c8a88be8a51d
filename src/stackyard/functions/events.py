"""API Gateway → Lambda proxy events and back (pure functions, no I/O).

``rest_event_json`` writes the REST API payload 1.0 and ``http_api_event_json`` the HTTP API
payload 2.0 (compact JSON, as the function gets it; ``rest_event``/``http_api_event`` are the
same as dicts) from a :class:`ProxyRequest` (what the gateway knows about a matched request),
field by field as the API Gateway developer guide documents them:

- 1.0: ``headers`` keep the client's spelling, last value wins, all values in
  ``multiValueHeaders``; ``queryStringParameters`` last value wins, all values in
  ``multiValueQueryStringParameters``; absent collections are ``null``; ``requestContext.path``
  includes the stage.
- 2.0: header names lowercase, repeated values joined with commas; the ``cookie`` header moves to
  ``cookies`` (split on ``;``); repeated query values joined with commas; absent optional fields
  (``cookies``, ``queryStringParameters``, ``pathParameters``, ``stageVariables``, ``body``)
  are left out; no ``multiValue*`` fields.
- A body that is not UTF-8 or whose content type is not textual is base64-encoded
  (``isBase64Encoded: true``).

``rest_response`` / ``http_api_response`` map a function's JSON result to an
:class:`HttpResponse`; a result API Gateway would reject raises ``MalformedResponse``, which the
gateway answers with 502 and :data:`INTERNAL_ERROR_BODY`. (Function errors are answered the same
way by the gateway: 502 ``{"message": "Internal server error"}`` for both payload versions.)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from ..jsontext import dumps as _encode
from ..jsontext import loads as _loads
from ..jsontext import text as _text
from .errors import MalformedResponse

INTERNAL_ERROR_BODY = b'{"message": "Internal server error"}'
"""What API Gateway answers (502) for a function error or a malformed function result."""

_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/yaml",
        "application/x-yaml",
        "application/x-ndjson",
    }
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Headers = list[tuple[bytes, bytes]]
_now = time.time


_random_bits = random.Random(os.urandom(32)).getrandbits
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def _reseed() -> None:
    global _random_bits
    _random_bits = random.Random(os.urandom(32)).getrandbits


os.register_at_fork(after_in_child=_reseed)  # forked children must not repeat each other's ids


def new_request_id() -> str:
    """A random version 4 UUID in its dashed form, like ``str(uuid.uuid4())``, without a
    ``getrandom`` system call per id: the bits come from a ``random.Random`` seeded from
    ``os.urandom`` (reseeded in forked children) — unique, not secret (request ids of
    invocations and events are no credentials)."""
    h = ((_random_bits(128) & _UUID4_CLEAR) | _UUID4_SET).to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class ProxyRequest:
    """A request matched to a function route, as the gateway hands it over (one per request:
    a plain slotted class, whose constructor runs compiled — a dataclass's generated one
    would not).

    - ``path``: the request path, without the stage prefix of a REST API; ``query``: the raw
      query string, without ``?``;
    - ``route``: the matched template (``/items/{id}``); for a HTTP API ``$default`` route:
      ``$default``; ``route_method``: the method of the route (``ANY`` allowed), empty for the
      request's method;
    - ``authorizer``: ``requestContext.authorizer`` as the authorizer step shaped it for the
      payload version (None: no authorizer; a REST event then has
      ``{"claims": null, "scopes": null}``);
    - ``api_key``, ``api_key_id``: the request's API key and the key's name, on routes that
      need one (REST events' ``requestContext.identity.apiKey`` / ``apiKeyId``);
    - ``time``: when the request came in, in seconds since the epoch (now, when not given).
    """

    __slots__ = (
        "account_id",
        "api_id",
        "api_key",
        "api_key_id",
        "authorizer",
        "body",
        "headers",
        "method",
        "path",
        "path_parameters",
        "protocol",
        "query",
        "request_id",
        "route",
        "route_method",
        "source_ip",
        "stage",
        "stage_variables",
        "time",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        source_ip: str,
        stage: str,
        route: str,
        route_method: str = "",
        path_parameters: Mapping[str, str] | None = None,
        stage_variables: Mapping[str, str] | None = None,
        authorizer: Mapping[str, Any] | None = None,
        request_id: str = "",
        api_key: str | None = None,
        api_key_id: str | None = None,
        time: float | None = None,
        api_id: str = "stackyard",
        account_id: str = "000000000000",
        protocol: str = "HTTP/1.1",
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.source_ip = source_ip
        self.stage = stage
        self.route = route
        self.route_method = route_method
        self.path_parameters = path_parameters
        self.stage_variables = stage_variables
        self.authorizer = authorizer
        self.request_id = request_id
        self.api_key = api_key
        self.api_key_id = api_key_id
        self.time: float = _now() if time is None else time
        self.api_id = api_id
        self.account_id = account_id
        self.protocol = protocol

    def __repr__(self) -> str:
        return f"ProxyRequest({self.method} {self.path!r}, stage={self.stage!r})"


class HttpResponse:
    """What a function's result answers over HTTP (a plain class for the same reason)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HttpResponse):
            return NotImplemented
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)

    def __repr__(self) -> str:
        return f"HttpResponse({self.status}, {self.headers!r}, {self.body!r})"


# -- requests -------------------------------------------------------------------------------------


def rest_event(request: ProxyRequest) -> dict[str, Any]:
    """The REST API (payload 1.0) proxy event."""
    value: dict[str, Any] = json.loads(rest_event_json(request))
    return value


def http_api_event(request: ProxyRequest) -> dict[str, Any]:
    """The HTTP API (payload 2.0) proxy event."""
    value: dict[str, Any] = json.loads(http_api_event_json(request))
    return value


def rest_event_json(request: ProxyRequest) -> bytes:
    """:func:`rest_event` as the JSON a function gets, written field by field (the gateway
    sends it as it is: no dict is built and walked by the encoder on the request path)."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    names: dict[str, str] = {}  # lowercase → first spelling seen
    for raw_name, raw_value in request.headers:
        name = raw_name.decode("latin-1")
        name = names.setdefault(name.lower(), name)
        value = raw_value.decode("latin-1")
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query_single: dict[str, str] = {}
    query_multi: dict[str, list[str]] = {}
    for key, value in _query_pairs(request.query):
        query_single[key] = value
        query_multi.setdefault(key, []).append(value)
    body, encoded = _body(request)
    host = names.get("host")
    domain = headers[host] if host is not None else "localhost"
    agent = names.get("user-agent")
    authorizer = (
        _encode(dict(request.authorizer))
        if request.authorizer is not None
        else '{"claims":null,"scopes":null}'
    )
    stage, path, route = request.stage, request.path, _text(request.route)
    request_id, method = _text(request.request_id), _text(request.method)
    return (
        f'{{"resource":{route},"path":{_text(path)},"httpMethod":{method}'
        f',"headers":{_encode(headers) if headers else "null"}'
        f',"multiValueHeaders":{_encode(multi_headers) if multi_headers else "null"}'
        f',"queryStringParameters":{_encode(query_single) if query_single else "null"}'
        f',"multiValueQueryStringParameters":{_encode(query_multi) if query_multi else "null"}'
        f',"requestContext":{{"accountId":{_text(request.account_id)}'
        f',"apiId":{_text(request.api_id)},"authorizer":{authorizer}'
        f',"domainName":{_text(domain)},"domainPrefix":{_text(domain.split(".", 1)[0])}'
        f',"extendedRequestId":{request_id},"httpMethod":{method}'
        f',"identity":{{"accessKey":null,"accountId":null,"apiKey":{_optional(request.api_key)}'
        f',"apiKeyId":{_optional(request.api_key_id)},"caller":null'
        f',"cognitoAuthenticationProvider":null,"cognitoAuthenticationType":null'
        f',"cognitoIdentityId":null,"cognitoIdentityPoolId":null,"principalOrgId":null'
        f',"sourceIp":{_text(request.source_ip)},"user":null'
        f',"userAgent":{_optional(headers[agent]) if agent is not None else "null"}'
        ',"userArn":null}'
        f',"path":{_text(f"/{stage}{path}" if stage else path)}'
        f',"protocol":{_text(request.protocol)},"requestId":{request_id}'
        f',"requestTime":"{_request_time(request.time)}"'  # digits, letters, "/", ":", "+"
        f',"requestTimeEpoch":{int(request.time * 1000)},"resourceId":null'
        f',"resourcePath":{route},"stage":{_text(stage)}}}'
        f',"pathParameters":{_object_or_null(request.path_parameters)}'
        f',"stageVariables":{_object_or_null(request.stage_variables)}'
        f',"body":{_optional(body)},"isBase64Encoded":{"true" if encoded else "false"}}}'
    ).encode()


def http_api_event_json(request: ProxyRequest) -> bytes:
    """:func:`http_api_event` as the JSON a function gets, written field by field (as
    :func:`rest_event_json`)."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in request.headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for key, value in _query_pairs(request.query):
        query[key] = f"{query[key]},{value}" if key in query else value
    if request.route == "$default":
        route_key = '"$default"'
    else:
        route_key = _text(f"{request.route_method or request.method} {request.route}")
    domain = headers.get("host", "localhost")
    body, encoded = _body(request)
    parts = [
        f'{{"version":"2.0","routeKey":{route_key},"rawPath":{_text(request.path)}'
        f',"rawQueryString":{_text(request.query)}'
    ]
    if cookies:
        parts.append(f',"cookies":{_encode(cookies)}')
    parts.append(f',"headers":{_encode(headers)}')
    if query:
        parts.append(f',"queryStringParameters":{_encode(query)}')
    authorizer = request.authorizer
    parts.append(
        f',"requestContext":{{"accountId":{_text(request.account_id)}'
        f',"apiId":{_text(request.api_id)}'
        + (f',"authorizer":{_encode(dict(authorizer))}' if authorizer is not None else "")
        + f',"domainName":{_text(domain)},"domainPrefix":{_text(domain.split(".", 1)[0])}'
        f',"http":{{"method":{_text(request.method)},"path":{_text(request.path)}'
        f',"protocol":{_text(request.protocol)},"sourceIp":{_text(request.source_ip)}'
        f',"userAgent":{_text(headers.get("user-agent", ""))}}}'
        f',"requestId":{_text(request.request_id)},"routeKey":{route_key}'
        f',"stage":{_text(request.stage or "$default")}'
        f',"time":"{_request_time(request.time)}"'  # digits, letters, "/", ":", "+"
        f',"timeEpoch":{int(request.time * 1000)}}}'
    )
    if body is not None:
        parts.append(f',"body":{_text(body)}')
    if request.path_parameters:
        parts.append(f',"pathParameters":{_encode(dict(request.path_parameters))}')
    parts.append(f',"isBase64Encoded":{"true" if encoded else "false"}')
    if request.stage_variables:
        parts.append(f',"stageVariables":{_encode(dict(request.stage_variables))}')
    parts.append("}")
    return "".join(parts).encode()


def _optional(value: str | None) -> str:
    return "null" if value is None else _text(value)


def _object_or_null(value: Mapping[str, str] | None) -> str:
    """A mapping as JSON, ``null`` when absent or empty."""
    return _encode(dict(value)) if value else "null"


def is_text_content_type(content_type: str | None) -> bool:
    """True for content types API Gateway passes as text (no content type: text)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media in _TEXT_TYPES
        or media.endswith("+json")
        or media.endswith("+xml")
    )


def _body(request: ProxyRequest) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    content_type = next(
        (v.decode("latin-1") for k, v in request.headers if k.lower() == b"content-type"), None
    )
    if is_text_content_type(content_type):
        try:
            return request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode("ascii"), True


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


_last_request_time: tuple[int, str] = (-1, "")


def _request_time(moment: float) -> str:
    """``12/Mar/2020:19:03:58 +0000`` (CLF, English month, UTC) of ``moment`` (epoch seconds);
    the text of the last second is kept (requests of the same second share it)."""
    global _last_request_time
    second = int(moment)
    if _last_request_time[0] == second:
        return _last_request_time[1]
    utc = datetime.fromtimestamp(second, UTC)
    text = f"{utc.day:02d}/{_MONTHS[utc.month - 1]}/{utc:%Y:%H:%M:%S} +0000"
    _last_request_time = (second, text)
    return text


# -- responses ------------------------------------------------------------------------------------


def rest_response(result: bytes) -> HttpResponse:
    """Map a payload 1.0 result; raises ``MalformedResponse`` like API Gateway's 502."""
    value = _json(result)
    if not isinstance(value, dict) or "statusCode" not in value:
        raise MalformedResponse("a REST API proxy result must be an object with statusCode")
    return _structured(value, multi=True)


def http_api_response(result: bytes) -> HttpResponse:
    """Map a payload 2.0 result, inferring a 200 JSON response when there is no statusCode."""
    value = _json(result)
    if isinstance(value, dict) and "statusCode" in value:
        return _structured(value, multi=False)
    body = value.encode() if isinstance(value, str) else result.strip()
    return HttpResponse(200, [(b"content-type", b"application/json")], body)


def _json(result: bytes) -> Any:
    try:
        return _loads(result)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"the function result is not JSON: {exc}") from exc


def _structured(value: dict[str, Any], *, multi: bool) -> HttpResponse:
    status = _status(value.get("statusCode"))
    headers: Headers = []
    single = _mapping(value.get("headers"), "headers")
    multiple = _mapping(value.get("multiValueHeaders"), "multiValueHeaders") if multi else {}
    multi_lower = {name.lower() for name in multiple}
    for name, item in single.items():
        if name.lower() in multi_lower:
            continue  # multiValueHeaders win for the same header
        headers.append((_header_name(name), _header_value(item)))
    for name, items in multiple.items():
        if not isinstance(items, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] must be a list")
        headers.extend((_header_name(name), _header_value(item)) for item in items)
    if not multi:
        cookies = value.get("cookies")
        if cookies is not None:
            if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
                raise MalformedResponse("cookies must be a list of strings")
            headers.extend((b"set-cookie", _header_value(cookie)) for cookie in cookies)
    body = value.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode()
    else:
        raise MalformedResponse("body must be a string")
    encoded = value.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise MalformedResponse("isBase64Encoded must be a boolean")
    if encoded and data:
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedResponse("body is not valid base64") from exc
    return HttpResponse(status, headers, data)


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise MalformedResponse("statusCode must be an integer")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)  # "200" as Lambda accepts it; not "²", which isdigit() also allows
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise MalformedResponse(f"statusCode {value!r} is not an HTTP status")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedResponse(f"{what} must be an object")
    return value


_HEADER_NAMES: dict[str, bytes] = {}
"""Header names seen valid (functions answer with the same few names again and again)."""


def _header_name(name: str) -> bytes:
    known = _HEADER_NAMES.get(name)
    if known is not None:
        return known
    if not name or any(c in name for c in "\r\n: \t") or not name.isascii():
        raise MalformedResponse(f"invalid header name {name!r}")
    if len(_HEADER_NAMES) >= 1024:
        _HEADER_NAMES.clear()
    encoded = _HEADER_NAMES[name] = name.encode("ascii")
    return encoded


def _header_value(value: Any) -> bytes:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise MalformedResponse(f"invalid header value {value!r}")
    if "\r" in text or "\n" in text:
        raise MalformedResponse("header values cannot contain line breaks")
    return text.encode("utf-8")
