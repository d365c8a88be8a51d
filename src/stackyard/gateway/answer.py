"""What a request was answered, noted once for every step that observes it.

The correlation, access-log and metrics steps each need the answer's status (the access log
also its body size, the correlation step a few headers of its own on it). Rather than each
wrapping ``send`` — three wrappers, three extra awaits per message — the outermost of them
calls :func:`observe`: it puts an :class:`Answer` in ``scope["state"]["answer"]`` and returns
the one ``send`` that keeps it up to date; a step further in gets the same ``Answer`` back and
its ``send`` unchanged. Every message of the answer passes through that one wrapper, so when a
step's inner app returns, the ``Answer`` holds what was sent (status 0: nothing was started).
"""

from __future__ import annotations

from collections.abc import Awaitable

from ..asgi import Message, Scope, Send


class Answer:
    """The status and body bytes sent so far, and the headers to add to the answer's start."""

    __slots__ = ("headers", "size", "status")

    def __init__(self) -> None:
        self.status = 0
        self.size = 0
        self.headers: tuple[tuple[bytes, bytes], ...] = ()


def observe(scope: Scope, send: Send) -> tuple[Answer, Send]:
    """The request's :class:`Answer` and the ``send`` to pass on (see the module docstring)."""
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    answer: Answer | None = state.get("answer")
    if answer is not None:
        return answer, send
    answer = state["answer"] = Answer()

    def noting(message: Message) -> Awaitable[None]:  # returns the server's send, not awaiting it
        kind = message["type"]
        if kind == "http.response.body":
            answer.size += len(message.get("body", b""))
        elif kind == "http.response.start":
            answer.status = message["status"]
            if answer.headers:
                headers = message.get("headers")
                if isinstance(headers, list):
                    headers.extend(answer.headers)
                else:
                    message["headers"] = [*(headers or ()), *answer.headers]
        return send(message)

    return answer, noting
