"""The ``bucket`` integration: a bucket served as a static web site (content delivery).

A route ``{path: /site/{proxy+}, bucket: NAME, index: index.html, error: 404.html}`` answers
``GET`` and ``HEAD`` with the object named by the greedy parameter (the index document for the
root or a key ending in ``/``; a key that is missing while ``key/index`` exists is redirected to
``key/``, as S3's website endpoint does). Every answer carries ``ETag``, ``Last-Modified``,
``Accept-Ranges`` and the stored content headers; ``Content-Type`` is the stored one, else a
guess from the key's extension; ``Cache-Control`` is the object's own, else
``public, max-age=60``. ``If-None-Match`` (else ``If-Modified-Since``) that still holds gives
``304``; a ``Range`` gives ``206`` (``416`` when it cannot be satisfied). A missing key is
answered with the error document, status 404 (or a JSON 404 without one).

The body streams from the object's file in chunks (never held whole); a route with ``cache:``
keeps its 200 answers in the gateway's response cache, which answers conditional requests
itself with :func:`not_modified`.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterator, Iterable, Mapping
from email.utils import formatdate, parsedate_to_datetime
from typing import BinaryIO, Protocol
from urllib.parse import unquote

from ..asgi import Receive, Scope, Send
from ..storage.buckets.errors import InvalidRange, NoSuchBucket, NoSuchKey
from ..storage.buckets.http import parse_range
from ..storage.buckets.store import ObjectInfo
from .errors import GatewayError, MethodNotAllowed
from .proxy import request_path
from .table import RouteSpec

logger = logging.getLogger(__name__)

DEFAULT_CACHE_CONTROL = "public, max-age=60"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_PASSED = ("content-disposition", "content-encoding", "content-language", "expires")


class ObjectSource(Protocol):
    """What the integration reads objects through (the node's ``Buckets``)."""

    async def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]: ...

    def read_object(self, handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
        """Chunks of an opened object; the handle is closed when they end (or on ``aclose``)."""


class NotInBucket(GatewayError):
    status = 404
    code = "NotFound"

    def default_message(self) -> str:
        return "no such file"


class NoBucket(GatewayError):
    status = 502
    code = "NoSuchBucket"


def _request_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _etags(value: str) -> list[str]:
    return [tag.strip().removeprefix("W/").strip('"') for tag in value.split(",") if tag.strip()]


def not_modified(request: Iterable[tuple[bytes, bytes]], answer: Mapping[bytes, bytes]) -> bool:
    """RFC 9110's ``If-None-Match`` (else ``If-Modified-Since``) against an answer's ``etag``
    and ``last-modified`` headers: True when the client's copy is still current."""
    none_match = since = None
    for key, value in request:
        if key == b"if-none-match":
            none_match = value.decode("latin-1")
        elif key == b"if-modified-since":
            since = value.decode("latin-1")
    if none_match is not None:
        etag = answer.get(b"etag")
        if etag is None:
            return False
        tags = _etags(none_match)
        return "*" in tags or etag.decode("latin-1").strip('"') in tags
    modified = answer.get(b"last-modified")
    if since is None or modified is None:
        return False
    try:
        return parsedate_to_datetime(modified.decode()) <= parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False  # a date that cannot be read is ignored


def object_headers(info: ObjectInfo) -> dict[bytes, bytes]:
    """The headers a static answer carries for ``info`` (without ``content-length``)."""
    stored = {name.lower(): value for name, value in info.headers.items()}
    content_type = stored.get("content-type")
    if content_type is None or content_type == "binary/octet-stream":
        content_type = mimetypes.guess_type(info.key)[0] or content_type or DEFAULT_CONTENT_TYPE
    headers = {
        b"content-type": content_type,
        b"etag": f'"{info.etag}"',
        b"last-modified": formatdate(info.modified, usegmt=True),
        b"cache-control": stored.get("cache-control", DEFAULT_CACHE_CONTROL),
        b"accept-ranges": "bytes",
    }
    headers.update({name.encode(): stored[name] for name in _PASSED if name in stored})
    return {name: value.encode("latin-1") for name, value in headers.items()}


def object_key(route: RouteSpec, params: Mapping[str, str]) -> str:
    """The key a request names: the route's greedy parameter, the index for a folder."""
    last = route.path.rstrip("/").rsplit("/", 1)[-1]
    key = params.get(last[1:-2], "") if last.endswith("+}") else ""
    key = unquote(key).lstrip("/")  # the router matches the path as sent, percent-encoded
    if (not key or key.endswith("/")) and route.index:
        key += route.index
    return key


class StaticSite:
    """Innermost ASGI app for ``integration == "bucket"`` routes."""

    def __init__(self, source: ObjectSource) -> None:
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed(["GET", "HEAD"])
        match = scope["state"]["route"]
        route: RouteSpec = match.route
        key = object_key(route, match.params)
        try:
            opened = await self._open(route.bucket, key)
            if opened is None and route.index and not key.endswith(route.index):
                folder = await self._open(route.bucket, f"{key}/{route.index}")
                if folder is not None:
                    folder[1].close()
                    await _redirect(scope, send)
                    return
            status = 200
            if opened is None:
                if not route.error:
                    raise NotInBucket()
                opened = await self._open(route.bucket, route.error)
                if opened is None:
                    raise NotInBucket()
                status = 404
        except NoSuchBucket as exc:
            raise NoBucket(f"the route's bucket {route.bucket!r} does not exist") from exc
        info, handle = opened
        await self._answer(scope, send, status, info, handle)

    async def _open(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO] | None:
        if not key:
            return None
        try:
            return await self.source.open_object(bucket, key)
        except NoSuchKey:
            return None

    async def _answer(
        self, scope: Scope, send: Send, status: int, info: ObjectInfo, handle: BinaryIO
    ) -> None:
        headers = object_headers(info)
        start, length = 0, info.size
        try:
            if status == 200 and not_modified(scope["headers"], headers):
                status, length = 304, 0
                headers = {k: v for k, v in headers.items() if k in _NOT_MODIFIED}
            elif status == 200:
                span = parse_range(_request_header(scope, b"range"), info.size)
                if span is not None:
                    status, start, length = 206, span[0], span[1] - span[0] + 1
                    headers[b"content-range"] = b"bytes %d-%d/%d" % (*span, info.size)
        except InvalidRange:
            handle.close()
            await _send_empty(send, 416, [(b"content-range", b"bytes */%d" % info.size)])
            return
        if status != 304:
            headers[b"content-length"] = b"%d" % length
        if status == 304 or scope["method"] == "HEAD":
            handle.close()
            await send(
                {"type": "http.response.start", "status": status, "headers": [*headers.items()]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        start_message = {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers.items()],
        }
        chunks = self.source.read_object(handle, start, length)
        try:
            await send(start_message)
            async for data in chunks:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except OSError:  # the answer has started: end it short rather than send a second one
            logger.exception("reading %s/%s failed mid-answer", info.bucket, info.key)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()  # a client that went away: the file is closed now, not at GC
            handle.close()  # (a generator never started has nothing to close it)
        await send({"type": "http.response.body", "body": b""})


_NOT_MODIFIED = frozenset({b"etag", b"last-modified", b"cache-control", b"expires"})


async def _send_empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _redirect(scope: Scope, send: Send) -> None:
    """``key`` is a folder with an index document: to ``key/`` (relative links then work)."""
    location = request_path(scope) + "/"
    query = scope.get("query_string", b"")
    target = location.encode() + (b"?" + query if query else b"")
    await _send_empty(send, 302, [(b"location", target)])
