"""Reading ingest request bodies safely: size limit, gzip/deflate, media type.

:func:`read_body` refuses a declared ``Content-Length`` above the limit before reading, stops
reading a streamed body as soon as it passes the limit, and inflates ``Content-Encoding: gzip``
(or ``deflate``) incrementally with an output cap, so a gzip bomb costs at most ``limit`` bytes
of memory before it is refused with :class:`PayloadTooLarge`. :func:`media_type` tells OTLP
protobuf from JSON.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from .errors import InvalidPayload, PayloadTooLarge, UnsupportedMediaType

MAX_BODY = 20 * 1024 * 1024
"""Largest accepted ingest body, compressed or not (20 MiB)."""

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf", "application/octet-stream"})


def media_type(request: Request, *, default: str = PROTOBUF) -> str:
    """``PROTOBUF`` or ``JSON`` from the Content-Type; other types → 415."""
    raw = request.headers.get("content-type", "")
    kind = raw.split(";", 1)[0].strip().lower()
    if not kind:
        return default
    if kind in _PROTOBUF_TYPES:
        return PROTOBUF
    if kind == JSON or kind.endswith("+json"):
        return JSON
    raise UnsupportedMediaType(f"unsupported Content-Type {raw!r}")


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, decompressed; raises ``PayloadTooLarge``/``InvalidPayload``/415."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise InvalidPayload("malformed Content-Length") from exc
        if size > limit:
            raise PayloadTooLarge(f"body of {size} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return inflate(body, limit, wbits=16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return inflate(body, limit, wbits=zlib.MAX_WBITS)
    raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}")


def inflate(data: bytes, limit: int, *, wbits: int) -> bytes:
    """Decompress ``data`` producing at most ``limit`` bytes (gzip members may be concatenated)."""
    out: list[bytes] = []
    total = 0
    while data:
        decoder = zlib.decompressobj(wbits=wbits)
        try:
            piece = decoder.decompress(data, limit + 1 - total)
            while True:
                total += len(piece)
                out.append(piece)
                if total > limit:
                    raise PayloadTooLarge(f"decompressed body is over the {limit}-byte limit")
                if not decoder.unconsumed_tail:
                    break
                piece = decoder.decompress(decoder.unconsumed_tail, limit + 1 - total)
        except zlib.error as exc:
            raise InvalidPayload(f"malformed compressed body: {exc}") from exc
        if not decoder.eof:
            raise InvalidPayload("truncated compressed body")
        data = decoder.unused_data
    return b"".join(out)
