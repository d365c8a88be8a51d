"""Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

Each part is its own file until the upload completes; completing writes the parts into one new
file (atomically, like any object) and commits the object and the end of the upload in one
transaction. The object's ETag is S3's: the MD5 of the parts' binary MD5s, ``-<parts>``.
Every part but the last must be at least 5 MiB (EntityTooSmall).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .body import read_small
from .errors import InvalidArgument, InvalidRange, MalformedXML
from .http import S3Request, check_conditions
from .notifications import request_origin
from .xml import child_text, children, document, iso_time, parse

if TYPE_CHECKING:
    from .api import Handler
    from .service import Buckets
    from .store import UploadInfo

OWNER = (("ID", "stackyard"), ("DisplayName", "stackyard"))
_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


async def _upload(service: Buckets, request: S3Request) -> UploadInfo:
    return await service.store.upload(
        request.bucket or "", request.key or "", request.query["uploadId"]
    )


def _part_number(request: S3Request) -> int:
    text = request.query.get("partNumber", "")
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=text,
        )
    return int(text)


async def create_upload(service: Buckets, request: S3Request) -> None:
    from .objects import stored_headers

    headers, metadata = stored_headers(request)
    upload = await service.create_upload(request.bucket or "", request.key or "", headers, metadata)
    answer = {}
    algorithm = request.headers.get("x-amz-checksum-algorithm")
    if algorithm:
        answer["x-amz-checksum-algorithm"] = algorithm
    body = document(
        "InitiateMultipartUploadResult",
        [("Bucket", upload.bucket), ("Key", upload.key), ("UploadId", upload.id)],
    )
    await request.xml(body, headers=answer)


async def upload_part(service: Buckets, request: S3Request) -> None:
    from .objects import incoming

    number = _part_number(request)
    upload = await _upload(service, request)
    chunks, hashers, verify = incoming(request)
    part, checksums = await service.upload_part(
        upload, number, chunks, hashers=hashers, verify=verify
    )
    answer = {"etag": f'"{part.etag}"'}
    answer.update({f"x-amz-checksum-{a}": v for a, v in checksums.items()})
    await request.respond(200, headers=answer)


async def upload_part_copy(service: Buckets, request: S3Request) -> None:
    from .objects import copy_source

    number = _part_number(request)
    upload = await _upload(service, request)
    source_bucket, source_key = copy_source(request)
    source = await service.get_object(source_bucket, source_key)
    check_conditions(
        request.headers, source.etag, source.modified, prefix="x-amz-copy-source-if-",
        not_modified=_precondition_failed(),
    )  # fmt: skip
    start, length = 0, source.size
    wanted = request.headers.get("x-amz-copy-source-range")
    if wanted is not None:
        match = _COPY_RANGE.match(wanted.strip())
        if match is None:
            raise InvalidArgument(
                "The x-amz-copy-source-range value must be of the form bytes=first-last "
                "where first and last are the zero-based offsets of the first and last bytes "
                "to copy",
                ArgumentName="x-amz-copy-source-range",
                ArgumentValue=wanted,
            )
        first, last = int(match.group(1)), int(match.group(2))
        if first > last or last >= source.size:
            raise InvalidRange(RangeRequested=wanted, ActualObjectSize=str(source.size))
        start, length = first, last - first + 1
    part = await service.copy_part(upload, number, source, start, length)
    body = document(
        "CopyPartResult", [("LastModified", iso_time(part.modified)), ("ETag", f'"{part.etag}"')]
    )
    await request.xml(body)


def _precondition_failed() -> Any:
    from .errors import PreconditionFailed

    return PreconditionFailed


async def complete_upload(service: Buckets, request: S3Request) -> None:
    upload = await _upload(service, request)
    root = parse(await read_small(request.receive, 4 * 1024 * 1024))
    wanted: list[tuple[int, str]] = []
    for part in children(root, "Part"):
        number, etag = child_text(part, "PartNumber"), child_text(part, "ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise MalformedXML()
        wanted.append((int(number), etag.strip().strip('"')))
    if not wanted:
        raise MalformedXML()
    info = await service.complete_upload(upload, wanted, origin=request_origin(request))
    body = document(
        "CompleteMultipartUploadResult",
        [
            ("Location", f"/{info.bucket}/{info.key}"),
            ("Bucket", info.bucket),
            ("Key", info.key),
            ("ETag", f'"{info.etag}"'),
        ],
    )
    await request.xml(body)


async def abort_upload(service: Buckets, request: S3Request) -> None:
    upload = await _upload(service, request)
    await service.abort_upload(upload)
    await request.respond(204)


def _int_param(request: S3Request, name: str, default: int, top: int) -> int:
    text = request.query.get(name, str(default))
    if not text.isdigit():
        raise InvalidArgument(f"{name} must be a non-negative integer", ArgumentName=name)
    return min(int(text), top)


async def list_parts(service: Buckets, request: S3Request) -> None:
    upload = await _upload(service, request)
    limit = _int_param(request, "max-parts", 1000, 1000)
    marker = _int_param(request, "part-number-marker", 0, 10000)
    parts = [part for part in await service.store.parts(upload.id) if part.number > marker]
    page, truncated = parts[:limit], len(parts) > limit
    nodes: list[tuple[str, Any]] = [
        ("Bucket", upload.bucket),
        ("Key", upload.key),
        ("UploadId", upload.id),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", page[-1].number if page else marker),
        ("MaxParts", limit),
        ("IsTruncated", truncated),
    ]
    nodes.extend(
        (
            "Part",
            [
                ("PartNumber", part.number),
                ("LastModified", iso_time(part.modified)),
                ("ETag", f'"{part.etag}"'),
                ("Size", part.size),
            ],
        )
        for part in page
    )
    nodes += [("Initiator", OWNER), ("Owner", OWNER), ("StorageClass", "STANDARD")]
    await request.xml(document("ListPartsResult", nodes))


async def list_uploads(service: Buckets, request: S3Request) -> None:
    query = request.query
    limit = _int_param(request, "max-uploads", 1000, 1000)
    key_marker = query.get("key-marker", "")
    id_marker = query.get("upload-id-marker", "")
    if key_marker and not id_marker:
        id_marker = "~"  # after every upload of key_marker (ids are hex)
    uploads, truncated = await service.store.uploads(
        request.bucket or "", query.get("prefix", ""), key_marker, id_marker, limit
    )
    nodes: list[tuple[str, Any]] = [
        ("Bucket", request.bucket),
        ("KeyMarker", key_marker),
        ("UploadIdMarker", query.get("upload-id-marker", "")),
        ("NextKeyMarker", uploads[-1].key if truncated and uploads else None),
        ("NextUploadIdMarker", uploads[-1].id if truncated and uploads else None),
        ("Prefix", query.get("prefix")),
        ("MaxUploads", limit),
        ("IsTruncated", truncated),
    ]
    nodes.extend(
        (
            "Upload",
            [
                ("Key", upload.key),
                ("UploadId", upload.id),
                ("Initiator", OWNER),
                ("Owner", OWNER),
                ("StorageClass", "STANDARD"),
                ("Initiated", iso_time(upload.initiated)),
            ],
        )
        for upload in uploads
    )
    await request.xml(document("ListMultipartUploadsResult", nodes))


UPLOAD_ROUTES: dict[str, Handler] = {
    "GET": list_parts,
    "POST": complete_upload,
    "DELETE": abort_upload,
}
