"""Request bodies: small ones buffered (so a retry can re-send them), large ones streamed.

:func:`read_request_body` enforces the gateway's body limit: a declared Content-Length over the
limit is refused before anything is read or proxied; a body without a length (chunked) is
counted as it streams. Bodies up to ``buffer_limit`` bytes are read whole and come back as
``bytes``; larger ones come back as a :class:`StreamedBody`, which the upstream connection
(:mod:`.h1`) consumes as an async iterable. A streamed body can be re-sent only while nothing
of it has been sent (``started``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..asgi import Receive
from .errors import BodyTooLarge

BUFFER_LIMIT = 64 * 1024


class ClientDisconnected(Exception):
    """The client went away while its request body was being read."""


class StreamedBody:
    """The rest of a request body, read from ``receive`` while it is sent upstream."""

    __slots__ = ("_head", "_limit", "_more", "_receive", "_received", "error", "started")

    def __init__(self, receive: Receive, head: list[bytes], received: int, limit: int) -> None:
        self._receive = receive
        self._head = head
        self._received = received
        self._limit = limit
        self._more = True
        self.started = False
        self.error: BaseException | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self.started:
            raise RuntimeError("a streamed request body can be sent only once")
        head, self._head = self._head, []
        for chunk in head:
            self.started = True
            yield chunk
        receive = self._receive
        while self._more:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.error = ClientDisconnected()
                raise self.error
            chunk = message.get("body", b"")
            self._more = message.get("more_body", False)
            if chunk:
                self._received += len(chunk)
                if self._received > self._limit:
                    self.error = BodyTooLarge(self._limit)
                    raise self.error
                self.started = True
                yield chunk


async def read_request_body(
    receive: Receive,
    content_length: int | None,
    chunked: bool,
    limit: int,
    buffer_limit: int = BUFFER_LIMIT,
) -> bytes | StreamedBody | None:
    """The request body to send upstream (None when the request has none)."""
    if content_length is None and not chunked:
        return None
    if content_length is not None:
        if content_length > limit:
            raise BodyTooLarge(limit)
        if content_length == 0:
            return b""
        if content_length > buffer_limit:
            return StreamedBody(receive, [], 0, limit)
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if chunk:
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
        if not more:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if received > buffer_limit:
            return StreamedBody(receive, chunks, received, limit)
