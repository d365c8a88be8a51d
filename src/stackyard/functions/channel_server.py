"""The node's end of the private channel of a Python worker (frame format: ``channel.py``).

A :class:`ChannelConnection` is one more way into a worker's
:class:`~stackyard.functions.runtime_api.RuntimeApiServer`, beside its HTTP Runtime API: ``NEXT``
and every ``RESULT``/``ERROR`` frame mean "waiting for the next invocation", an ``INVOKE`` frame
delivers one. What the worker sends outside the format (an unknown kind, a truncated field, a
result for a request id it does not hold) is a violation: the channel closes and
``on_violation`` (the worker kills its process) is called; so is a runtime that closes its end
and has not exited ``EXIT_GRACE`` seconds later. A result larger than ``channel.MAX_FRAME``
answers the invocation with Lambda's ``Function.ResponseSizeTooLarge`` error; its bytes are
skipped and the worker stays usable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from .channel import (
    ERROR,
    HEADER,
    ID_HEAD,
    INIT,
    INVOKE,
    INVOKE_HEAD,
    MAX_FRAME,
    NEXT,
    RESULT,
    FrameError,
)

if TYPE_CHECKING:
    from .runtime_api import Invocation, RuntimeApiServer

_HEADER_SIZE = HEADER.size
EXIT_GRACE = 0.5
"""Seconds a worker that closed its channel gets to exit before it is killed."""


def invoke_frame(
    request_id: str,
    deadline_ms: int,
    arn: str,
    trace_id: str,
    client_context: str,
    cognito_identity: str,
    payload: bytes,
) -> bytes:
    """The ``INVOKE`` frame of one invocation (empty strings for absent fields)."""
    rid, function_arn, trace = request_id.encode(), arn.encode(), trace_id.encode()
    context, identity = client_context.encode(), cognito_identity.encode()
    head = INVOKE_HEAD.pack(
        deadline_ms, len(rid), len(function_arn), len(trace), len(context), len(identity)
    )
    size = len(head) + len(rid) + len(function_arn) + len(trace) + len(context) + len(identity)
    return b"".join(
        (
            HEADER.pack(size + len(payload), INVOKE),
            head,
            rid,
            function_arn,
            trace,
            context,
            identity,
            payload,
        )
    )


def parse_result(body: bytes) -> tuple[str, bytes]:
    """(request id, document) of a ``RESULT`` or ``ERROR`` body."""
    if len(body) < ID_HEAD.size:
        raise FrameError("result frame shorter than its header")
    (length,) = ID_HEAD.unpack_from(body)
    end = ID_HEAD.size + length
    if end > len(body):
        raise FrameError("request id beyond the frame")
    try:
        request_id = body[ID_HEAD.size : end].decode()
    except UnicodeDecodeError as exc:
        raise FrameError("request id is not UTF-8") from exc
    return request_id, body[end:]


def size_error(size: int) -> bytes:
    """Lambda's error document for a result beyond the limit."""
    message = (
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
        f"({MAX_FRAME} bytes)."
    )
    return json.dumps(
        {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge", "stackTrace": []}
    ).encode()


class ChannelConnection(asyncio.Protocol):
    """The node's end of one worker's socket pair (see the module docstring)."""

    def __init__(self, server: RuntimeApiServer, on_violation: Callable[[str], None]) -> None:
        self.server = server
        self.on_violation = on_violation
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._skip = 0
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server.connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        closed_by_us = self._closing
        self._closing = True
        self.transport = None
        self.server.connection_lost(self)
        if not closed_by_us:
            # a runtime without its channel is of no use; give an exiting process the time to
            # be seen exiting (its exit status is the better report) before calling it broken
            asyncio.get_running_loop().call_later(
                EXIT_GRACE, self.on_violation, "the runtime closed its channel"
            )

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def deliver(self, invocation: Invocation) -> None:
        if self.transport is None or self._closing:
            return
        self.transport.write(
            invoke_frame(
                invocation.request_id,
                invocation.deadline_ms,
                invocation.function_arn,
                invocation.trace_id,
                invocation.client_context or "",
                invocation.cognito_identity or "",
                invocation.payload,
            )
        )

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip :]
            self._skip = 0
        buffer = self._buffer
        if not buffer and len(data) >= _HEADER_SIZE:  # the usual case: one whole frame
            length, kind = HEADER.unpack_from(data)
            if len(data) == _HEADER_SIZE + length:
                self._dispatch(kind, data[_HEADER_SIZE:])
                return
        buffer += data
        while len(buffer) >= _HEADER_SIZE and not self._closing:
            length, kind = HEADER.unpack_from(buffer)
            if length > MAX_FRAME:
                self._oversized(kind, length)
                return
            end = _HEADER_SIZE + length
            if len(buffer) < end:
                return
            body = bytes(buffer[_HEADER_SIZE:end])
            del buffer[:end]
            self._dispatch(kind, body)

    def _dispatch(self, kind: int, body: bytes) -> None:
        if self._closing:
            return
        server = self.server
        if kind in (RESULT, ERROR):
            try:
                request_id, document = parse_result(body)
            except FrameError as exc:
                self._violation(str(exc))
                return
            if not server.complete(request_id, kind == ERROR, document):
                self._violation(f"result for request id {request_id!r}, which it does not hold")
                return
            server.wait_next(self)
        elif kind == NEXT:
            server.wait_next(self)
        elif kind == INIT:
            server.report_init_error(body)
        else:
            self._violation(f"unknown frame kind {kind}")

    def _oversized(self, kind: int, length: int) -> None:
        if kind in (RESULT, ERROR):
            current = self.server.current
            if current is not None:
                self.server.complete(current.request_id, True, size_error(length))
            # the buffer never holds a whole frame this large: data is parsed as it arrives
            self._skip = length - (len(self._buffer) - _HEADER_SIZE)
            self._buffer.clear()
            self.server.wait_next(self)
            return
        self._violation(f"frame of {length} bytes (kind {kind})")

    def _violation(self, reason: str) -> None:
        self._buffer.clear()
        self.close()
        self.on_violation(reason)
