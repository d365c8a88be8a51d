"""The data page's buckets: each bucket, a browser by prefix, download links and uploads.

``GET /data/buckets/{bucket}?prefix=&after=`` lists one page of a prefix as ``ListObjectsV2``
does with the delimiter ``/`` (folders, then objects with size, last modified and ETag), from
the buckets component's index (``node.buckets.store``, the interface the S3 API lists with).

Object bytes never pass through the console: downloads are presigned S3 ``GET`` URLs on the
control port, and the upload form (``static/data.js``) asks
``GET /data/buckets/{bucket}/presign?key=&method=PUT`` for a presigned ``PUT`` URL and sends
the file there with ``fetch`` — the S3 API checks the signature (SigV4 query authentication,
the node's one secret) and stores the object exactly as boto3's ``put_object`` would, bucket
notifications included.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...responses import error_response
from ...storage.buckets import sigv4
from ...storage.buckets.errors import BucketError
from ..app import Console

LIST_PAGE = 100
PRESIGN_EXPIRES = 3600
DELIMITER = "/"


def routes(console: Console) -> list[BaseRoute]:
    async def browse(request: Request) -> Response:
        bucket = request.path_params["bucket"]
        prefix = request.query_params.get("prefix", "")
        after = request.query_params.get("after", "")
        buckets = console.node.buckets
        try:
            page = await buckets.store.list_objects(bucket, prefix, DELIMITER, after, LIST_PAGE)
        except BucketError as exc:
            return console.render(
                request, "data_bucket.html", status_code=exc.status, title=f"Bucket {bucket}",
                bucket=bucket, error=exc.message or exc.code, prefix=prefix, crumbs=[],
            )  # fmt: skip
        host = request.headers.get("host", "")
        objects = [
            {
                "key": info.key,
                "name": info.key[len(prefix) :],
                "size": info.size,
                "modified": info.modified,
                "etag": info.etag,
                "content_type": info.headers.get("content-type", ""),
                "download": presign("GET", host, bucket, info.key, console),
            }
            for info in page.objects
        ]
        folders = [{"prefix": p, "name": p[len(prefix) :]} for p in page.prefixes]
        return console.render(
            request,
            "data_bucket.html",
            title=f"Bucket {bucket}",
            bucket=bucket,
            prefix=prefix,
            crumbs=breadcrumbs(prefix),
            objects=objects,
            folders=folders,
            next_after=page.next_marker if page.truncated else None,
            error=None,
        )

    async def presigned(request: Request) -> Response:
        bucket = request.path_params["bucket"]
        key = request.query_params.get("key", "")
        method = request.query_params.get("method", "GET").upper()
        if not key:
            return error_response(400, "InvalidParameter", "key is required")
        if method not in ("GET", "PUT"):
            return error_response(400, "InvalidParameter", "method must be GET or PUT")
        try:
            await console.node.buckets.store.bucket(bucket)
        except BucketError as exc:
            return error_response(exc.status, exc.code, exc.message or exc.code)
        host = request.headers.get("host", "")
        url = presign(method, host, bucket, key, console)
        return JSONResponse({"url": url, "method": method, "expires_in": PRESIGN_EXPIRES})

    return [
        Route("/data/buckets/{bucket}", browse, methods=["GET"]),
        Route("/data/buckets/{bucket}/presign", presigned, methods=["GET"]),
    ]


async def bucket_rows(console: Console) -> list[dict[str, Any]]:
    return [
        {"name": info.name, "region": info.region, "created": info.created}
        for info in await console.node.buckets.store.buckets()
    ]


def breadcrumbs(prefix: str) -> list[dict[str, str]]:
    """The folders of ``prefix`` (``a/b/`` → ``a/``, ``a/b/``), each with its own prefix."""
    crumbs, path = [], ""
    for part in prefix.split(DELIMITER)[:-1]:
        path += part + DELIMITER
        crumbs.append({"name": part + DELIMITER, "prefix": path})
    return crumbs


def presign(method: str, host: str, bucket: str, key: str, console: Console) -> str:
    """A path-style SigV4 presigned URL (relative: same host) of ``bucket``/``key``."""
    buckets = console.node.buckets
    path = "/" + quote(bucket, safe="") + "/" + quote(key, safe="/-_.~")
    return sigv4.presign(
        method,
        host,
        path,
        access_key="stackyard-console",
        secret=buckets.secret_key,
        region=buckets.region,
        expires=PRESIGN_EXPIRES,
    )
