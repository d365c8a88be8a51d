"""The ``http_proxy`` integration: sends the request to a balanced endpoint, streams the answer.

One pass per request: rewrite the headers, read (or start streaming) the body, then up to
``1 + route.retries`` tries, each on an endpoint the request has not tried yet when the service
has one. A try is retried

- always after a connection failure (refused, reset, dropped before a response) or a connect
  timeout;
- for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) after a 502/503/504 answer or a
  read timeout;

and never once a streamed (unbuffered) request body has started to go out. The last 5xx answer
is passed to the client as is; when no try got an answer the gateway answers 502 or 504 itself.
Every try feeds passive outlier detection (connection failures, timeouts and 5xx count as
failures) and the in-flight counter least-request balancing reads.

Responses stream: a small one with a Content-Length (≤ 64 KiB) is read whole and sent in one
message, anything else is relayed chunk by chunk as it arrives.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..asgi import ASGIApp, Receive, Scope, Send
from .balancer import ServicePool
from .body import BUFFER_LIMIT, StreamedBody, read_request_body
from .endpoints import EndpointState
from .errors import (
    GatewayError,
    GatewayNotStarted,
    NoHealthyUpstream,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from .h1 import H1Connection
from .headers import client_response_headers, upstream_request_head
from .router import RouteMatch
from .table import RouteSpec
from .tracecontext import new_span_id
from .upstream import UpstreamClient

if TYPE_CHECKING:
    from .tracing import RequestTrace

logger = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
_NO_BODY_STATUSES = frozenset({204, 304})
_METHODS = {m: m.encode() for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}
_CHUNKED = b"transfer-encoding: chunked\r\n"


class ResponseAborted(Exception):
    """The upstream failed after the response started; the client connection is aborted."""


class RouteTarget:
    """What the proxy needs for one route in one table (built when the table is compiled)."""

    __slots__ = ("app", "pool", "retries", "route", "strip_prefix", "timeout")

    def __init__(self, route: RouteSpec, pool: ServicePool, app: ASGIApp) -> None:
        self.route = route
        self.pool = pool
        self.app = app  # the route's steps after the match, ending in its integration
        self.strip_prefix = route.strip_prefix.rstrip("/")
        self.retries = max(0, route.retries)
        self.timeout = route.timeout


def request_path(scope: Scope) -> str:
    """The request path as the client sent it (still percent-encoded), without the query."""
    raw = scope.get("raw_path")
    if raw:
        path: str = raw.decode("latin-1")
        query = path.find("?")
        return path if query < 0 else path[:query]
    return quote(scope["path"], safe="/:@!$&'()*+,;=~")


def upstream_target(scope: Scope, strip_prefix: str) -> str:
    """Path and query for the upstream: the route's prefix removed, the query string kept."""
    path = request_path(scope)
    if strip_prefix and path.startswith(strip_prefix):
        rest = path[len(strip_prefix) :]
        if not rest or rest[0] == "/":
            path = rest or "/"
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


class _Try:
    """One upstream try of a traced request: its CLIENT span's id and clock readings."""

    __slots__ = ("attempt", "began", "endpoint", "name", "span_id", "start_ns")

    def __init__(self, name: str, attempt: int, endpoint: EndpointState) -> None:
        self.name = name
        self.attempt = attempt
        self.endpoint = endpoint
        self.span_id = new_span_id()
        self.start_ns = time.time_ns()
        self.began = time.perf_counter_ns()

    def finish(
        self, trace: RequestTrace, service: str, status: int | None, error: str | None
    ) -> None:
        ep = self.endpoint
        trace.client_try(
            self.span_id,
            self.name,
            self.start_ns,
            self.began,
            service,
            ep.address,
            ep.port,
            self.attempt,
            status,
            error,
        )


class HttpProxy:
    """The integration step (innermost ASGI app): proxies to the matched route's service."""

    def __init__(
        self, client: UpstreamClient, *, max_body_size: int, buffer_limit: int = BUFFER_LIMIT
    ) -> None:
        self._client = client
        self._max_body = max_body_size
        self._buffer_limit = buffer_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["state"]
        match: RouteMatch[RouteTarget] = state["route"]
        target = match.target
        pool = target.pool
        if not pool.endpoints:
            raise NoHealthyUpstream(pool.service)
        if not self._client.started:
            raise GatewayNotStarted()
        trace: RequestTrace | None = state.get("trace")
        head = upstream_request_head(
            scope, state["correlation_id"], state["correlation_counter"], traced=trace is not None
        )
        body: bytes | StreamedBody | None = None
        fields = head.fields
        if head.content_length is not None or head.chunked:
            body = await read_request_body(
                receive, head.content_length, head.chunked, self._max_body, self._buffer_limit
            )
        if body is not None and head.content_length is None:
            if isinstance(body, bytes):  # a chunked body small enough to be read whole
                fields += b"content-length: %d\r\n" % len(body)
            else:
                fields += _CHUNKED
        method: str = scope["method"]
        method_b = _METHODS.get(method) or method.encode("latin-1")
        start = b"%s %s" % (
            method_b,
            upstream_target(scope, target.strip_prefix).encode("latin-1"),
        )
        if trace is not None:
            if trace.sampled:
                await self._traced(scope, send, trace, method, start, fields, body, head.chunked)
                return
            fields += trace.outbound_fields(trace.span_id)  # propagated, no CLIENT span
        resp, endpoint, _ = await self._exchange(method, start, fields, body, head.chunked, target)
        try:
            await self._relay(resp, method, target.timeout, send)
        finally:
            endpoint.in_flight -= 1
            resp.release()

    async def _traced(
        self,
        scope: Scope,
        send: Send,
        trace: RequestTrace,
        method: str,
        start: bytes,
        fields: bytes,
        body: bytes | StreamedBody | None,
        chunked: bool,
    ) -> None:
        target: RouteTarget = scope["state"]["route"].target
        resp, endpoint, last = await self._exchange(
            method, start, fields, body, chunked, target, trace
        )
        error: str | None = None
        status = resp.status
        try:
            await self._relay(resp, method, target.timeout, send)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            endpoint.in_flight -= 1
            resp.release()
            if last is not None:
                last.finish(trace, target.pool.service, status, error)

    async def _exchange(
        self,
        method: str,
        start: bytes,
        fields: bytes,
        body: bytes | StreamedBody | None,
        chunked: bool,
        target: RouteTarget,
        trace: RequestTrace | None = None,
    ) -> tuple[H1Connection, EndpointState, _Try | None]:
        pool = target.pool
        detector = pool.detector
        client = self._client
        idempotent = method in IDEMPOTENT
        head_only = method == "HEAD"
        streamed = body if isinstance(body, StreamedBody) else None
        wait_limit = target.timeout
        tries = target.retries + 1
        tried: list[EndpointState] = []
        error: GatewayError | None = None
        this: _Try | None = None
        name = f"{method} {target.route.path}"
        for attempt in range(tries):
            endpoint = pool.pick(tried)
            if endpoint is None:
                raise NoHealthyUpstream(pool.service)
            endpoint.in_flight += 1
            extra = fields
            if trace is not None:
                this = _Try(name, attempt + 1, endpoint)
                extra = fields + trace.outbound_fields(this.span_id)
            try:
                conns = client.pool(endpoint.address, endpoint.port)
                resp = await conns.request(start, extra, body, chunked, wait_limit, head_only)
            except UpstreamError as exc:
                endpoint.in_flight -= 1
                if this is not None and trace is not None:
                    this.finish(trace, pool.service, None, type(exc).__name__)
                if streamed is not None and streamed.error is not None:
                    raise streamed.error from exc  # 413, or the client went away
                if isinstance(exc, UpstreamConnectTimeout):
                    error, retryable = exc, True
                elif isinstance(exc, UpstreamTimeout):
                    error, retryable = exc, idempotent
                else:
                    error, retryable = exc, True
                detector.failure(endpoint, pool.endpoints)
                logger.debug("try %d to %s failed: %r", attempt + 1, endpoint.key, exc)
                if not retryable or (streamed is not None and streamed.started):
                    raise error from exc
                tried.append(endpoint)
                continue
            except BaseException as exc:
                endpoint.in_flight -= 1
                if this is not None and trace is not None:
                    this.finish(trace, pool.service, None, type(exc).__name__)
                raise
            status = resp.status
            if status >= 500:
                detector.failure(endpoint, pool.endpoints)
                if (
                    idempotent
                    and status in RETRY_STATUSES
                    and attempt + 1 < tries
                    and (streamed is None or not streamed.started)
                ):
                    resp.release()
                    endpoint.in_flight -= 1
                    tried.append(endpoint)
                    if this is not None and trace is not None:
                        this.finish(trace, pool.service, status, None)
                    continue
            elif endpoint.consecutive_failures:
                detector.success(endpoint)
            return resp, endpoint, this
        raise error or UpstreamUnavailable()

    async def _relay(self, resp: H1Connection, method: str, wait_limit: float, send: Send) -> None:
        status = resp.status
        headers = client_response_headers(resp.headers)
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        length = resp.content_length
        if resp.complete or (length is not None and length <= self._buffer_limit):
            data = await resp.read_all(wait_limit)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data, "more_body": False})
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        try:
            while True:
                chunk = await resp.read_chunk(wait_limit)
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            raise ResponseAborted(f"upstream failed while streaming the response: {exc!r}") from exc
        await send({"type": "http.response.body", "body": b"", "more_body": False})
