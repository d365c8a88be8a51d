"""Interactive API docs on the gateway: ``/_docs`` (Swagger UI) and ``/_docs/openapi.json``.

:class:`ApiDocs` is a pipeline step just before the route match. A request whose path is
``/_docs`` or below it is answered here only when no route of the table claims it (a user
route — even a ``/{proxy+}`` catch-all — always wins); every other request costs one prefix
check. Served: ``GET``/``HEAD`` ``/_docs`` (the HTML page), ``/_docs/openapi.json`` (the live
API, :func:`~.openapi.export_openapi`, rebuilt when the table or the ``api`` settings change)
and the vendored Swagger UI files (``static/swagger-ui``: swagger-ui-dist, Apache-2.0, see its
NOTICE); no CDN.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib import resources

from ..asgi import ASGIApp, Receive, Scope, Send
from .errors import GatewayError, MethodNotAllowed, NoRoute
from .proxy import request_path
from .steps import RouterSource

PREFIX = "/_docs"
_STATIC = "static/swagger-ui"

PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API docs</title>
<link rel="stylesheet" href="/_docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/_docs/swagger-ui-bundle.js"></script>
<script src="/_docs/init.js"></script>
</body>
</html>
"""

INIT = b"""window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/_docs/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
};
"""

_HTML = b"text/html; charset=utf-8"
_JS = b"text/javascript; charset=utf-8"
_CSS = b"text/css; charset=utf-8"
_TEXT = b"text/plain; charset=utf-8"
_ASSETS = {
    "/swagger-ui.css": ("swagger-ui.css", _CSS),
    "/swagger-ui-bundle.js": ("swagger-ui-bundle.js", _JS),
    "/LICENSE": ("LICENSE", _TEXT),
    "/NOTICE": ("NOTICE", _TEXT),
}


_loaded: dict[str, bytes] = {}


async def asset(name: str) -> bytes:
    """A vendored Swagger UI file (read once, on a thread: the bundle is over 1 MB)."""
    data = _loaded.get(name)
    if data is None:
        path = resources.files("stackyard.gateway").joinpath(_STATIC, name)
        data = _loaded[name] = await asyncio.to_thread(path.read_bytes)
    return data


class ApiDocs:
    """The docs step (see the module docstring); ``document`` gives the OpenAPI JSON."""

    def __init__(self, app: ASGIApp, source: RouterSource, document: Callable[[], bytes]) -> None:
        self.app = app
        self.source = source
        self.document = document

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        path: str = scope["path"]
        if not path.startswith(PREFIX) or self._claimed(scope):
            return self.app(scope, receive, send)
        return self._serve(scope, send, path[len(PREFIX) :])

    async def _serve(self, scope: Scope, send: Send, rest: str) -> None:
        if rest in ("", "/", "/index.html"):
            body, content_type, cache_control = PAGE, _HTML, b"no-cache"
        elif rest == "/init.js":
            body, content_type, cache_control = INIT, _JS, b"no-cache"
        elif rest == "/openapi.json":
            body, content_type, cache_control = self.document(), b"application/json", b"no-cache"
        elif rest in _ASSETS:
            name, content_type = _ASSETS[rest]
            body, cache_control = await asset(name), b"public, max-age=86400"
        else:
            raise NoRoute()
        if scope["method"] not in ("GET", "HEAD"):
            raise MethodNotAllowed(("GET", "HEAD"))
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", cache_control),
            (b"x-content-type-options", b"nosniff"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def _claimed(self, scope: Scope) -> bool:
        """Whether a route of the table matches this path (for any method)."""
        try:
            self.source.router.match(scope["method"], request_path(scope), scope["headers"])
        except MethodNotAllowed:
            return True
        except GatewayError:
            return False
        return True
