"""The Lambda API on the control port (boto3 ``lambda`` client compatible), plus Stackyard's own.

AWS-compatible (rest-json, errors as ``x-amzn-ErrorType`` + ``{"Type": "User", "message"}``):

- ``POST /2015-03-31/functions/{name}/invocations`` — Invoke: ``X-Amz-Invocation-Type``
  ``RequestResponse`` (200), ``Event`` (202, persisted first), ``DryRun`` (204);
  ``X-Amz-Log-Type: Tail`` → ``X-Amz-Log-Result``; a function error is a 200 with
  ``X-Amz-Function-Error: Unhandled`` and the error document as body. A ``traceparent`` or
  ``X-Amzn-Trace-Id`` header is the caller's trace context (see ``tracing.py``).
- ``GET /2015-03-31/functions/`` — ListFunctions (``MaxItems``/``Marker`` paging).
- ``GET /2015-03-31/functions/{name}`` — GetFunction.

``{name}`` may be a name, an ARN, a partial ARN (``account:function:name``) or carry the
``$LATEST`` qualifier. Stackyard's own endpoints (JSON, ``{"error": {...}}`` on errors):

- ``GET /_stackyard/functions`` — each function with its workers and event counts;
- ``GET /_stackyard/functions/dead-letters?function=&limit=`` — the dead letters;
- ``POST /_stackyard/functions/dead-letters/{id}/redrive`` — back to the delivery queue.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..responses import error_response
from .errors import (
    InvalidPayload,
    PayloadTooLarge,
    RuntimeStopped,
    TooManyRequests,
    UnknownDeadLetter,
    UnknownFunction,
)

if TYPE_CHECKING:
    from .runtime import FunctionRuntime

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
_LIST_PAGE = 50


def aws_error(status: int, error_type: str, message: str) -> Response:
    """An error of the Lambda API as botocore parses it."""
    body = {"Type": "User", "message": message}
    if error_type == "ResourceNotFoundException":
        body["Message"] = message
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": error_type},
    )


def function_name(identifier: str) -> str:
    """The function name in a name, ARN or partial ARN (``$LATEST`` qualifier allowed)."""
    parts = identifier.split(":")
    if len(parts) >= 7 and parts[0] == "arn":  # arn:aws:lambda:region:account:function:name[:q]
        name, qualifier = parts[6], parts[7] if len(parts) > 7 else None
    elif len(parts) >= 3 and parts[1] == "function":  # account:function:name[:q]
        name, qualifier = parts[2], parts[3] if len(parts) > 3 else None
    else:
        name, qualifier = parts[0], parts[1] if len(parts) > 1 else None
    if qualifier not in (None, "$LATEST"):
        raise UnknownFunction(f"Function not found: {identifier}")
    return name


def lambda_routes(runtime: FunctionRuntime) -> list[BaseRoute]:
    """The routes to mount on the control app."""

    def resolve(request: Request) -> str:
        name = function_name(request.path_params["name"])
        qualifier = request.query_params.get("Qualifier")
        if qualifier not in (None, "$LATEST"):
            raise UnknownFunction(f"Function not found: {runtime.arn(name)}:{qualifier}")
        runtime.config(name)
        return name

    async def invoke(request: Request) -> Response:
        try:
            name = resolve(request)
            kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
            payload = await request.body()
            if kind == "RequestResponse":
                return await _invoke_sync(runtime, request, name, payload)
            if kind == "Event":
                if len(payload) > ASYNC_PAYLOAD_LIMIT:
                    raise PayloadTooLarge(
                        f"Request must be smaller than {ASYNC_PAYLOAD_LIMIT} bytes for the "
                        "InvokeAsync operation"
                    )
                request_id = await runtime.invoke_async(
                    name,
                    payload,
                    traceparent=request.headers.get("traceparent"),
                    amzn_trace_id=request.headers.get("x-amzn-trace-id"),
                )
                return Response(status_code=202, headers={"x-amzn-RequestId": request_id})
            if kind == "DryRun":
                return Response(status_code=204)
            return aws_error(
                400, "InvalidParameterValueException", f"Unsupported invocation type {kind!r}"
            )
        except Exception as exc:
            return _translate(exc)

    async def list_functions(request: Request) -> Response:
        names = runtime.names()
        try:
            start = int(request.query_params.get("Marker") or 0)
            size = min(int(request.query_params.get("MaxItems") or _LIST_PAGE), _LIST_PAGE)
        except ValueError:
            return aws_error(
                400, "InvalidParameterValueException", "Marker and MaxItems are integers"
            )
        page = names[start : start + max(size, 1)]
        body: dict[str, Any] = {"Functions": [_configuration(runtime, name) for name in page]}
        if start + len(page) < len(names):
            body["NextMarker"] = str(start + len(page))
        return JSONResponse(body)

    async def get_function(request: Request) -> Response:
        try:
            name = resolve(request)
        except Exception as exc:
            return _translate(exc)
        config = runtime.config(name)
        return JSONResponse(
            {
                "Configuration": _configuration(runtime, name),
                "Code": {"RepositoryType": "Stackyard", "Location": str(runtime.stack_root)},
                "Concurrency": {"ReservedConcurrentExecutions": config.concurrency},
            }
        )

    async def functions_status(request: Request) -> Response:
        counts = await runtime.event_counts()
        items = []
        for name in runtime.names():
            config = runtime.config(name)
            status = runtime.status(name)
            pending, dead = counts.get(name, (0, 0))
            items.append(
                {
                    "name": name,
                    "arn": runtime.arn(name),
                    "runtime": config.runtime,
                    "handler": config.handler,
                    "timeout": config.timeout,
                    "memory_mb": config.memory_mb,
                    "concurrency": config.concurrency,
                    "warm": config.warm,
                    "workers": status.workers,
                    "busy": status.busy,
                    "idle": status.idle,
                    "queued": status.queued,
                    "pending_events": pending,
                    "dead_letters": dead,
                }
            )
        return JSONResponse({"functions": items})

    async def dead_letters(request: Request) -> Response:
        function = request.query_params.get("function") or None
        if function is not None and function not in runtime.functions:
            return error_response(404, "UnknownFunction", f"no function named {function!r}")
        try:
            limit = max(1, min(int(request.query_params.get("limit", "100")), 1000))
        except ValueError:
            return error_response(400, "InvalidParameter", "limit must be an integer")
        letters = await runtime.dead_letters(function, limit)
        return JSONResponse(
            {
                "dead_letters": [
                    {
                        "id": letter.id,
                        "function": letter.function,
                        "payload": letter.payload.decode("utf-8", "replace"),
                        "attempts": letter.attempts,
                        "created": _iso(letter.created),
                        "failed_at": _iso(letter.failed_at),
                        "error": letter.error,
                    }
                    for letter in letters
                ]
            }
        )

    async def redrive(request: Request) -> Response:
        try:
            event_id = await runtime.redrive(request.path_params["id"])
        except UnknownDeadLetter as exc:
            return error_response(404, "UnknownDeadLetter", str(exc))
        return JSONResponse({"id": event_id, "status": "queued"})

    return [
        Route("/2015-03-31/functions/{name}/invocations", invoke, methods=["POST"]),
        Route("/2015-03-31/functions/", list_functions, methods=["GET"]),
        Route("/2015-03-31/functions", list_functions, methods=["GET"]),
        Route("/2015-03-31/functions/{name}", get_function, methods=["GET"]),
        Route("/_stackyard/functions", functions_status, methods=["GET"]),
        Route("/_stackyard/functions/dead-letters", dead_letters, methods=["GET"]),
        Route("/_stackyard/functions/dead-letters/{id}/redrive", redrive, methods=["POST"]),
    ]


async def _invoke_sync(
    runtime: FunctionRuntime, request: Request, name: str, payload: bytes
) -> Response:
    if len(payload) > SYNC_PAYLOAD_LIMIT:
        raise PayloadTooLarge(
            f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the Invoke operation"
        )
    tail = request.headers.get("x-amz-log-type") == "Tail"
    result = await runtime.invoke(
        name,
        payload,
        client_context=request.headers.get("x-amz-client-context"),
        tail=tail,
        traceparent=request.headers.get("traceparent"),
        amzn_trace_id=request.headers.get("x-amzn-trace-id"),
    )
    headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": result.request_id}
    if result.function_error is not None:
        headers["X-Amz-Function-Error"] = result.function_error
    if tail:
        headers["X-Amz-Log-Result"] = base64.b64encode(result.log_tail.encode()).decode()
    return Response(result.payload, status_code=200, media_type="application/json", headers=headers)


def _translate(exc: Exception) -> Response:
    if isinstance(exc, UnknownFunction):
        return aws_error(404, "ResourceNotFoundException", str(exc))
    if isinstance(exc, TooManyRequests):
        return aws_error(429, "TooManyRequestsException", str(exc))
    if isinstance(exc, InvalidPayload):
        return aws_error(400, "InvalidRequestContentException", str(exc))
    if isinstance(exc, PayloadTooLarge):
        return aws_error(413, "RequestTooLargeException", str(exc))
    if isinstance(exc, RuntimeStopped):
        return aws_error(503, "ServiceException", str(exc))
    raise exc


def _configuration(runtime: FunctionRuntime, name: str) -> dict[str, Any]:
    config = runtime.config(name)
    return {
        "FunctionName": name,
        "FunctionArn": runtime.arn(name),
        "Runtime": "python3.11" if config.runtime == "python" else "provided.al2023",
        "Role": f"arn:aws:iam::{runtime.account_id}:role/stackyard-{name}",
        "Handler": config.handler,
        "CodeSize": 0,
        "Description": "",
        "Timeout": max(1, math.ceil(config.timeout)),
        "MemorySize": config.memory_mb,
        "LastModified": datetime.fromtimestamp(runtime.started_at, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.000+0000"
        ),
        "CodeSha256": "",
        "Version": "$LATEST",
        "Environment": {"Variables": dict(config.env)},
        "TracingConfig": {"Mode": "PassThrough"},
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
