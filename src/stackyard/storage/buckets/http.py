"""HTTP plumbing of the S3 API: the parsed request, answers (XML, errors, streamed bodies),
byte ranges and conditional requests as S3 evaluates them."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

from ...asgi import Receive, Scope, Send
from .errors import BucketError, InvalidRange, NotModified, PreconditionFailed

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class S3Request:
    """One S3 call: who it names (``bucket``, ``key``) and what it says."""

    scope: Scope
    receive: Receive
    send: Send
    method: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    headers: dict[str, str]
    raw_path: str
    raw_query: str
    virtual: bool = False  # the bucket came from the Host header
    started: bool = False  # the answer's start has been sent
    request_id: str = field(default_factory=lambda: secrets.token_hex(8).upper())

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive, send: Send) -> S3Request:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        path: str = scope["path"]
        virtual = scope.get("state", {}).get("bucket")
        bucket: str | None
        key: str | None
        if virtual:
            bucket = virtual.decode() if isinstance(virtual, bytes) else str(virtual)
            key = path[1:] or None
        else:
            name, _, rest = path[1:].partition("/")
            bucket, key = name or None, rest or None
        raw_path = scope.get("raw_path")
        return cls(
            scope=scope,
            receive=receive,
            send=send,
            method=scope["method"],
            bucket=bucket,
            key=key,
            query=query,
            headers=headers,
            raw_path=raw_path.decode("latin-1") if raw_path else path,
            raw_query=raw_query,
            virtual=bool(virtual),
        )

    def base_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-amz-request-id", self.request_id.encode()),
            (b"x-amz-id-2", self.request_id.encode()),
        ]

    async def respond(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        out = self.base_headers()
        if content_type is not None:
            out.append((b"content-type", content_type.encode()))
        for name, value in (headers or {}).items():
            out.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        if not any(name == b"content-length" for name, _ in out):
            out.append((b"content-length", str(len(body)).encode()))
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": out})
        await self.send(
            {"type": "http.response.body", "body": b"" if self.method == "HEAD" else body}
        )

    async def xml(
        self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        await self.respond(status, body, headers, content_type="application/xml")

    async def stream(
        self, status: int, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> None:
        out = self.base_headers()
        out.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        )
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": out})
        async for chunk in chunks:
            await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        await self.send({"type": "http.response.body", "body": b""})

    async def error(self, exc: BucketError) -> None:
        if exc.status == 304:
            await self.respond(304, headers=exc.fields)
            return
        nodes: list[tuple[str, Any]] = [("Code", exc.code), ("Message", exc.message)]
        nodes.extend(exc.fields.items())
        if exc.code == "NoSuchKey" and "Key" not in exc.fields and self.key is not None:
            nodes.append(("Key", self.key))
        if exc.code == "NoSuchBucket" and "BucketName" not in exc.fields and self.bucket:
            nodes.append(("BucketName", self.bucket))
        nodes += [("RequestId", self.request_id), ("HostId", self.request_id)]
        from .xml import document

        extra = (
            {"content-range": f"bytes */{exc.fields['ActualObjectSize']}"}
            if (exc.code == "InvalidRange" and "ActualObjectSize" in exc.fields)
            else {}
        )
        await self.respond(
            exc.status, document("Error", nodes, namespace=False), extra, "application/xml"
        )


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte positions (inclusive) of a ``Range`` header, None to send the
    whole object (no header, or one S3 ignores: bad syntax, several ranges); InvalidRange when
    it cannot be satisfied."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    fields = {"RangeRequested": header, "ActualObjectSize": str(size)}
    if first_text:
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
        if last_text and last < first:
            return None
        if first >= size:
            raise InvalidRange(**fields)
        return first, min(last, size - 1)
    if not last_text:
        return None
    suffix = int(last_text)
    if suffix == 0 or size == 0:
        raise InvalidRange(**fields)
    return max(0, size - suffix), size - 1


def _etags(value: str) -> list[str]:
    return [tag.strip().removeprefix("W/").strip('"') for tag in value.split(",") if tag.strip()]


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None  # S3 ignores a date it cannot read


def check_conditions(
    headers: Mapping[str, str],
    etag: str,
    modified: float,
    prefix: str = "if-",
    not_modified: type[BucketError] = NotModified,
    answer_headers: Mapping[str, str] | None = None,
) -> None:
    """S3's conditional requests (RFC 7232 order): If-Match, else If-Unmodified-Since → 412;
    If-None-Match, else If-Modified-Since → ``not_modified`` (304 for GET/HEAD; 412 for the
    ``x-amz-copy-source-if-*`` headers of a copy)."""
    seconds = int(modified)  # HTTP dates have whole seconds
    match = headers.get(prefix + "match")
    if match is not None:
        tags = _etags(match)
        if "*" not in tags and etag not in tags:
            raise PreconditionFailed(Condition=match_name(prefix, "If-Match"))
    else:
        since = _date(headers.get(prefix + "unmodified-since"))
        if since is not None and seconds > since:
            raise PreconditionFailed(Condition=match_name(prefix, "If-Unmodified-Since"))
    none_match = headers.get(prefix + "none-match")
    if none_match is not None:
        tags = _etags(none_match)
        if "*" in tags or etag in tags:
            raise not_modified(**(answer_headers or {}))
    else:
        since = _date(headers.get(prefix + "modified-since"))
        if since is not None and seconds <= since:
            raise not_modified(**(answer_headers or {}))


def match_name(prefix: str, name: str) -> str:
    return name if prefix == "if-" else "x-amz-copy-source-" + name
