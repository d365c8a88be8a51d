"""Inbound helpers: WSGI and ASGI middleware opening a SERVER span per request (continuing the
caller's ``traceparent``/B3) with the correlation context set, so the app's log lines and
outbound calls carry both.

    app = sdk.WsgiMiddleware(flask_app)          # Flask, Django's WSGI handler, ...
    app = sdk.AsgiMiddleware(starlette_app)      # Starlette, FastAPI, ...

Span name: ``<METHOD> <path>`` (``name=`` a callable of the environ/scope to choose another,
e.g. a route template); attributes ``http.method``, ``http.target``, ``http.status_code``,
``correlation.id``; 5xx or an exception marks it as an error.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from .tracing import RequestSpan, server_span

WsgiStartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], WsgiStartResponse], Iterable[bytes]]
AsgiScope = MutableMapping[str, Any]
AsgiReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
AsgiSend = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[AsgiScope, AsgiReceive, AsgiSend], Awaitable[None]]


def _environ_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return headers


class _Closing:
    """The WSGI response iterable; ends the span when the server closes it."""

    def __init__(
        self,
        result: Iterable[bytes],
        manager: AbstractContextManager[RequestSpan],
    ) -> None:
        self._result = result
        self._manager = manager

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._manager.__exit__(*sys.exc_info())


class WsgiMiddleware:
    """Wraps a WSGI app (see the module docstring). The span ends when the server closes the
    response iterable (after the body was sent)."""

    def __init__(self, app: WsgiApp, name: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.app = app
        self.name = name

    def __call__(self, environ: dict[str, Any], start_response: WsgiStartResponse) -> Any:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "") or "/")
        query = environ.get("QUERY_STRING")
        target = f"{environ.get('SCRIPT_NAME', '')}{path}" + (f"?{query}" if query else "")
        name = self.name(environ) if self.name else f"{method} {path}"
        manager = server_span(
            _environ_headers(environ),
            name,
            attributes={"http.method": method, "http.target": target},
        )
        request = manager.__enter__()

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            code = status.split(" ", 1)[0]
            if code.isdigit():
                request.set_status_code(int(code))
            return start_response(status, headers, *exc)

        try:
            result = self.app(environ, start)
        except BaseException:
            manager.__exit__(*sys.exc_info())
            raise
        return _Closing(result, manager)


class AsgiMiddleware:
    """Wraps an ASGI app (see the module docstring); other scope types pass through."""

    def __init__(self, app: AsgiApp, name: Callable[[AsgiScope], str] | None = None) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: AsgiScope, receive: AsgiReceive, send: AsgiSend) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        path = str(scope.get("path", "/"))
        query = scope.get("query_string") or b""
        target = path + ("?" + query.decode("latin-1") if query else "")
        name = self.name(scope) if self.name else f"{method} {path}"
        with server_span(
            scope.get("headers") or [],
            name,
            attributes={"http.method": method, "http.target": target},
        ) as request:

            async def send_status(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    request.set_status_code(int(message["status"]))
                await send(message)

            await self.app(scope, receive, send_status)
