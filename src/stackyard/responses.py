"""The one JSON error shape of Stackyard's own HTTP APIs: ``{"error": {"code", "message"}}``.

AWS-compatible APIs (Lambda, later DynamoDB and S3) answer in AWS's shapes instead; the
gateway has its own pure-ASGI error answers (:mod:`stackyard.gateway.errors`).
"""

from __future__ import annotations

from starlette.responses import JSONResponse


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
