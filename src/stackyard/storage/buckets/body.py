"""Request bodies of S3 uploads: read from ASGI, ``aws-chunked`` decoded, checked.

SDKs send object bodies in three ways: plain (``x-amz-content-sha256`` the body's SHA-256 hex,
or ``UNSIGNED-PAYLOAD``), or ``aws-chunked`` (``x-amz-content-sha256:
STREAMING-AWS4-HMAC-SHA256-PAYLOAD``, ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` and the other
``STREAMING-*`` values, or ``Content-Encoding: aws-chunked``): ``<hex size>[;chunk-signature=…]
\\r\\n<data>\\r\\n`` … ``0\\r\\n`` then trailer lines (``x-amz-checksum-crc32:<base64>``) and an
empty line. :class:`ChunkedDecoder` undoes that incrementally; chunk signatures are not checked
(header-signed requests are accepted unverified, see the API docs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ...asgi import Receive
from .errors import IncompleteBody, InvalidRequest

_MAX_LINE = 8192


class ChunkedDecoder:
    """Incremental ``aws-chunked`` decoder: ``feed`` bytes, get data; ``trailers`` at the end."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._remaining = 0  # data bytes left in the current chunk
        self._state = "size"  # size | data | crlf | trailer | done
        self.trailers: dict[str, str] = {}

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self._buffer += data
        buffer = self._buffer
        while buffer and self._state != "done":
            if self._state == "data":
                take = min(self._remaining, len(buffer))
                out.append(bytes(buffer[:take]))
                del buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "crlf"
                continue
            if self._state == "crlf":
                if len(buffer) < 2:
                    break
                if buffer[:2] != b"\r\n":
                    raise InvalidRequest("aws-chunked: a chunk does not end with CRLF")
                del buffer[:2]
                self._state = "size"
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > _MAX_LINE:
                    raise InvalidRequest("aws-chunked: a chunk header line is too long")
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._state == "size":
                self._size_line(line)
            else:
                self._trailer_line(line)
        return out

    def _size_line(self, line: bytes) -> None:
        text = line.split(b";", 1)[0].strip()
        try:
            size = int(text, 16)
        except ValueError:
            raise InvalidRequest("aws-chunked: a chunk size is not hexadecimal") from None
        if size < 0:
            raise InvalidRequest("aws-chunked: a negative chunk size")
        if size == 0:
            self._state = "trailer"
        else:
            self._remaining, self._state = size, "data"

    def _trailer_line(self, line: bytes) -> None:
        if not line.strip():
            self._state = "done"
            return
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise InvalidRequest("aws-chunked: a trailer line without ':'")
        self.trailers[name.strip().lower()] = value.strip()

    def finish(self) -> None:
        """Raise unless the body ended where the encoding says it does."""
        if self._state == "trailer" and not self._buffer:
            self._state = "done"  # some senders omit the final empty line
        if self._state != "done":
            raise IncompleteBody("aws-chunked: the body ended inside a chunk")


async def raw_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as the server hands it over; IncompleteBody if the client goes away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody()
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def decoded_chunks(receive: Receive, decoder: ChunkedDecoder | None) -> AsyncIterator[bytes]:
    """The object bytes of a request body (``decoder`` given: aws-chunked)."""
    async for chunk in raw_chunks(receive):
        if decoder is None:
            yield chunk
            continue
        for data in decoder.feed(chunk):
            yield data
    if decoder is not None:
        decoder.finish()


async def read_small(receive: Receive, limit: int) -> bytes:
    """A whole small body (an XML document); InvalidRequest past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in raw_chunks(receive):
        size += len(chunk)
        if size > limit:
            raise InvalidRequest(f"the request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
