"""The token guard: the console and the admin APIs ask for a token beyond loopback.

When the control port listens on an address other than loopback, requests to the console
(``/_console``) and to the node's admin API (``/_stackyard``) must carry the node's token:
``Authorization: Bearer <token>``, the ``stackyard_token`` cookie, or ``?token=<token>`` on a
console page (which sets the cookie and redirects to the same page without it). The AWS,
Consul, OTLP and Zipkin APIs and ``/_stackyard/health`` stay open, as their clients cannot send
it. The token is kept in the data dir (``console-token``, mode 0600) so bookmarks and scripts
survive restarts.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "stackyard_token"
GUARDED = ("/_console", "/_stackyard")
OPEN = frozenset({"/_stackyard/health"})  # load balancers and probes ask without a token
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def load_token(data_dir: Path) -> str:
    """The node's token, created on first use."""
    path = data_dir / "console-token"
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        token = secrets.token_urlsafe(24)
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(token + "\n")
    return token


def needs_token(host: str) -> bool:
    return host not in LOOPBACK and not host.startswith("127.")


class TokenGuard:
    """Pure ASGI middleware: 401 (JSON) for a guarded path without the right token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["type"] != "http" or not path.startswith(GUARDED) or path in OPEN:
            await self.app(scope, receive, send)
            return
        if self._carries_token(scope):
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        given = query.pop("token", "").encode()
        if given and scope["path"].startswith("/_console") and self._matches(given):
            await _set_cookie_and_redirect(scope, send, given.decode(), urlencode(query))
            return
        await _unauthorized(send)

    def _carries_token(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return self._matches(value[7:].strip())
            if name == b"cookie":
                morsel = SimpleCookie(value.decode("latin-1")).get(COOKIE)
                if morsel is not None and self._matches(morsel.value.encode()):
                    return True
        return False

    def _matches(self, given: bytes) -> bool:
        return hmac.compare_digest(given, self.token)


async def _set_cookie_and_redirect(scope: Scope, send: Send, token: str, query: str) -> None:
    location = scope["path"] + (f"?{query}" if query else "")
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _unauthorized(send: Send) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "Unauthorized",
                "message": "this node needs its token (printed by `stackyard up`): "
                "Authorization: Bearer <token>, or ?token=<token> on a console page",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
