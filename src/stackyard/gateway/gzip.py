"""The gzip step: answers compressed for clients that accept gzip (``api.gzip``).

With ``api.gzip`` set (:class:`~stackyard.config.api.GzipConfig`), an answer is compressed when
the request's ``Accept-Encoding`` allows gzip (``q`` > 0, or ``*``), the answer has no
``Content-Encoding`` yet, its status has a body (not 1xx/204/304, not HEAD) and is not a byte
range (206: its ``Content-Range`` counts bytes of the uncompressed body), its
``Content-Type`` is compressible (``text/*``, JSON, JavaScript, XML, SVG, ``+json``/``+xml``)
and it has at least ``min_size`` bytes. The compressed answer gets ``Content-Encoding: gzip``,
``Vary: Accept-Encoding``, a corrected ``Content-Length`` (or none when streamed) and a weak
``ETag``. An answer that streams (several body messages) is compressed chunk by chunk, each
chunk flushed so the client sees it at once; its first ``min_size`` bytes are held to decide.

The step sits outside the cache step, so cached answers are stored uncompressed and
compressed for each client that asks.
"""

from __future__ import annotations

import gzip
import re
import zlib
from typing import TYPE_CHECKING

from ..asgi import ASGIApp, Message, Receive, Scope, Send
from ..config.api import GzipConfig

if TYPE_CHECKING:
    from .cache import ApiSource

_COMPRESSIBLE = re.compile(
    rb"^\s*(?:text/|image/svg\+xml|application/(?:json|javascript|x-javascript|ecmascript|xml"
    rb"|[\w.+-]*\+(?:json|xml))\b)",
    re.IGNORECASE,
)
_UNCOMPRESSED = frozenset({204, 206, 304})  # no body, or a byte range of the identity body


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def accepts_gzip(value: bytes) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (an explicit ``gzip`` before ``*``)."""
    explicit: float | None = None
    wildcard: float | None = None
    for part in value.split(b","):
        coding, _, params = part.partition(b";")
        coding = coding.strip().lower()
        if coding in (b"gzip", b"x-gzip"):
            explicit = max(explicit or 0.0, _quality(params))
        elif coding == b"*":
            wildcard = _quality(params)
    quality = explicit if explicit is not None else wildcard
    return quality is not None and quality > 0


def compressible(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an answer with these headers may be compressed (by its type and encoding)."""
    typed = False
    for name, value in headers:
        name = name.lower()
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return False
        if name == b"content-type":
            typed = _COMPRESSIBLE.match(value) is not None
    return typed


def _compressed_headers(
    headers: list[tuple[bytes, bytes]], length: int | None
) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            continue
        if lower == b"etag" and not value.startswith(b"W/"):
            value = b"W/" + value
        out.append((name, value))
    out.append((b"content-encoding", b"gzip"))
    out.append((b"vary", b"Accept-Encoding"))
    if length is not None:
        out.append((b"content-length", b"%d" % length))
    return out


class _Compressor:
    """One answer on its way to a client that accepts gzip."""

    __slots__ = ("_config", "_held", "_send", "_size", "_start", "_stream")

    def __init__(self, send: Send, config: GzipConfig) -> None:
        self._send = send
        self._config = config
        self._start: Message | None = None
        self._held: list[bytes] = []
        self._size = 0
        self._stream: zlib._Compress | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = list(message.get("headers", ()))
            if self._eligible(message["status"], headers):
                self._start = {**message, "headers": headers}
                return
            await self._send(message)
            return
        if kind != "http.response.body":
            await self._send(message)
            return
        if self._stream is not None:
            await self._compress(message)
        elif self._start is not None:
            await self._decide(message)
        else:
            await self._send(message)

    def _eligible(self, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
        if status < 200 or status in _UNCOMPRESSED or not compressible(headers):
            return False
        for name, value in headers:
            if name.lower() == b"content-length":
                return not value.isdigit() or int(value) >= self._config.min_size
        return True

    async def _decide(self, message: Message) -> None:
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        self._held.append(chunk)
        self._size += len(chunk)
        if self._size < self._config.min_size:
            if more:
                return
            start, self._start = self._start, None  # small after all: as is
            assert start is not None
            await self._send(start)
            await self._send({"type": "http.response.body", "body": b"".join(self._held)})
            return
        start, self._start = self._start, None
        assert start is not None
        body, self._held = b"".join(self._held), []
        if not more:
            data = gzip.compress(body, self._config.level, mtime=0)
            headers = _compressed_headers(start["headers"], len(data))
            await self._send({**start, "headers": headers})
            await self._send({"type": "http.response.body", "body": data, "more_body": False})
            return
        self._stream = zlib.compressobj(self._config.level, zlib.DEFLATED, 31)
        await self._send({**start, "headers": _compressed_headers(start["headers"], None)})
        await self._compress({"type": "http.response.body", "body": body, "more_body": True})

    async def _compress(self, message: Message) -> None:
        stream = self._stream
        assert stream is not None
        chunk = message.get("body", b"")
        if message.get("more_body", False):
            data = stream.compress(chunk) + stream.flush(zlib.Z_SYNC_FLUSH) if chunk else b""
            if data:
                await self._send({"type": "http.response.body", "body": data, "more_body": True})
            return
        data = stream.compress(chunk) + stream.flush(zlib.Z_FINISH)
        self._stream = None
        await self._send({"type": "http.response.body", "body": data, "more_body": False})


class Gzip:
    """The gzip step (see the module docstring); off while ``api.gzip`` is unset."""

    def __init__(self, app: ASGIApp, source: ApiSource) -> None:
        self.app = app
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.source.api.gzip
        if config is None or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"accept-encoding" and accepts_gzip(value):
                await self.app(scope, receive, _Compressor(send, config).send)
                return
        await self.app(scope, receive, send)
