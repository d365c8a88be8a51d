"""The ``function`` integration: a request becomes an API Gateway proxy event, the function's
result becomes the response.

REST routes (payload 1.0) and HTTP API routes (payload 2.0) are built and mapped back by
:mod:`stackyard.functions.events`, field by field as API Gateway does. A function error, a
malformed result or an unknown function answers 502 ``{"message": "Internal server error"}``;
a function at its concurrency limit answers 429 ``{"message": "Too Many Requests"}``.
The request body is read whole (bounded by the gateway's body limit): a function gets it in one
piece anyway.

With tracing on, the function call is a CLIENT span (``invoke <function>``, remote service =
the function) and the runtime gets its span context (parsed: the trace id, that span's id, the
sampling decision) as the parent; the event's headers carry the same context as a
``traceparent`` (and ``tracestate``/``b3`` when the client sent them) in place of the
client's, so an instrumented handler can continue the trace.

ASGI servers hand header names over lower-cased, so the client's own spelling is lost; REST
events (whose ``headers`` keep the client's spelling on AWS) get the canonical ``Title-Case``
form most HTTP/1.1 clients send (``Content-Type``, ``X-Api-Key``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol

from ..asgi import Receive, Scope, Send
from ..functions.errors import FunctionError, MalformedResponse, TooManyRequests
from ..functions.events import (
    INTERNAL_ERROR_BODY,
    ProxyRequest,
    http_api_event_json,
    http_api_response,
    new_request_id,
    rest_event_json,
    rest_response,
)
from .body import read_request_body
from .errors import GatewayError
from .proxy import request_path
from .router import RouteMatch
from .tracecontext import TRACE_HEADERS, SpanContext, new_span_id

if TYPE_CHECKING:
    from .auth import AuthContext
    from .keys import ApiKey
    from .tracing import RequestTrace

logger = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")
_CORRELATION_HEADERS = frozenset({b"x-correlation-id", b"x-correlation-counter"})
_CORRELATION_AND_TRACE_HEADERS = _CORRELATION_HEADERS | TRACE_HEADERS
_TOO_MANY = b'{"message": "Too Many Requests"}'


class InvocationResult(Protocol):
    @property
    def payload(self) -> bytes: ...

    @property
    def function_error(self) -> str | None: ...


class FunctionInvoker(Protocol):
    """What the gateway needs of the function runtime.

    ``context``: the span the call continues (the gateway's CLIENT span, or its SERVER span
    when the request is not sampled), None when the gateway does not trace.
    ``payload_is_json``: the payload is JSON the caller encoded itself (the runtime need not
    parse it again to check it)."""

    async def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        context: SpanContext | None = None,
        payload_is_json: bool = False,
    ) -> InvocationResult: ...


class FunctionIntegration:
    """The innermost step for ``function`` routes (see the module docstring)."""

    def __init__(self, invoker: FunctionInvoker, *, max_body_size: int) -> None:
        self._invoker = invoker
        self._max_body = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match: RouteMatch[object] = scope["state"]["route"]
        route = match.route
        rest = route.payload_version == "1.0"
        length, chunked = _framing(scope)
        body = None
        if length is not None or chunked:  # else the request has no body to wait for
            body = await read_request_body(
                receive, length, chunked, self._max_body, buffer_limit=self._max_body
            )
        assert body is None or isinstance(body, bytes)
        path = request_path(scope)
        base = route.base_path
        if rest and base and (path == base or path.startswith(base + "/")):
            path = path[len(base) :] or "/"
        client = scope.get("client")
        state = scope["state"]
        trace: RequestTrace | None = state.get("trace")
        # the correlation values the correlation step chose, as an HTTP upstream gets them (and
        # with tracing, the trace headers of this call in place of the client's)
        replaced = _CORRELATION_HEADERS if trace is None else _CORRELATION_AND_TRACE_HEADERS
        headers: list[tuple[bytes, bytes]] = [h for h in scope["headers"] if h[0] not in replaced]
        headers.append((b"x-correlation-id", state["correlation_id"].encode()))
        headers.append((b"x-correlation-counter", str(state["correlation_counter"]).encode()))
        auth: AuthContext | None = state.get("auth")
        key: ApiKey | None = state.get("api_key")
        call: _Call | None = None
        context: SpanContext | None = None
        if trace is not None:
            # unsampled: propagated under the SERVER span, no CLIENT span (nor invocation span)
            call = _Call(trace, route.function) if trace.sampled else None
            parent = trace.span_id if call is None else call.span_id
            context = (trace.trace_id, parent, trace.sampled)
            headers += trace.outbound(parent)
        request = ProxyRequest(
            method=scope["method"],
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=[(_title(n), v) for n, v in headers] if rest else headers,
            body=body or b"",
            source_ip=str(client[0]) if client else "127.0.0.1",
            stage=route.stage or "$default",
            route=route.resource or route.path,
            route_method="ANY" if "ANY" in route.methods else scope["method"],
            path_parameters=match.params or None,
            stage_variables=route.stage_variables or None,
            authorizer=auth.event_authorizer(route.payload_version) if auth is not None else None,
            request_id=new_request_id(),
            api_key=state.get("api_key_value") if key is not None else None,
            api_key_id=key.name if key is not None else None,
        )
        event = rest_event_json(request) if rest else http_api_event_json(request)
        if call is None:
            await self._invoke(route.function, event, context, rest, send)
            return
        error: str | None = None
        call.start()
        try:
            call.status = await self._invoke(route.function, event, context, rest, send)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            call.finish(error)

    async def _invoke(
        self, function: str, payload: bytes, context: SpanContext | None, rest: bool, send: Send
    ) -> int:
        """Invoke ``function`` and answer; returns the status answered."""
        try:
            result = await self._invoker.invoke(
                function, payload, context=context, payload_is_json=True
            )
        except TooManyRequests:
            await _answer(send, 429, [_JSON], _TOO_MANY)
            return 429
        except GatewayError:
            raise
        except FunctionError as exc:
            logger.warning("function %s could not be invoked: %s", function, exc)
            await _answer(send, 502, [_JSON], INTERNAL_ERROR_BODY)
            return 502
        if result.function_error:
            await _answer(send, 502, [_JSON], INTERNAL_ERROR_BODY)
            return 502
        try:
            response = rest_response(result.payload) if rest else http_api_response(result.payload)
        except MalformedResponse as exc:
            logger.warning("function %s returned a malformed response: %s", function, exc)
            await _answer(send, 502, [_JSON], INTERNAL_ERROR_BODY)
            return 502
        await _answer(send, response.status, response.headers, response.body)
        return response.status


class _Call:
    """The CLIENT span of one traced function call."""

    __slots__ = ("began", "function", "span_id", "start_ns", "status", "trace")

    def __init__(self, trace: RequestTrace, function: str) -> None:
        self.trace = trace
        self.function = function
        self.span_id = new_span_id()
        self.status = 0
        self.start_ns = 0
        self.began = 0

    def start(self) -> None:
        self.start_ns = time.time_ns()
        self.began = time.perf_counter_ns()

    def finish(self, error: str | None) -> None:
        self.trace.client_call(
            self.span_id, self.function, self.start_ns, self.began, self.status, error
        )


_TITLES: dict[bytes, bytes] = {}
"""Header names already title-cased (clients send the same few names again and again)."""


def _title(name: bytes) -> bytes:
    titled = _TITLES.get(name)
    if titled is None:
        if len(_TITLES) >= 1024:
            _TITLES.clear()
        titled = b"-".join(part[:1].upper() + part[1:] for part in name.split(b"-"))
        _TITLES[name] = titled
    return titled


def _framing(scope: Scope) -> tuple[int | None, bool]:
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = True
    return (None if chunked else length), chunked


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [h for h in headers if h[0] != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
