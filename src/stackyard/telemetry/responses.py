"""HTTP answers for telemetry errors: Stackyard's JSON error shape, and OTLP's ``Status``.

Stackyard APIs answer ``{"error": {"code", "message"}}`` (:mod:`stackyard.responses`). OTLP
endpoints answer in the request's encoding, as the OTLP/HTTP spec asks: a protobuf
``google.rpc.Status`` for protobuf requests, and for JSON requests a JSON ``Status`` (``code``,
``message``) that also carries Stackyard's ``error`` member. 503s carry ``Retry-After``.
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse, Response

from ..responses import error_response as shaped
from .body import PROTOBUF
from .errors import Overloaded, TelemetryError

# google.rpc.Code values for the HTTP statuses we answer
_RPC_CODES = {400: 3, 404: 5, 413: 8, 415: 3, 503: 14}


def error_response(exc: TelemetryError) -> JSONResponse:
    """Stackyard's JSON error for ``exc``, with ``Retry-After`` when the client may retry."""
    response = shaped(exc.status, exc.code, str(exc))
    if exc.status == 503:
        response.headers["Retry-After"] = str(Overloaded.retry_after)
    return response


def otlp_error_response(exc: TelemetryError, media: str) -> Response:
    """An OTLP error answer in the request's encoding (protobuf or JSON ``Status``)."""
    code = _RPC_CODES.get(exc.status, 13)
    message = str(exc)
    headers = {"Retry-After": str(Overloaded.retry_after)} if exc.status == 503 else None
    if media == PROTOBUF:
        return Response(
            _status_protobuf(code, message),
            status_code=exc.status,
            media_type=PROTOBUF,
            headers=headers,
        )
    body = {"code": code, "message": message, "error": {"code": exc.code, "message": message}}
    return Response(
        json.dumps(body), status_code=exc.status, media_type="application/json", headers=headers
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _status_protobuf(code: int, message: str) -> bytes:
    text = message.encode()[:4096].decode("utf-8", "ignore").encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
