"""The gateway's exception tree and the one place that turns it into JSON error responses.

Every error the gateway itself produces is a :class:`GatewayError` carrying its HTTP status and
an error code; :func:`send_error` writes it as ``{"error": {"code": ..., "message": ...}}``.

- :class:`NoRoute` (404 ``NotFound``): no route's path template matches the request path.
- :class:`MethodNotAllowed` (405 ``MethodNotAllowed``, ``Allow`` header): a path matches,
  its methods don't.
- :class:`BodyTooLarge` (413 ``PayloadTooLarge``): the request body exceeds the limit.
- :class:`NoHealthyUpstream` (503 ``ServiceUnavailable``): the route's service has no passing
  endpoint in the current table.
- :class:`UpstreamUnavailable` (502 ``BadGateway``): every try failed to connect or the
  upstream broke the connection before answering.
- :class:`UpstreamTimeout` (504 ``GatewayTimeout``): the upstream did not answer in time;
  :class:`UpstreamConnectTimeout` when the connection itself could not be opened in time.
- :class:`GatewayNotStarted` (503 ``GatewayNotStarted``): a request came before ``start()``.
- :class:`InvalidRoute` (raised by ``Gateway.update`` / the router compiler, never per request):
  a route's path template is malformed; the current table stays in force.

The API-management steps raise subclasses defined beside them, answered the same way:

- :class:`~.validation.BadRequestParameters` / :class:`~.validation.BadRequestBody` (400, with
  ``error.details``): a request that fails its route's validation;
- :class:`~.auth.errors.Unauthorized` (401, ``WWW-Authenticate``): no or bad credentials;
- :class:`~.auth.errors.Forbidden` (403 ``Forbidden``): credentials that may not call the route
  (missing scope, an authorizer's deny) and, from the API-key step,
  :class:`~.usage.MissingApiKey` and :class:`~.usage.InvalidApiKey`;
- :class:`~.throttle.Throttled` (429 ``TooManyRequests``) and :class:`~.quota.QuotaExceeded`
  (429 ``LimitExceeded``), both with ``Retry-After``;
- :class:`~.auth.errors.AuthorizerFailure` (500 ``AuthorizerFailure``): the authorizer failed.

Third-party errors (httptools, OS) are translated at the boundary with ``raise ... from exc``.
Steps raise these only before ``http.response.start`` was sent; after that a failure can only
abort the response.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import ClassVar

from ..asgi import Send


class GatewayError(Exception):
    """Base of every error the gateway answers itself."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.default_message())
        self.message = message or self.default_message()

    def default_message(self) -> str:
        return "internal gateway error"

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return []

    def body_fields(self) -> dict[str, object]:
        """More members of the ``error`` object (e.g. validation ``details``)."""
        return {}


class InvalidRoute(GatewayError, ValueError):
    """A route's path template or methods are malformed (raised when compiling a table)."""

    code = "InvalidRoute"


class NoRoute(GatewayError):
    status = 404
    code = "NotFound"

    def default_message(self) -> str:
        return "no route matches the request path"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "MethodNotAllowed"

    def __init__(self, allowed: Iterable[str], message: str = "") -> None:
        self.allowed = tuple(sorted(set(allowed)))
        super().__init__(message)

    def default_message(self) -> str:
        return "method not allowed on this path; allowed: " + ", ".join(self.allowed)

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"allow", ", ".join(self.allowed).encode("latin-1"))]


class BodyTooLarge(GatewayError):
    status = 413
    code = "PayloadTooLarge"

    def __init__(self, limit: int, message: str = "") -> None:
        self.limit = limit
        super().__init__(message)

    def default_message(self) -> str:
        return f"request body exceeds {self.limit} bytes"


class NoHealthyUpstream(GatewayError):
    status = 503
    code = "ServiceUnavailable"

    def __init__(self, service: str, message: str = "") -> None:
        self.service = service
        super().__init__(message)

    def default_message(self) -> str:
        return f"service {self.service!r} has no healthy endpoint"


class GatewayNotStarted(GatewayError):
    status = 503
    code = "GatewayNotStarted"

    def default_message(self) -> str:
        return "the gateway is not started"


class UpstreamError(GatewayError):
    """An upstream call failed (base of the 502/504 errors)."""

    status = 502
    code = "BadGateway"

    def default_message(self) -> str:
        return "the upstream failed"


class UpstreamUnavailable(UpstreamError):
    def default_message(self) -> str:
        return "the upstream refused or dropped the connection"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "GatewayTimeout"

    def default_message(self) -> str:
        return "the upstream did not answer in time"


class UpstreamConnectTimeout(UpstreamTimeout):
    def default_message(self) -> str:
        return "the connection to the upstream could not be opened in time"


_JSON = (b"content-type", b"application/json")


def error_body(exc: GatewayError) -> bytes:
    """The JSON body for ``exc``."""
    error = {"code": exc.code, "message": exc.message, **exc.body_fields()}
    return json.dumps({"error": error}, separators=(",", ":")).encode()


async def send_error(send: Send, exc: GatewayError) -> None:
    """Answer ``exc`` as a complete JSON response (the response must not have started)."""
    body = error_body(exc)
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *exc.extra_headers()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
