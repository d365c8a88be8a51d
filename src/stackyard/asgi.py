"""ASGI type aliases shared by the gateway and the control-plane apps.

An ASGI app is any callable returning an awaitable. The gateway's steps that only act before
the next step (look at the request, set state, wrap ``send``) are plain methods that return
the next step's awaitable (``return self.app(scope, receive, send)``) rather than coroutines
awaiting it: a request's coroutine chain then holds a frame only for the steps that act after
the next one returns (error answers, access log, metrics, spans), and every suspension and
resumption of the request crosses fewer frames. Such a step raises its errors (404, 403, 429)
from the call itself; the error step's ``await`` sees them the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
