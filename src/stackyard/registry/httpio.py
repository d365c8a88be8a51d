"""HTTP plumbing of the Consul API: reading bounded bodies and JSON, query parameters, JSON and
error answers with Consul's index headers, and holding blocking queries (``?index=&wait=``)
until the index moves, the wait ends or the client disconnects.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..config.durations import parse_duration

MAX_BODY = 1024 * 1024
DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
_MAX_U64 = (1 << 64) - 1


class ApiError(Exception):
    """An answer other than success, with its HTTP status and error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_answer(data: Any, index: int, status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":"))
    return Response(body, status, headers=index_headers(index), media_type="application/json")


def empty_answer(index: int) -> Response:
    return Response(b"", 200, headers=index_headers(index), media_type="application/json")


def index_headers(index: int) -> dict[str, str]:
    return {
        "X-Consul-Index": str(max(1, index)),
        "X-Consul-KnownLeader": "true",
        "X-Consul-LastContact": "0",
    }


def error_answer(status: int, code: str, message: str, index: int) -> Response:
    return json_answer({"error": {"code": code, "message": message}}, index, status)


def flag(request: Request, name: str) -> bool:
    if name not in request.query_params:
        return False
    return request.query_params[name].lower() not in ("false", "0", "no")


def uint_param(request: Request, name: str, default: int | None = None) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) > _MAX_U64:
        raise ApiError(400, "InvalidParameter", f"{name} must be an unsigned 64-bit integer")
    return int(text)


async def read_body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "PayloadTooLarge", f"request body exceeds {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    body = await read_body(request)
    if not body.strip():
        raise ApiError(400, "InvalidJSON", "request body must be a JSON object")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "InvalidJSON", f"request body is not valid JSON: {exc}") from None


async def block(
    request: Request, wait_for: Callable[[int, float], Awaitable[int]], current: Callable[[], int]
) -> int:
    """Hold a blocking query (``?index=N&wait=D``) until the index moves or the wait ends."""
    q = request.query_params
    if "filter" in q:
        raise ApiError(400, "InvalidParameter", "filter expressions are not supported")
    index = uint_param(request, "index", 0) or 0
    if index == 0:
        return current()
    wait = DEFAULT_WAIT
    if q.get("wait"):
        try:
            wait = parse_duration(q["wait"])
        except ValueError as exc:
            raise ApiError(400, "InvalidParameter", f"wait: {exc}") from None
    wait = min(wait, MAX_WAIT)
    wait += random.uniform(0, wait / 16)
    change = asyncio.ensure_future(wait_for(index, wait))
    gone = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait((change, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        change.cancel()
        gone.cancel()
    # a client that went away gets an answer nobody reads; the wait is released at once
    return change.result() if change.done() and not change.cancelled() else current()


async def disconnected(request: Request) -> None:
    """Return when the client of a (bodiless) blocking query disconnects."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def no_filter(request: Request) -> None:
    if "filter" in request.query_params:
        raise ApiError(400, "InvalidParameter", "filter expressions are not supported")
