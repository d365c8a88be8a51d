"""ListObjectsV2 and ListObjects (v1): pages of keys and common prefixes, as S3 writes them.

``encoding-type=url`` (botocore asks for it and decodes with ``unquote_plus``) percent-encodes
keys, prefixes, delimiters and markers in the answer (a space as ``%20``, as S3's own
conformance tests expect). A continuation token is the last key or common
prefix of the page, base64url-encoded; the index resumes strictly after it (after the whole
common prefix for a prefix).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import InvalidArgument
from .http import S3Request
from .store import ListPage, ObjectInfo
from .xml import document, iso_time

if TYPE_CHECKING:
    from .service import Buckets

MAX_KEYS = 1000
OWNER = (("ID", "stackyard"), ("DisplayName", "stackyard"))


def encoder(request: S3Request) -> Any:
    encoding = request.query.get("encoding-type")
    if encoding is None:
        return lambda value: value
    if encoding != "url":
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=encoding,
        )
    return lambda value: quote(value, safe="/") if value is not None else None


def max_keys(request: S3Request, name: str = "max-keys") -> int:
    text = request.query.get(name, str(MAX_KEYS))
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(
            "Provided max-keys not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=text,
        ) from None
    if value < 0:
        raise InvalidArgument(
            "Argument maxKeys must be an integer between 0 and 2147483647",
            ArgumentName=name,
            ArgumentValue=text,
        )
    return min(value, MAX_KEYS)


def encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "The continuation token provided is incorrect", ArgumentName="continuation-token"
        ) from None


def _contents(info: ObjectInfo, encode: Any, owner: bool) -> tuple[str, Any]:
    nodes: list[tuple[str, Any]] = [
        ("Key", encode(info.key)),
        ("LastModified", iso_time(info.modified)),
        ("ETag", f'"{info.etag}"'),
    ]
    nodes.extend(("ChecksumAlgorithm", name.upper()) for name in info.checksums)
    nodes.append(("Size", info.size))
    if owner:
        nodes.append(("Owner", OWNER))
    nodes.append(("StorageClass", "STANDARD"))
    return ("Contents", nodes)


async def _page(service: Buckets, request: S3Request, after: str, limit: int) -> ListPage:
    prefix = request.query.get("prefix", "")
    delimiter = request.query.get("delimiter", "")
    if limit == 0:
        await service.store.bucket(request.bucket or "")
        return ListPage([], [], False, None)
    return await service.store.list_objects(request.bucket or "", prefix, delimiter, after, limit)


async def list_objects_v2(service: Buckets, request: S3Request) -> None:
    query = request.query
    encode = encoder(request)
    limit = max_keys(request)
    token = query.get("continuation-token")
    start_after = query.get("start-after")
    after = decode_token(token) if token is not None else (start_after or "")
    page = await _page(service, request, after, limit)
    owner = query.get("fetch-owner") == "true"
    nodes: list[tuple[str, Any]] = [
        ("Name", request.bucket),
        ("Prefix", encode(query.get("prefix", ""))),
        ("Delimiter", encode(query.get("delimiter"))),
        ("MaxKeys", limit),
        ("EncodingType", query.get("encoding-type")),
        ("KeyCount", len(page.objects) + len(page.prefixes)),
        ("IsTruncated", page.truncated),
        ("ContinuationToken", token),
        (
            "NextContinuationToken",
            encode_token(page.next_marker) if page.truncated and page.next_marker else None,
        ),
        ("StartAfter", encode(start_after)),
    ]
    nodes.extend(_contents(info, encode, owner) for info in page.objects)
    nodes.extend(("CommonPrefixes", [("Prefix", encode(p))]) for p in page.prefixes)
    await request.xml(document("ListBucketResult", nodes))


async def list_objects_v1(service: Buckets, request: S3Request) -> None:
    query = request.query
    encode = encoder(request)
    limit = max_keys(request)
    marker = query.get("marker", "")
    page = await _page(service, request, marker, limit)
    delimiter = query.get("delimiter")
    nodes: list[tuple[str, Any]] = [
        ("Name", request.bucket),
        ("Prefix", encode(query.get("prefix", ""))),
        ("Marker", encode(marker)),
        ("NextMarker", encode(page.next_marker) if page.truncated and delimiter else None),
        ("MaxKeys", limit),
        ("Delimiter", encode(delimiter)),
        ("IsTruncated", page.truncated),
        ("EncodingType", query.get("encoding-type")),
    ]
    nodes.extend(_contents(info, encode, True) for info in page.objects)
    nodes.extend(("CommonPrefixes", [("Prefix", encode(p))]) for p in page.prefixes)
    await request.xml(document("ListBucketResult", nodes))
