"""The private channel between the node and its Python workers: length-prefixed frames.

The built-in Python bootstrap does not need HTTP to talk to the node: it inherits one end of a
Unix socket pair (file descriptor in ``STACKYARD_RUNTIME_FD``) and exchanges binary frames over
it, one write each way per invocation — the worker's result frame also says "ready for the
next", so there is no separate ``invocation/next`` request. Runtimes that are not Stackyard's
own bootstrap (``provided``) keep using the AWS Runtime API over HTTP (``runtime_api.py``);
both feed the same :class:`~stackyard.functions.runtime_api.RuntimeApiServer` state.

A frame is a 5-byte header, ``!IB`` = (length of the body, kind), then the body:

========== ================= =====================================================================
kind       direction         body
========== ================= =====================================================================
``NEXT``   worker → node     empty: initialised, waiting for the first invocation
``INVOKE`` node → worker     ``!QHHHII`` (deadline ms, lengths of request id, function ARN, trace
                             id, client context, Cognito identity), those five UTF-8 strings, then
                             the event payload
``RESULT`` worker → node     ``!H`` (length of the request id), the request id, the JSON result;
                             the worker then waits for the next ``INVOKE``
``ERROR``  worker → node     as ``RESULT``, with the error document instead of the result
``INIT``   worker → node     the initialisation error document (the worker then exits)
========== ================= =====================================================================

This module is standard library only (``struct``): the bootstrap imports it, so it holds the
worker's side (``parse_invoke``, ``result_frame``, ``frame``); the node's side (making ``INVOKE``
frames, reading results) is in ``channel_server.py``, which runs compiled.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("!IB")
INVOKE_HEAD = struct.Struct("!QHHHII")
ID_HEAD = struct.Struct("!H")

NEXT = 1
INVOKE = 2
RESULT = 3
ERROR = 4
INIT = 5

FD_ENV = "STACKYARD_RUNTIME_FD"
"""The environment variable naming the worker's end of the socket pair."""

MAX_FRAME = 16 * 1024 * 1024
"""Longest frame body the node accepts from a worker (the Runtime API's body limit)."""


class FrameError(ValueError):
    """A frame that does not follow the format above."""


def frame(kind: int, body: bytes) -> bytes:
    return HEADER.pack(len(body), kind) + body


def parse_invoke(body: bytes) -> tuple[str, int, str, str, str, str, bytes]:
    """(request id, deadline ms, ARN, trace id, client context, identity, payload) of a body."""
    if len(body) < INVOKE_HEAD.size:
        raise FrameError("INVOKE frame shorter than its header")
    deadline_ms, *lengths = INVOKE_HEAD.unpack_from(body)
    pos = INVOKE_HEAD.size
    fields = []
    for length in lengths:
        end = pos + length
        if end > len(body):
            raise FrameError("INVOKE frame field beyond the frame")
        fields.append(body[pos:end].decode())
        pos = end
    request_id, arn, trace_id, client_context, identity = fields
    return request_id, deadline_ms, arn, trace_id, client_context, identity, body[pos:]


def result_frame(kind: int, request_id: str, document: bytes) -> bytes:
    """A ``RESULT`` or ``ERROR`` frame."""
    rid = request_id.encode()
    return b"".join(
        (
            HEADER.pack(ID_HEAD.size + len(rid) + len(document), kind),
            ID_HEAD.pack(len(rid)),
            rid,
            document,
        )
    )
