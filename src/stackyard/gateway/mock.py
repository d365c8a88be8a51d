"""The ``mock`` integration: the gateway answers with the route's configured response itself
(OpenAPI ``x-amazon-apigateway-integration`` of type ``mock``, stub routes)."""

from __future__ import annotations

import json

from ..asgi import Receive, Scope, Send
from ..config.api import MockConfig


def mock_answer(mock: MockConfig) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a mock: a JSON body unless ``body`` is a string."""
    if mock.body is None:
        body, content_type = b"", None
    elif isinstance(mock.body, str):
        body, content_type = mock.body.encode(), "text/plain; charset=utf-8"
    else:
        body, content_type = json.dumps(mock.body).encode(), "application/json"
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in mock.headers.items()]
    if content_type is not None and not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", content_type.encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    return mock.status, headers, body


class MockIntegration:
    """Innermost ASGI app for ``integration == "mock"`` routes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mock = scope["state"]["route"].route.mock
        status, headers, body = mock_answer(mock if mock is not None else MockConfig())
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
