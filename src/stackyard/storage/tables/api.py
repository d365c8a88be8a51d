"""The DynamoDB JSON 1.0 API as a pure ASGI app (``POST /``, ``X-Amz-Target:
DynamoDB_20120810.<Operation>``, ``Content-Type: application/x-amz-json-1.0``).

Every answer is JSON; an error is HTTP 400 with ``{"__type":
"com.amazonaws.dynamodb.v20120810#<Type>", "message": ...}`` (500 for an internal error), the
shape botocore maps to ``client.exceptions.<Type>``. Signatures are not checked (the node
serves trusted local callers; any credentials are accepted).
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from ...asgi import Receive, Scope, Send
from .errors import SerializationError, TablesError, UnknownOperation, ValidationError

logger = logging.getLogger(__name__)

MAX_REQUEST = 16 * 1024 * 1024 + 65536
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class DynamoDbApp:
    """Reads a request, runs ``call(operation, body)``, writes the JSON answer; ``target``:
    the ``X-Amz-Target`` prefix served (``DynamoDBStreams_20120810`` for the streams API)."""

    def __init__(self, call: Call, target: str = "DynamoDB_20120810") -> None:
        self.call = call
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        target = b""
        for name, value in scope["headers"]:
            if name == b"x-amz-target":
                target = value
        status, answer = 200, b""
        try:
            if scope["method"] != "POST":
                raise SerializationError("Only POST requests are accepted")
            body = await read_body(receive)
            operation = operation_name(target, self.target)
            answer = json.dumps(
                await self.call(operation, parse(body)), separators=(",", ":")
            ).encode()
        except TablesError as exc:
            status, answer = exc.status, json.dumps(exc.body()).encode()
        except Exception:
            logger.exception("DynamoDB API call %s failed", target.decode("latin-1"))
            status = 500
            answer = json.dumps(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "message": "Internal server error",
                }
            ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/x-amz-json-1.0"),
                    (b"content-length", str(len(answer)).encode()),
                    (b"x-amzn-requestid", uuid.uuid4().hex.encode()),
                    (b"x-amz-crc32", str(zlib.crc32(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def read_body(receive: Receive) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise SerializationError("The client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST:
            raise ValidationError("Request body too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def operation_name(target: bytes, expected: str = "DynamoDB_20120810") -> str:
    prefix, _, operation = target.decode("latin-1").partition(".")
    if prefix != expected or not operation:
        raise UnknownOperation(f"Unknown operation {target.decode('latin-1')!r}")
    return operation


def parse(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise SerializationError("Start of structure or map found where not expected") from None
    if not isinstance(value, dict):
        raise SerializationError("Start of structure or map found where not expected")
    return value
