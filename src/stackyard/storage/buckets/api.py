"""The S3 REST API on the control port (the ``s3`` entry of the node's AWS services).

Path-style (``/<bucket>/<key>``) and virtual-hosted (``Host: <bucket>.localhost``; the
dispatcher puts the bucket in ``scope["state"]["bucket"]``) requests. Answers are S3's XML;
errors are S3's ``<Error><Code>…</Code><Message>…</Message>…<RequestId>…</RequestId></Error>``
with S3's status, which botocore turns into its exceptions (``NoSuchKey``, ``NoSuchBucket``,
…). HEAD errors have no body, as in S3.

Authentication: presigned URLs (SigV4 or SigV2 query parameters) are verified with the node's secret
(``stackyard``) and their expiry is enforced; requests signed in the ``Authorization`` header
are accepted without checking the signature (every client of a node has the same dummy
credentials). Operations: see docs/storage.md, "Buckets".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ...asgi import Receive, Scope, Send
from . import listing, multipart, notification_api, objects
from .body import read_small
from .errors import (
    BucketAlreadyOwnedByYou,
    BucketError,
    InvalidBucketName,
    MethodNotAllowed,
    NotImplementedError_,
)
from .http import S3Request
from .sigv4 import is_presigned, verify_query
from .xml import child_text, document, iso_time, parse

if TYPE_CHECKING:
    from .service import Buckets

logger = logging.getLogger(__name__)

Handler = Callable[["Buckets", S3Request], Awaitable[None]]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_UNSUPPORTED = frozenset(
    {
        "acl", "policy", "cors", "lifecycle", "website", "logging",
        "replication", "tagging", "encryption", "object-lock", "accelerate", "analytics",
        "inventory", "metrics", "intelligent-tiering", "ownershipControls",
        "publicAccessBlock", "requestPayment", "legal-hold", "retention", "torrent",
        "restore", "select", "attributes", "versions", "policyStatus",
    }
)  # fmt: skip
OWNER = (("ID", "stackyard"), ("DisplayName", "stackyard"))


def valid_bucket_name(name: str) -> bool:
    return (
        bool(_BUCKET_NAME.match(name))
        and ".." not in name
        and not _IP_ADDRESS.match(name)
        and ".-" not in name
        and "-." not in name
    )


class S3App:
    """ASGI app answering S3 calls for a :class:`~.service.Buckets`."""

    def __init__(self, service: Buckets) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = S3Request.from_scope(scope, receive, send)
        try:
            if is_presigned(request.query):
                verify_query(
                    request.method,
                    request.raw_path,
                    request.raw_query,
                    request.query,
                    request.headers,
                    self.service.secret_key,
                    request.bucket if request.virtual else None,
                )
            await route(request)(self.service, request)
        except BucketError as exc:
            if request.started:  # e.g. a file read failed mid-answer: the client sees a cut body
                logger.warning(
                    "S3 %s %s failed mid-answer: %s", request.method, request.raw_path, exc
                )
                return
            await request.error(exc)
        except Exception:
            logger.exception("S3 %s %s failed", request.method, request.raw_path)
            if not request.started:
                await request.error(BucketError())


def route(request: S3Request) -> Handler:
    """The handler of a request, by method, bucket/key and sub-resource."""
    method, query = request.method, request.query
    unsupported = _UNSUPPORTED.intersection(query)
    if unsupported and request.bucket is not None:
        name = sorted(unsupported)[0]
        raise NotImplementedError_(
            f"Stackyard does not implement the {name} sub-resource",
        )
    if request.bucket is None:
        if method == "GET":
            return list_buckets
        raise MethodNotAllowed(Method=method, ResourceType="SERVICE")
    if request.key is None:
        handler = _BUCKET_ROUTES.get((method, _bucket_selector(query)))
        if handler is None:
            raise MethodNotAllowed(Method=method, ResourceType="BUCKET")
        return handler
    return objects.route(request)


def _bucket_selector(query: dict[str, str]) -> str:
    for name in ("location", "uploads", "delete", "versioning", "notification"):
        if name in query:
            return name
    return "list-type-2" if query.get("list-type") == "2" else ""


async def list_buckets(service: Buckets, request: S3Request) -> None:
    buckets = await service.store.buckets()
    body = document(
        "ListAllMyBucketsResult",
        [
            ("Owner", OWNER),
            (
                "Buckets",
                [
                    ("Bucket", [("Name", b.name), ("CreationDate", iso_time(b.created))])
                    for b in buckets
                ],
            ),
        ],
    )
    await request.xml(body)


async def create_bucket(service: Buckets, request: S3Request) -> None:
    name = request.bucket or ""
    if not valid_bucket_name(name):
        raise InvalidBucketName(BucketName=name)
    region = service.region
    body = await read_small(request.receive, 64 * 1024)
    if body.strip():
        constraint = child_text(parse(body), "LocationConstraint")
        region = constraint or "us-east-1"
    if not await service.create_bucket(name, region):
        existing = await service.store.bucket(name)
        # AWS: in us-east-1 re-creating a bucket you own answers 200 (legacy behaviour);
        # everywhere else BucketAlreadyOwnedByYou.
        if region != "us-east-1" or existing.region != "us-east-1":
            raise BucketAlreadyOwnedByYou(BucketName=name)
    await request.respond(200, headers={"location": f"/{name}"})


async def delete_bucket(service: Buckets, request: S3Request) -> None:
    await service.delete_bucket(request.bucket or "")
    await request.respond(204)


async def head_bucket(service: Buckets, request: S3Request) -> None:
    bucket = await service.store.bucket(request.bucket or "")
    await request.respond(200, headers={"x-amz-bucket-region": bucket.region})


async def bucket_location(service: Buckets, request: S3Request) -> None:
    bucket = await service.store.bucket(request.bucket or "")
    region = None if bucket.region == "us-east-1" else bucket.region
    await request.xml(
        document("LocationConstraint", []).replace(
            b"</LocationConstraint>", (region or "").encode() + b"</LocationConstraint>"
        )
    )


async def bucket_versioning(service: Buckets, request: S3Request) -> None:
    await service.store.bucket(request.bucket or "")
    await request.xml(document("VersioningConfiguration", []))


_BUCKET_ROUTES: dict[tuple[str, str], Handler] = {
    ("PUT", ""): create_bucket,
    ("DELETE", ""): delete_bucket,
    ("HEAD", ""): head_bucket,
    ("GET", ""): listing.list_objects_v1,
    ("GET", "list-type-2"): listing.list_objects_v2,
    ("GET", "location"): bucket_location,
    ("GET", "versioning"): bucket_versioning,
    ("GET", "uploads"): multipart.list_uploads,
    ("POST", "delete"): objects.delete_objects,
    ("GET", "notification"): notification_api.get_notification,
    ("PUT", "notification"): notification_api.put_notification,
}
