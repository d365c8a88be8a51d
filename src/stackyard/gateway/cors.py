"""CORS: preflight requests answered before anything else checks them, and the
``Access-Control-*`` headers added to the answers of routes that have a policy.

A route's :class:`CorsPolicy` comes from the stack (``api.cors``; a function event's ``cors``;
a serverless.yml ``provider.httpApi.cors``). A preflight — ``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method`` — is matched against the route of the *requested* method and
answered 204 by the gateway itself, so it never needs credentials and never reaches the
upstream; an origin the policy does not allow gets no CORS headers (the browser refuses).
Requests without an ``Origin`` header pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field

from ..asgi import ASGIApp, Message, Receive, Scope, Send
from .errors import GatewayError
from .proxy import request_path
from .steps import RouterSource

DEFAULT_HEADERS = (
    "content-type",
    "x-amz-date",
    "authorization",
    "x-api-key",
    "x-amz-security-token",
    "x-amz-user-agent",
)


@dataclass(frozen=True)
class CorsPolicy:
    """Which cross-origin requests a route allows (``*`` = any)."""

    origins: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ("*",)
    headers: tuple[str, ...] = DEFAULT_HEADERS
    expose_headers: tuple[str, ...] = ()
    credentials: bool = False
    max_age: int | None = None
    _origins: frozenset[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_origins", frozenset(o.encode() for o in self.origins))

    def allowed_origin(self, origin: bytes) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None if not allowed."""
        if b"*" in self._origins:
            return origin if self.credentials else b"*"
        return origin if origin in self._origins else None

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return []
        out = [(b"access-control-allow-origin", allowed)]
        if allowed != b"*":
            out.append((b"vary", b"Origin"))
        if self.credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        if self.expose_headers:
            out.append((b"access-control-expose-headers", ", ".join(self.expose_headers).encode()))
        return out

    def preflight_headers(
        self, origin: bytes, method: bytes, requested_headers: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        out = self.response_headers(origin)
        if not out:
            return out
        methods = method if "*" in self.methods else ", ".join(self.methods).encode()
        out.append((b"access-control-allow-methods", methods))
        if "*" in self.headers:
            allow_headers = requested_headers or b""
        else:
            allow_headers = ", ".join(self.headers).encode()
        if allow_headers:
            out.append((b"access-control-allow-headers", allow_headers))
        if self.max_age is not None:
            out.append((b"access-control-max-age", str(self.max_age).encode()))
        return out


class Cors:
    """The CORS step; sits before the route match (see the module docstring)."""

    def __init__(self, app: ASGIApp, source: RouterSource) -> None:
        self.app = app
        self.source = source

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        for name, value in scope["headers"]:
            if name == b"origin":
                return self._cross_origin(scope, receive, send, value)
        return self.app(scope, receive, send)  # not a CORS request

    async def _cross_origin(
        self, scope: Scope, receive: Receive, send: Send, origin: bytes
    ) -> None:
        requested_method = requested_headers = None
        for name, value in scope["headers"]:
            if name == b"access-control-request-method":
                requested_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value
        if scope["method"] == "OPTIONS" and requested_method is not None:
            policy = self._policy_for(requested_method.decode("latin-1").upper(), scope)
            if policy is not None:
                headers = policy.preflight_headers(origin, requested_method, requested_headers)
                headers.append((b"content-length", b"0"))
                await send({"type": "http.response.start", "status": 204, "headers": headers})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                match = scope.get("state", {}).get("route")
                policy = match.route.cors if match is not None else None
                if policy is not None:
                    extra = policy.response_headers(origin)
                    if extra:
                        message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _policy_for(self, method: str, scope: Scope) -> CorsPolicy | None:
        try:
            match = self.source.router.match(method, request_path(scope), scope["headers"])
        except GatewayError:
            return None
        return match.route.cors
