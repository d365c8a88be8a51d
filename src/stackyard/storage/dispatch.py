"""Sends AWS API calls on the control port to the component that speaks that service.

AWS SDKs talk to one endpoint (``AWS_ENDPOINT_URL``) for every service, so the control port
tells the services apart by what the SDK sends, in this order:

1. ``X-Amz-Target: DynamoDB_20120810.PutItem`` (JSON protocols) → ``dynamodb``
   (``DynamoDBStreams_20120810.*`` → ``dynamodbstreams``);
2. the SigV4 credential scope ``<key>/<date>/<region>/<service>/aws4_request``, from the
   ``Authorization`` header or, for presigned URLs, the ``X-Amz-Credential`` query parameter
   (a SigV2 presigned URL — ``AWSAccessKeyId`` and ``Signature`` parameters, what boto3 makes
   for S3 in us-east-1 unless told ``s3v4`` — is for S3);
3. a virtual-hosted S3 name: ``Host: <bucket>.s3.<anything>`` or ``<bucket>.localhost``.

A request naming a service without a registered app — and any other request (the node's own
API, the Lambda API, telemetry) — goes to the control app.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from ..asgi import ASGIApp, Receive, Scope, Send

_TARGET_PREFIXES = {b"dynamodb_": "dynamodb", b"dynamodbstreams_": "dynamodbstreams"}
_SCOPE = re.compile(rb"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([a-z0-9-]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"(?:^|&)X-Amz-Credential=([^&]+)")
_QUERY_V2 = re.compile(r"(?:^|&)AWSAccessKeyId=[^&]+")
_VIRTUAL_HOST = re.compile(
    rb"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.(?:s3\.[^:]+|localhost)(?::\d+)?$"
)


def aws_service(scope: Scope) -> tuple[str | None, bytes | None]:
    """The AWS service a request is for (None: not an AWS call) and, for a virtual-hosted S3
    request, the bucket named by its host."""
    authorization = host = None
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            lowered = value.lower()
            for prefix, target in _TARGET_PREFIXES.items():
                if lowered.startswith(prefix):
                    return target, None
            return lowered.split(b"_", 1)[0].decode("latin-1"), None
        if name == b"authorization":
            authorization = value
        elif name == b"host":
            host = value.lower()
    service: str | None = None
    if authorization is not None and (found := _SCOPE.search(authorization)):
        service = found.group(1).decode()
    else:
        query = scope.get("query_string", b"").decode("latin-1")
        credential = _QUERY_SCOPE.search(query)
        parts = unquote(credential.group(1)).split("/") if credential else []
        service = parts[3] if len(parts) == 5 else None
        if service is None and "Signature=" in query and _QUERY_V2.search(query):  # SigV2: S3
            service = "s3"
    virtual = _VIRTUAL_HOST.match(host) if host is not None else None
    if virtual is not None and service in (None, "s3"):
        return "s3", virtual.group(1)
    return service, None


class AwsDispatch:
    """The control port's front: AWS calls to ``services[name]``, the rest to ``app``."""

    def __init__(self, app: ASGIApp, services: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.services = services  # read per request: components may register after start-up

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.services:
            service, bucket = aws_service(scope)
            target = self.services.get(service) if service is not None else None
            if target is not None:
                if bucket is not None:
                    scope = {**scope, "state": {**scope.get("state", {}), "bucket": bucket}}
                await target(scope, receive, send)
                return
        await self.app(scope, receive, send)
