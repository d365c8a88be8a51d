"""One keep-alive HTTP/1.1 connection to an upstream: writes a request, parses the response.

:class:`H1Connection` is an ``asyncio.Protocol`` with an ``httptools.HttpResponseParser``
(llhttp, C). It carries one exchange at a time and is itself the response object the proxy
reads: after :meth:`H1Connection.exchange` returns, ``status`` and ``headers`` (a list of
``(name, value)`` bytes pairs, names lower-cased) are set and the body arrives as it comes:
:meth:`H1Connection.read_all` for a small one, :meth:`H1Connection.read_chunk` chunk by chunk
(everything buffered so far in one piece; reading from the socket pauses while more than
``high_water`` bytes wait for the consumer, and resumes once it took them). Bodies framed by
Content-Length, chunked transfer-encoding or the end of the connection are handled; a HEAD
request, 1xx, 204 and 304 answers have none.

The request head and a buffered body go out in one ``transport.write``; a streamed body
(:class:`~stackyard.gateway.body.StreamedBody`) is sent by a task the connection owns, as is
or chunk-framed, honouring the transport's write flow control, while the response is awaited.

Every wait for upstream bytes is bounded by the try's timeout (``UpstreamTimeout``), kept by
the connection's one :class:`~stackyard.deadline.Deadline` (not a timer per wait). A
connection that breaks raises ``UpstreamUnavailable`` — or :class:`StaleConnection` when it was
reused from the pool and broke before a single response byte (the keep-alive race: the upstream
closed it while it was idle; the pool then retries once on a fresh connection). A connection is
reusable only when its exchange finished cleanly, the request body was sent whole and neither
side asked to close (``Connection: close``, HTTP/1.0 without keep-alive, read-until-close).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from ..deadline import Deadline
from .errors import UpstreamTimeout, UpstreamUnavailable

if TYPE_CHECKING:
    from .body import StreamedBody
    from .pool import EndpointPool

CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class StaleConnection(UpstreamUnavailable):
    """A reused keep-alive connection broke before any response byte (safe to re-send)."""


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class H1Connection(asyncio.Protocol):
    """One upstream connection; see the module docstring."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_deadline",
        "_drain_waiter",
        "_error",
        "_head_only",
        "_headers_done",
        "_informational",
        "_loop",
        "_paused",
        "_replace_parser",
        "_waiter",
        "_write_paused",
        "_writer",
        "active",
        "closed",
        "complete",
        "content_length",
        "got_bytes",
        "headers",
        "high_water",
        "idle_since",
        "keep_alive",
        "owner",
        "parser",
        "reused",
        "status",
        "transport",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        high_water: int,
        owner: EndpointPool | None = None,
    ) -> None:
        self._loop = loop
        self.high_water = high_water
        self.owner = owner
        self.parser = HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.active = False
        self.reused = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = Deadline(loop, self._timed_out)
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._writer: asyncio.Task[None] | None = None
        self._reset(False)

    def _reset(self, head_only: bool) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self._headers_done = False
        self._informational = False
        self._replace_parser = False
        self._head_only = head_only
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._error: UpstreamUnavailable | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # nothing is expected on an idle connection (a late 408, garbage): drop it
            self.close()
            return
        if self.complete:  # bytes after the whole answer: the connection is out of step
            self.keep_alive = False
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except (HttpParserError, HttpParserUpgrade) as exc:
            self._fail(UpstreamUnavailable(f"bad response from the upstream: {exc!r}"))
            self.close()
            return
        if self._replace_parser:  # after a HEAD answer (llhttp would wait for its body)
            self._replace_parser = False
            self.parser = HttpResponseParser(self)
        if self._buffered > self.high_water and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        _wake(self._waiter)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost finishes the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and not self.complete:
            if self._headers_done and self._until_close():
                self.complete = True  # the body was delimited by the end of the connection
                self.keep_alive = False
            elif self._error is None:
                if self.reused and not self.got_bytes:
                    self._error = StaleConnection(f"keep-alive connection lost: {exc!r}")
                else:
                    self._error = UpstreamUnavailable(f"upstream connection lost: {exc!r}")
        _wake(self._waiter)
        _wake(self._drain_waiter)
        self._deadline.cancel()
        if self.owner is not None:
            self.owner.lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        _wake(self._drain_waiter)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:  # a second answer to one request: see on_headers_complete
            return
        name = name.lower()
        if name == b"content-length":
            try:
                self.content_length = int(value)
            except ValueError:
                self.content_length = None
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.complete:  # more than one answer to one request: never reuse the connection
            self.keep_alive = False
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # interim answer (103 Early Hints...): the real one follows
            self._informational = True
            self.headers = []
            self.content_length = None
            return
        self.status = status
        self._headers_done = True
        if self._head_only:
            self.keep_alive = self.parser.should_keep_alive()
            self.complete = True
            self._replace_parser = True

    def on_body(self, body: bytes) -> None:
        if self.complete:  # bytes after a HEAD answer: the connection is out of step
            self.keep_alive = False
            return
        self._chunks.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if not self.complete:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()

    # -- the exchange -------------------------------------------------------------------------

    def _until_close(self) -> bool:
        if self.content_length is not None:
            return False
        for name, value in self.headers:
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True

    def _fail(self, error: UpstreamUnavailable) -> None:
        if self._error is None:
            self._error = error
        _wake(self._waiter)

    async def _wait(self, wait_limit: float) -> None:
        """Waits until something happens on the connection (bytes, end, error) or
        ``wait_limit`` seconds passed (``UpstreamTimeout``)."""
        loop = self._loop
        waiter = loop.create_future()
        self._waiter = waiter
        self._deadline.expire_at(loop.time() + wait_limit)
        try:
            await waiter
        finally:
            self._waiter = None
            self._deadline.clear()

    def _timed_out(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(UpstreamTimeout())

    async def exchange(
        self,
        head: bytes,
        body: bytes | StreamedBody | None,
        chunked: bool,
        wait_limit: float,
        head_only: bool,
    ) -> None:
        """Sends one request and waits for the response head (see the module docstring)."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise StaleConnection("keep-alive connection already closed")
        self._reset(head_only)
        self.active = True
        if body is None:
            transport.write(head)
        elif isinstance(body, bytes):
            if len(body) <= 16384:
                transport.write(head + body)
            else:
                transport.writelines((head, body))
        else:
            transport.write(head)
            self._writer = self._loop.create_task(self._send_body(body, chunked))
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            if self.closed:
                raise UpstreamUnavailable("upstream connection lost")
            await self._wait(wait_limit)

    async def _send_body(self, body: StreamedBody, chunked: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            async for chunk in body:
                if self.closed:
                    return
                if chunked:
                    transport.writelines((b"%x\r\n" % len(chunk), chunk, CRLF))
                else:
                    transport.write(chunk)
                if self._write_paused:
                    await self._drain()
            if chunked and not self.closed:
                transport.write(LAST_CHUNK)
        except Exception as exc:  # the client's body failed (413, went away): give up the try
            self._fail(UpstreamUnavailable(f"request body failed: {exc!r}"))
            self.close()

    async def _drain(self) -> None:
        while self._write_paused and not self.closed:
            waiter = self._loop.create_future()
            self._drain_waiter = waiter
            try:
                await waiter
            finally:
                self._drain_waiter = None

    async def read_chunk(self, wait_limit: float) -> bytes:
        """The body bytes received so far (waiting for some when none are); b"" at the end."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self._chunks = []
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            if self.closed:
                raise UpstreamUnavailable("upstream connection lost")
            await self._wait(wait_limit)

    async def read_all(self, wait_limit: float) -> bytes:
        """The whole body (for small bodies)."""
        while not self.complete:
            if self._error is not None:
                raise self._error
            if self.closed:
                raise UpstreamUnavailable("upstream connection lost")
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            await self._wait(wait_limit)
        chunks = self._chunks
        self._chunks = []
        self._buffered = 0
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def finish(self) -> bool:
        """Ends the exchange; True if the connection can carry another request."""
        self.active = False
        writer, self._writer = self._writer, None
        writer_done = writer is None or writer.done()
        if not writer_done and writer is not None:
            writer.cancel()
        reusable = (
            self.complete
            and self.keep_alive
            and writer_done
            and self._error is None
            and not self.closed
            and not self._paused
        )
        self._chunks = []
        self.headers = []
        return reusable

    def release(self) -> None:
        """Ends the exchange and gives the connection back to its pool (or closes it)."""
        if self.owner is not None:
            self.owner.put(self)
        else:
            self.finish()
            self.close()

    def close(self) -> None:
        self.active = False
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def abort(self) -> None:
        self.active = False
        transport = self.transport
        if transport is not None:
            transport.abort()
