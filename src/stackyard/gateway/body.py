"""Bodies on their way through the gateway: request bodies read, buffered or streamed, and
answers held back whole by the steps that need their whole body.

:func:`read_request_body` enforces the gateway's body limit: a declared Content-Length over the
limit is refused before anything is read or proxied; a body without a length (chunked) is
counted as it streams. Bodies up to ``buffer_limit`` bytes are read whole and come back as
``bytes`` (so a retry can re-send them); larger ones come back as a :class:`StreamedBody`,
which the upstream connection (:mod:`.h1`) consumes as an async iterable. A streamed body can
be re-sent only while nothing of it has been sent (``started``).

:func:`read_body` reads a whole request body (up to the limit) for a step that must look at it
(validation, transforms); :func:`replay` hands the same bytes on to the next step.
:class:`HeldAnswer` holds an answer back until its whole body is known, up to a limit, and
streams it on unchanged beyond (the response cache, response transforms).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..asgi import Message, Receive, Scope, Send
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


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body (at most ``limit`` bytes: BodyTooLarge beyond)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then defers to the original one."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class HeldAnswer:
    """An answer held back until its whole body is known, up to ``limit`` bytes.

    A step gives an ``http.response.start`` to :meth:`hold` and each following message to
    :meth:`feed` (which passes on what is not a held body, and gives the rest to :meth:`add`).
    When the last one arrives within the limit, ``add`` returns the start and the whole body,
    for the step to send (rewritten or not). When the body grows past the limit, ``add`` sends
    the start and what it held, unchanged, and the rest of the answer passes straight on
    (``held`` is false again).
    """

    __slots__ = ("_chunks", "_limit", "_send", "_size", "_start")

    def __init__(self, send: Send, limit: int) -> None:
        self._send = send
        self._limit = limit
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def held(self) -> bool:
        """Whether an answer is being held (its body messages go to :meth:`add`)."""
        return self._start is not None

    def hold(self, start: Message) -> None:
        self._start = start

    async def feed(self, message: Message) -> tuple[Message, bytes] | None:
        """:meth:`add` for a body message of a held answer; any other message (nothing held,
        or not a body) is sent on at once and None returned."""
        if self._start is None or message["type"] != "http.response.body":
            await self._send(message)
            return None
        return await self.add(message)

    async def add(self, message: Message) -> tuple[Message, bytes] | None:
        """The start and the whole body once complete; None while more is to come, or once the
        answer went past the limit (and was sent on)."""
        start = self._start
        assert start is not None, "no answer is held"
        chunk = message.get("body", b"")
        self._chunks.append(chunk)
        self._size += len(chunk)
        more = message.get("more_body", False)
        if self._size <= self._limit and more:
            return None
        self._start = None
        body, self._chunks = b"".join(self._chunks), []
        if self._size <= self._limit:
            return start, body
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body, "more_body": more})
        return None
