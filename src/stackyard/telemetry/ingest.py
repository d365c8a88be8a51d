"""HTTP ingest routes (Starlette): OTLP/HTTP traces and logs, Zipkin v2 spans.

- ``POST /v1/traces`` — OTLP ``ExportTraceServiceRequest``, protobuf or JSON (by Content-Type),
  optionally gzip/deflate; answers 200 with an ``ExportTraceServiceResponse`` in the request's
  encoding (``partialSuccess`` when some spans were rejected).
- ``POST /v1/logs`` — OTLP ``ExportLogsServiceRequest``, same rules.
- ``POST /api/v2/spans`` — a Zipkin v2 JSON list; 202 when stored, 400 (JSON error) if any span
  is malformed (nothing of that request is stored).

Errors: 400 for an undecodable body (never retried), 413 above 20 MiB before or after
decompression, 415 for other media types, 503 + ``Retry-After`` when the write queue is full.
Bodies larger than ``INLINE_DECODE`` bytes are decoded on a worker thread so the event loop
keeps serving while a big batch is parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .body import JSON, PROTOBUF, media_type, read_body
from .errors import TelemetryError, UnsupportedMediaType
from .logs import LogStore
from .otlp import decode_traces_json, decode_traces_protobuf, traces_response
from .otlp_logs import decode_logs_json, decode_logs_protobuf, logs_response
from .responses import error_response, otlp_error_response
from .spans import SpanStore
from .zipkin import decode_spans

INLINE_DECODE = 256 * 1024
_T = TypeVar("_T")


async def _decode(fn: Callable[[bytes], _T], body: bytes) -> _T:
    if len(body) <= INLINE_DECODE:
        return fn(body)
    return await asyncio.to_thread(fn, body)


def ingest_routes(spans: SpanStore, logs: LogStore) -> list[BaseRoute]:
    """The ingest endpoints, writing to ``spans`` and ``logs``."""

    async def otlp_traces(request: Request) -> Response:
        media = PROTOBUF
        try:
            media = media_type(request)
            body = await read_body(request)
            decoder = decode_traces_json if media == JSON else decode_traces_protobuf
            result = await _decode(decoder, body)
            spans.add_many(result.spans)
        except TelemetryError as exc:
            return otlp_error_response(exc, media)
        return Response(traces_response(result, media == JSON), media_type=media)

    async def otlp_logs(request: Request) -> Response:
        media = PROTOBUF
        try:
            media = media_type(request)
            body = await read_body(request)
            decoder = decode_logs_json if media == JSON else decode_logs_protobuf
            result = await _decode(decoder, body)
            logs.add_rows(result.rows)
        except TelemetryError as exc:
            return otlp_error_response(exc, media)
        return Response(logs_response(result, media == JSON), media_type=media)

    async def zipkin_spans(request: Request) -> Response:
        try:
            if media_type(request, default=JSON) != JSON:
                raise UnsupportedMediaType("Zipkin v2 ingest accepts application/json only")
            body = await read_body(request)
            spans.add_many(await _decode(decode_spans, body))
        except TelemetryError as exc:
            return error_response(exc)
        return Response(status_code=202)

    return [
        Route("/v1/traces", otlp_traces, methods=["POST"], name="otlp_traces"),
        Route("/v1/logs", otlp_logs, methods=["POST"], name="otlp_logs"),
        Route("/api/v2/spans", zipkin_spans, methods=["POST"], name="zipkin_ingest"),
    ]
