"""The authorizer step (after the route match): runs the route's authorizer, if any, and hands
what it learned on.

A route without an authorizer passes straight through (the only work: dropping a
client-sent ``x-stackyard-authorizer`` header, so no service behind the gateway ever sees a
forged one). With one, the authorizer either raises (401/403/500, answered by the error step)
or returns an :class:`~.context.AuthContext`, which goes in ``scope["state"]["auth"]`` for the
later steps and the function integration, and in the ``x-stackyard-authorizer`` header for an
``http_proxy`` upstream. CORS preflights never get here: the CORS step answers them first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from ...asgi import ASGIApp, Receive, Scope, Send
from .context import AUTHORIZER_HEADER
from .errors import AuthorizerFailure
from .registry import Authorizers

logger = logging.getLogger(__name__)


class Authorize:
    """The pipeline step (see the module docstring)."""

    def __init__(self, app: ASGIApp, authorizers: Authorizers) -> None:
        self.app = app
        self.authorizers = authorizers

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["state"]["route"].route.policy.authorizer is not None:
            return self._authorize(scope, receive, send)
        headers = scope["headers"]
        for pair in headers:
            if pair[0] == AUTHORIZER_HEADER:
                scope["headers"] = [h for h in headers if h[0] != AUTHORIZER_HEADER]
                break
        return self.app(scope, receive, send)

    async def _authorize(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = scope["state"]["route"]
        route = match.route
        name = route.policy.authorizer
        headers = scope["headers"]
        authorizer = self.authorizers.get(name)
        if authorizer is None:
            logger.error("route %s names the unknown authorizer %r", route.path, name)
            raise AuthorizerFailure()
        auth = await authorizer.authorize(scope, match)
        scope["state"]["auth"] = auth
        headers = [h for h in headers if h[0] != AUTHORIZER_HEADER]
        if route.integration == "http_proxy":
            headers.append((AUTHORIZER_HEADER, auth.header_value()))
        scope["headers"] = headers
        await self.app(scope, receive, send)
