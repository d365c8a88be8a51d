"""Outbound propagation for urllib, requests, aiohttp and httpx.

Every outbound request gets :func:`~stackyard.sdk.outbound_headers` — ``traceparent`` (+
``tracestate``), ``x-correlation-id`` and ``x-correlation-counter`` (+1) — and, with
OpenTelemetry, a CLIENT span (``<METHOD> <path>``, the call's parent in the trace). Headers the
caller set are never overwritten, and a request that already carries a ``traceparent`` is left
alone (so two layers of hooks never make two spans).

Explicit, no patching (each needs only its own library, imported when called):

- ``sdk.urlopen(request_or_url, data=None, timeout=...)`` — ``urllib.request.urlopen`` with a
  CLIENT span;
- ``sdk.requests_session()`` — a ``requests.Session`` whose ``send`` does the above;
- ``aiohttp.ClientSession(trace_configs=[sdk.aiohttp_trace_config()])``;
- ``httpx.Client(event_hooks=sdk.httpx_event_hooks())`` / ``AsyncClient(event_hooks=
  sdk.httpx_event_hooks(asynchronous=True))`` — headers only (an event hook has no "after"
  callback that always runs, so no span).

Global, by :func:`instrument` (what ``sdk.setup(instrument=...)`` calls; undone by
:func:`uninstrument`), each only when the library is importable. **This patches** three library
methods, as OpenTelemetry's own instrumentations do, and says so here:

- ``urllib``: no patch — ``urllib.request.install_opener`` with a handler adding the headers
  (no span; it replaces an opener installed before);
- ``requests``: ``requests.Session.send`` is wrapped (span + headers);
- ``aiohttp``: ``aiohttp.ClientSession.__init__`` is wrapped to append the trace config;
- ``httpx``: ``httpx.Client.send`` and ``httpx.AsyncClient.send`` are wrapped (span + headers).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .context import correlation_headers
from .tracing import INSTRUMENTATION_NAME, outbound_headers, state, suppressed

if TYPE_CHECKING:
    import aiohttp
    from opentelemetry.trace import Span

logger = logging.getLogger("stackyard.sdk")

LIBRARIES = ("aiohttp", "httpx", "requests", "urllib")
_PATCHED = "__stackyard_sdk_original__"


class ClientCall:
    """One outbound call: its CLIENT span (None without OpenTelemetry) and the headers to send."""

    __slots__ = ("headers", "span")

    def __init__(self, method: str, url: str) -> None:
        self.span: Span | None = None
        self.headers: dict[str, str] = {}
        if suppressed():  # an exporter's own call
            return
        if not state.api:
            self.headers = outbound_headers()
            return
        from urllib.parse import urlsplit

        from opentelemetry import propagate, trace

        method = method.upper()
        attributes: dict[str, str] = {"http.method": method, "http.url": url}
        gateway = os.environ.get("STACKYARD_GATEWAY_URL")
        if gateway and url.startswith(gateway.rstrip("/") + "/"):
            attributes["peer.service"] = "gateway"
        tracer = trace.get_tracer(INSTRUMENTATION_NAME)
        self.span = tracer.start_span(
            f"{method} {urlsplit(url).path or '/'}",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
        )
        propagate.inject(self.headers, context=trace.set_span_in_context(self.span))
        self.headers.update(correlation_headers())

    def end(self, status: int | None = None, error: BaseException | None = None) -> None:
        span = self.span
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        if status is not None:
            span.set_attribute("http.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


def _has(headers: Any, name: str) -> bool:
    try:
        return name in headers  # case-insensitive in requests, aiohttp and httpx
    except TypeError:
        return False


def _missing(headers: Any, extra: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in extra.items() if not _has(headers, name)}


@contextmanager
def client_span(method: str, url: str) -> Iterator[dict[str, str]]:
    """A CLIENT span around one outbound call made with any client; yields the headers to
    send (naming this span as the parent)::

        with sdk.client_span("GET", url) as headers:
            response = my_client.get(url, headers=headers)
    """
    call = ClientCall(method, url)
    try:
        yield call.headers
    except BaseException as exc:
        call.end(error=exc)
        raise
    call.end()


# -- urllib ---------------------------------------------------------------------------------


class PropagationHandler(urllib.request.BaseHandler):
    """A urllib handler adding :func:`outbound_headers` to each request (headers only)."""

    handler_order = 100

    def http_request(self, request: urllib.request.Request) -> urllib.request.Request:
        if not request.has_header("Traceparent") and not suppressed():
            for name, value in outbound_headers().items():
                if not request.has_header(name.capitalize()):
                    request.add_header(name, value)
        return request

    https_request = http_request


_opener = urllib.request.build_opener(PropagationHandler())


def urlopen(
    url: str | urllib.request.Request,
    data: bytes | None = None,
    timeout: float | None = None,
) -> Any:
    """``urllib.request.urlopen`` in a CLIENT span, with the context headers added. The span
    ends once the response head arrived (or the call failed; an HTTP error status is an
    ``HTTPError``, recorded with its status)."""
    request = url if isinstance(url, urllib.request.Request) else urllib.request.Request(url)
    if data is not None:
        request.data = data
    call = ClientCall(request.get_method(), request.full_url)
    for name, value in call.headers.items():
        if not request.has_header(name.capitalize()):
            request.add_header(name, value)
    try:
        if timeout is None:
            response = _opener.open(request)
        else:
            response = _opener.open(request, timeout=timeout)
    except urllib.request.HTTPError as exc:
        call.end(exc.code, exc if exc.code >= 500 else None)
        raise
    except BaseException as exc:
        call.end(error=exc)
        raise
    call.end(getattr(response, "status", None))
    return response


# -- requests -------------------------------------------------------------------------------


def _traced_send(send: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(send)
    def traced(session: Any, request: Any, **kwargs: Any) -> Any:
        if _has(request.headers, "traceparent"):
            return send(session, request, **kwargs)
        call = ClientCall(request.method or "GET", request.url)
        request.headers.update(_missing(request.headers, call.headers))
        try:
            response = send(session, request, **kwargs)
        except BaseException as exc:
            call.end(error=exc)
            raise
        call.end(response.status_code)
        return response

    setattr(traced, _PATCHED, send)
    return traced


def requests_session() -> Any:
    """A ``requests.Session`` that propagates the context (and makes CLIENT spans)."""
    requests = importlib.import_module("requests")

    class Session(requests.Session):  # type: ignore[misc, name-defined]
        send = _traced_send(requests.Session.send)

    return Session()


# -- aiohttp --------------------------------------------------------------------------------


def aiohttp_trace_config() -> aiohttp.TraceConfig:
    """An ``aiohttp.TraceConfig`` adding the context headers (and a CLIENT span) per request."""
    import aiohttp

    async def on_start(
        session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        ctx.stackyard_call = None
        if _has(params.headers, "traceparent"):
            return
        call = ClientCall(params.method, str(params.url))
        params.headers.update(_missing(params.headers, call.headers))
        ctx.stackyard_call = call

    async def on_end(
        session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        call: ClientCall | None = getattr(ctx, "stackyard_call", None)
        if call is not None:
            call.end(params.response.status)

    async def on_error(
        session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestExceptionParams
    ) -> None:
        call: ClientCall | None = getattr(ctx, "stackyard_call", None)
        if call is not None:
            call.end(error=params.exception)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_error)
    config.freeze()
    setattr(config, "stackyard_sdk", True)  # noqa: B010 (how the patched __init__ finds it)
    return config


# -- httpx ----------------------------------------------------------------------------------


def httpx_event_hooks(asynchronous: bool = False) -> dict[str, list[Callable[..., Any]]]:
    """``event_hooks`` for ``httpx.Client`` (or ``AsyncClient`` with ``asynchronous=True``)
    adding the context headers (no span; see the module docstring)."""

    def add(request: Any) -> None:
        if not _has(request.headers, "traceparent") and not suppressed():
            request.headers.update(_missing(request.headers, outbound_headers()))

    if not asynchronous:
        return {"request": [add]}

    async def add_async(request: Any) -> None:
        add(request)

    return {"request": [add_async]}


def _traced_httpx_send(send: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(send)
    def traced(client: Any, request: Any, **kwargs: Any) -> Any:
        if _has(request.headers, "traceparent"):
            return send(client, request, **kwargs)
        call = ClientCall(request.method, str(request.url))
        request.headers.update(_missing(request.headers, call.headers))
        try:
            response = send(client, request, **kwargs)
        except BaseException as exc:
            call.end(error=exc)
            raise
        call.end(response.status_code)
        return response

    setattr(traced, _PATCHED, send)
    return traced


def _traced_httpx_send_async(send: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(send)
    async def traced(client: Any, request: Any, **kwargs: Any) -> Any:
        if _has(request.headers, "traceparent"):
            return await send(client, request, **kwargs)
        call = ClientCall(request.method, str(request.url))
        request.headers.update(_missing(request.headers, call.headers))
        try:
            response = await send(client, request, **kwargs)
        except BaseException as exc:
            call.end(error=exc)
            raise
        call.end(response.status_code)
        return response

    setattr(traced, _PATCHED, send)
    return traced


# -- global hooks ---------------------------------------------------------------------------


def _patch(owner: Any, attribute: str, wrap: Callable[[Any], Any]) -> None:
    current = getattr(owner, attribute)
    if not hasattr(current, _PATCHED):
        setattr(owner, attribute, wrap(current))


def _unpatch(owner: Any, attribute: str) -> None:
    current = getattr(owner, attribute)
    original = getattr(current, _PATCHED, None)
    if original is not None:
        setattr(owner, attribute, original)


def _wrap_session_init(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        configs = list(kwargs.get("trace_configs") or [])
        if not any(getattr(config, "stackyard_sdk", False) for config in configs):
            configs.append(aiohttp_trace_config())
        kwargs["trace_configs"] = configs
        init(self, *args, **kwargs)

    setattr(patched, _PATCHED, init)
    return patched


def _import(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def instrument(libraries: Iterable[str] = LIBRARIES) -> list[str]:
    """Install the global hooks of the module docstring for those of ``libraries`` that are
    importable; returns the ones installed. Idempotent."""
    done: list[str] = []
    for name in libraries:
        if name == "urllib":
            urllib.request.install_opener(_opener)
        elif name == "requests" and (module := _import("requests")) is not None:
            _patch(module.Session, "send", _traced_send)
        elif name == "aiohttp" and (module := _import("aiohttp")) is not None:
            _patch(module.ClientSession, "__init__", _wrap_session_init)
        elif name == "httpx" and (module := _import("httpx")) is not None:
            _patch(module.Client, "send", _traced_httpx_send)
            _patch(module.AsyncClient, "send", _traced_httpx_send_async)
        elif name not in LIBRARIES:
            raise ValueError(f"unknown library to instrument: {name!r} (known: {LIBRARIES})")
        else:
            continue
        done.append(name)
    return done


def uninstrument() -> None:
    """Undo :func:`instrument` (urllib gets a default opener back)."""
    urllib.request.install_opener(None)
    if (module := _import("requests")) is not None:
        _unpatch(module.Session, "send")
    if (module := _import("aiohttp")) is not None:
        _unpatch(module.ClientSession, "__init__")
    if (module := _import("httpx")) is not None:
        _unpatch(module.Client, "send")
        _unpatch(module.AsyncClient, "send")
