"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject;
and how an upload body is taken in (:func:`incoming`) — Content-MD5, ``x-amz-content-sha256``
and the ``x-amz-checksum-*`` flexible checksums (header or aws-chunked trailer) checked when
the standard library can compute them (CRC32, SHA-1, SHA-256; CRC32C and CRC64NVME are stored
as sent)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import multipart
from .body import ChunkedDecoder, decoded_chunks, read_small
from .errors import (
    BadDigest,
    ContentSHA256Mismatch,
    IncompleteBody,
    InvalidArgument,
    InvalidDigest,
    InvalidRequest,
    KeyTooLongError,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    NoSuchKey,
    PreconditionFailed,
)
from .files import BlobWriter, new_hasher
from .http import S3Request, check_conditions, parse_range
from .notifications import request_origin
from .store import ObjectInfo
from .xml import child_text, children, document, http_time, iso_time, parse

if TYPE_CHECKING:
    from .api import Handler
    from .service import Buckets, Verify

CONTENT_HEADERS = (
    "content-type",
    "content-disposition",
    "cache-control",
    "content-encoding",
    "content-language",
    "expires",
)
CHECKSUMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
MAX_KEY_BYTES = 1024
MAX_METADATA = 2048
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


def route(request: S3Request) -> Handler:
    method, query = request.method, request.query
    if len((request.key or "").encode()) > MAX_KEY_BYTES:
        raise KeyTooLongError(Size=str(len((request.key or "").encode())), MaxSizeAllowed="1024")
    if "uploadId" in query:
        if method == "PUT":
            if "x-amz-copy-source" in request.headers:
                return multipart.upload_part_copy
            return multipart.upload_part
        handler = multipart.UPLOAD_ROUTES.get(method)
    elif method == "POST" and "uploads" in query:
        return multipart.create_upload
    elif method == "PUT":
        return copy_object if "x-amz-copy-source" in request.headers else put_object
    else:
        handler = _OBJECT_ROUTES.get(method)
    if handler is None:
        raise MethodNotAllowed(Method=method, ResourceType="OBJECT")
    return handler


def stored_headers(request: S3Request) -> tuple[dict[str, str], dict[str, str]]:
    """The content headers and the user metadata (``x-amz-meta-*``) of a request."""
    headers = {name: request.headers[name] for name in CONTENT_HEADERS if name in request.headers}
    encoding = headers.get("content-encoding")
    if encoding is not None:
        kept = [e.strip() for e in encoding.split(",") if e.strip() and e.strip() != "aws-chunked"]
        if kept:
            headers["content-encoding"] = ",".join(kept)
        else:
            del headers["content-encoding"]
    metadata = {
        name[len("x-amz-meta-") :]: value
        for name, value in request.headers.items()
        if name.startswith("x-amz-meta-")
    }
    if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA:
        raise MetadataTooLarge(MaxSizeAllowed=str(MAX_METADATA))
    return headers, metadata


def content_md5(request: S3Request) -> bytes | None:
    value = request.headers.get("content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDigest(**{"Content-MD5": value}) from None
    if len(digest) != 16:
        raise InvalidDigest(**{"Content-MD5": value})
    return digest


def incoming(request: S3Request) -> tuple[AsyncIterator[bytes], dict[str, Any], Verify]:
    """The object bytes of an upload, the hashers to run over them and the check to make once
    they are all written (which returns the checksums to keep with the object)."""
    headers = request.headers
    content_sha = headers.get("x-amz-content-sha256", "")
    chunked = content_sha.startswith("STREAMING-") or "aws-chunked" in headers.get(
        "content-encoding", ""
    )
    decoder = ChunkedDecoder() if chunked else None
    md5 = content_md5(request)
    trailer_names = {t.strip().lower() for t in headers.get("x-amz-trailer", "").split(",")}
    hashers: dict[str, Any] = {}
    for algorithm in CHECKSUMS:
        name = f"x-amz-checksum-{algorithm}"
        if name in headers or name in trailer_names:
            hasher = new_hasher(algorithm)
            if hasher is not None:
                hashers[algorithm] = hasher
    if not chunked and _SHA256_HEX.match(content_sha):
        hashers["content-sha256"] = hashlib.sha256()
    length_text = headers.get("x-amz-decoded-content-length") if chunked else None
    length_text = length_text or (headers.get("content-length") if not chunked else None)
    expected_length = int(length_text) if length_text and length_text.isdigit() else None

    def verify(writer: BlobWriter) -> dict[str, str]:
        if expected_length is not None and writer.size != expected_length:
            raise IncompleteBody()
        if md5 is not None and writer.md5.digest() != md5:
            raise BadDigest(
                ExpectedDigest=base64.b64encode(md5).decode(),
                CalculatedDigest=base64.b64encode(writer.md5.digest()).decode(),
            )
        sha = hashers.get("content-sha256")
        if sha is not None and sha.hexdigest() != content_sha:
            raise ContentSHA256Mismatch(
                ClientComputedContentSHA256=content_sha,
                S3ComputedContentSHA256=sha.hexdigest(),
            )
        trailers = decoder.trailers if decoder is not None else {}
        sent: dict[str, str] = {}
        for algorithm in CHECKSUMS:
            name = f"x-amz-checksum-{algorithm}"
            value = headers.get(name) or trailers.get(name)
            if value is None:
                continue
            hasher = hashers.get(algorithm)
            if hasher is not None and base64.b64encode(hasher.digest()).decode() != value:
                raise BadDigest(
                    f"The {algorithm.upper()} you specified did not match the calculated checksum."
                )
            sent[algorithm] = value
        return sent

    return decoded_chunks(request.receive, decoder), hashers, verify


async def put_object(service: Buckets, request: S3Request) -> None:
    headers, metadata = stored_headers(request)
    if request.headers.get("if-none-match", "").strip() == "*":
        try:
            await service.get_object(request.bucket or "", request.key or "")
        except NoSuchKey:
            pass
        else:
            raise PreconditionFailed(Condition="If-None-Match")
    chunks, hashers, verify = incoming(request)
    info = await service.put_object(
        request.bucket or "",
        request.key or "",
        chunks,
        headers=headers,
        metadata=metadata,
        hashers=hashers,
        verify=verify,
        origin=request_origin(request),
    )
    answer = {"etag": f'"{info.etag}"'}
    answer.update({f"x-amz-checksum-{a}": v for a, v in info.checksums.items()})
    await request.respond(200, headers=answer)


def object_headers(info: ObjectInfo, request: S3Request) -> dict[str, str]:
    headers = {
        "content-type": info.headers.get("content-type", DEFAULT_CONTENT_TYPE),
        "etag": f'"{info.etag}"',
        "last-modified": http_time(info.modified),
        "accept-ranges": "bytes",
    }
    headers.update(info.headers)
    headers.update({f"x-amz-meta-{name}": value for name, value in info.metadata.items()})
    if request.method == "GET":
        for parameter, name in _RESPONSE_OVERRIDES.items():
            if parameter in request.query:
                headers[name] = request.query[parameter]
    return headers


async def get_object(service: Buckets, request: S3Request) -> None:
    info, handle = await service.open_object(request.bucket or "", request.key or "")
    try:
        headers = object_headers(info, request)
        check_conditions(
            request.headers,
            info.etag,
            info.modified,
            answer_headers={"ETag": headers["etag"], "Last-Modified": headers["last-modified"]},
        )
        span = parse_range(request.headers.get("range"), info.size)
    except BaseException:
        handle.close()
        raise
    status, start, length = 200, 0, info.size
    if span is not None:
        status, start, length = 206, span[0], span[1] - span[0] + 1
        headers["content-range"] = f"bytes {span[0]}-{span[1]}/{info.size}"
    elif request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and not info.parts:
        headers.update({f"x-amz-checksum-{a}": v for a, v in info.checksums.items()})
    headers["content-length"] = str(length)
    if request.method == "HEAD":
        handle.close()
        await request.respond(status, headers=headers)
        return
    await request.stream(status, headers, service.files.chunks(handle, start, length))


async def delete_object(service: Buckets, request: S3Request) -> None:
    await service.delete_objects(
        request.bucket or "", [request.key or ""], origin=request_origin(request)
    )
    await request.respond(204)


async def delete_objects(service: Buckets, request: S3Request) -> None:
    md5 = content_md5(request)
    body = await read_small(request.receive, 2 * 1024 * 1024)
    if md5 is not None and hashlib.md5(body).digest() != md5:
        raise BadDigest()
    root = parse(body)
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    keys = [child_text(item, "Key") for item in children(root, "Object")]
    if not keys or len(keys) > 1000 or any(key is None for key in keys):
        raise MalformedXML()
    wanted = [key for key in keys if key is not None]
    await service.delete_objects(request.bucket or "", wanted, origin=request_origin(request))
    nodes: list[tuple[str, Any]] = []
    if not quiet:
        nodes = [("Deleted", [("Key", key)]) for key in wanted]
    await request.xml(document("DeleteResult", nodes))


def copy_source(request: S3Request) -> tuple[str, str]:
    """The bucket and key of ``x-amz-copy-source`` (``[/]bucket/key[?versionId=…]``)."""
    value = request.headers["x-amz-copy-source"]
    value = value.split("?", 1)[0]
    bucket, _, key = unquote(value).lstrip("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=value,
        )
    return bucket, key


async def copy_object(service: Buckets, request: S3Request) -> None:
    source_bucket, source_key = copy_source(request)
    source = await service.get_object(source_bucket, source_key)
    check_conditions(
        request.headers,
        source.etag,
        source.modified,
        prefix="x-amz-copy-source-if-",
        not_modified=PreconditionFailed,
    )
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument(
            "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive"
        )
    same = (source_bucket, source_key) == (request.bucket, request.key)
    if same and directive == "COPY":
        raise InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect location "
            "or encryption attributes."
        )
    if directive == "REPLACE":
        headers, metadata = stored_headers(request)
    else:
        headers, metadata = dict(source.headers), dict(source.metadata)
    info = await service.copy_object(
        source,
        request.bucket or "",
        request.key or "",
        headers=headers,
        metadata=metadata,
        origin=request_origin(request),
    )
    body = document(
        "CopyObjectResult",
        [("LastModified", iso_time(info.modified)), ("ETag", f'"{info.etag}"')],
    )
    await request.xml(body)


_OBJECT_ROUTES: dict[str, Handler] = {
    "GET": get_object,
    "HEAD": get_object,
    "DELETE": delete_object,
}
