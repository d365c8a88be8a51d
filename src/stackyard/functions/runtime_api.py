"""The AWS Lambda Runtime API, served to exactly one worker per listener.

Each worker process gets its own loopback listener (an ephemeral port chosen by the OS) and
reaches it through ``AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>``, like a Lambda sandbox: the
node therefore always knows which worker holds which invocation, and killing a timed-out worker
kills exactly the process that ran it. Endpoints (under ``/2018-06-01/runtime``):

- ``GET invocation/next``: blocks until the pool assigns an invocation; answers with the
  payload and the ``Lambda-Runtime-*`` headers (request id, deadline, ARN, trace id, client
  context and Cognito identity when set).
- ``POST invocation/{id}/response`` and ``POST invocation/{id}/error``: the result (202).
- ``POST init/error``: the runtime could not initialise (202; the worker is then discarded).

The HTTP/1.1 server is a small ``asyncio.Protocol`` (keep-alive, Content-Length and chunked
bodies), with no framework in between. Stackyard's own Python bootstrap talks to the same
:class:`RuntimeApiServer` state over a private channel instead (``attach_channel``, see
``channel.py``): one frame each way per invocation. The listener stays open for it too, so
``AWS_LAMBDA_RUNTIME_API`` is valid in every worker.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

PREFIX = "/2018-06-01/runtime/"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 413: "Too Large"}
_ACCEPTED = b'{"status":"OK"}'


class Outcome:
    """What a worker answered: the payload and, for a function error, its kind (``Unhandled``).
    Set once, never changed (a plain slotted class: its constructor runs compiled, a
    dataclass's generated one would not)."""

    __slots__ = ("error", "payload")

    def __init__(self, payload: bytes, error: str | None = None) -> None:
        self.payload = payload
        self.error = error

    def __repr__(self) -> str:
        return f"Outcome({self.payload!r}, {self.error!r})"


def error_payload(error_type: str, message: str) -> bytes:
    """A Lambda error document as the Runtime API and the Invoke API carry it."""
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()


class Invocation:
    """One invocation on its way through a worker; ``outcome`` resolves exactly once."""

    __slots__ = (
        "client_context",
        "cognito_identity",
        "deadline_ms",
        "delivered_at",
        "function_arn",
        "on_delivered",
        "outcome",
        "payload",
        "request_id",
        "timeout",
        "trace_id",
    )

    def __init__(
        self,
        request_id: str,
        payload: bytes,
        function_arn: str,
        timeout: float,
        outcome: asyncio.Future[Outcome],
        client_context: str | None = None,
        cognito_identity: str | None = None,
        trace_id: str = "",
        delivered_at: float = 0.0,
        deadline_ms: int = 0,
        on_delivered: Callable[[Invocation], None] | None = None,
    ) -> None:
        self.request_id = request_id
        self.payload = payload
        self.function_arn = function_arn
        self.timeout = timeout
        self.outcome = outcome
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.trace_id = trace_id
        self.delivered_at = delivered_at
        self.deadline_ms = deadline_ms
        self.on_delivered = on_delivered

    def __repr__(self) -> str:
        return f"Invocation({self.request_id!r}, {self.function_arn!r})"

    def resolve(self, outcome: Outcome) -> bool:
        """Set the outcome unless one was set already; True when this call set it."""
        if self.outcome.done():
            return False
        self.outcome.set_result(outcome)
        return True


class Runtime(Protocol):
    """One connection of a worker's runtime to the node (HTTP, or the private channel)."""

    def deliver(self, invocation: Invocation) -> None:
        """Hand ``invocation`` (already made current) to the waiting runtime."""

    def close(self) -> None: ...


class RuntimeApiServer:
    """The Runtime API of one worker: hands assigned invocations to its ``invocation/next``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.current: Invocation | None = None
        self._pending: Invocation | None = None
        self._waiter: Runtime | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[Runtime] = set()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved at the worker's first ``invocation/next`` (initialisation is over)."""
        self.init_error: bytes | None = None
        self.on_init_error: Callable[[bytes], None] | None = None

    @property
    def pending(self) -> Invocation | None:
        """The invocation assigned but not yet taken by ``invocation/next``."""
        return self._pending

    @property
    def address(self) -> str:
        """The value of ``AWS_LAMBDA_RUNTIME_API``."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, 0)
        # uvloop's server holds a list where typeshed says tuple: read it untyped (compiled
        # code checks what a typed read returns)
        server: Any = self._server
        self.port = int(server.sockets[0].getsockname()[1])

    async def attach_channel(
        self, sock: socket.socket, on_violation: Callable[[str], None]
    ) -> None:
        """Serve the private channel on ``sock`` (the node's end of the worker's socket pair,
        see ``channel.py``) besides the HTTP listener; ``on_violation(reason)`` is called when
        the worker sends what the channel's format does not allow."""
        from .channel_server import ChannelConnection

        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(lambda: ChannelConnection(self, on_violation), sock)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self._connections):
            connection.close()
        self._waiter = None

    def assign(self, invocation: Invocation) -> None:
        """Queue ``invocation`` for this worker; delivered at once when it is waiting."""
        self._pending = invocation
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            self._deliver(waiter)

    # -- request handling ----------------------------------------------------------------------

    def wait_next(self, runtime: Runtime) -> bool:
        """``runtime`` asks for the next invocation: True when it was delivered at once, False
        when the runtime now waits for :meth:`assign` (the first call ends initialisation)."""
        if not self.ready.done():
            self.ready.set_result(None)
        if self._pending is not None:
            self._deliver(runtime)
            return True
        self._waiter = runtime
        return False

    def complete(
        self, request_id: str, failed: bool, body: bytes, error_type: str | None = None
    ) -> bool:
        """The runtime's result (or error document) for ``request_id``; False when that is not
        the invocation it holds (unknown id, or already answered)."""
        current = self.current
        if current is None or current.request_id != request_id or current.outcome.done():
            return False
        if failed:
            current.resolve(Outcome(_normalize_error(body, error_type), "Unhandled"))
        else:
            current.resolve(Outcome(body))
        self.current = None
        return True

    def report_init_error(self, body: bytes, error_type: str | None = None) -> None:
        """The runtime could not initialise (the worker is then discarded)."""
        self.init_error = _normalize_error(body, error_type)
        if self.on_init_error is not None:
            self.on_init_error(self.init_error)

    def _deliver(self, runtime: Runtime) -> None:
        invocation, self._pending = self._pending, None
        assert invocation is not None
        invocation.delivered_at = time.perf_counter()
        invocation.deadline_ms = int((time.time() + invocation.timeout) * 1000)
        self.current = invocation
        if invocation.on_delivered is not None:
            invocation.on_delivered(invocation)
        runtime.deliver(invocation)

    def handle(self, connection: _Connection, method: str, target: str, body: bytes) -> bool:
        """Answer one request; False when the connection must wait (a parked ``next``)."""
        path = target.split("?", 1)[0]
        if not path.startswith(PREFIX):
            connection.send(404, _message("NotFound", f"unknown path {path}"))
            return True
        route = path[len(PREFIX) :]
        if route == "invocation/next" and method == "GET":
            return self.wait_next(connection)
        if method == "POST" and route.startswith("invocation/"):
            request_id, _, kind = route[len("invocation/") :].partition("/")
            if kind not in ("response", "error"):
                connection.send(404, _message("NotFound", f"unknown path {path}"))
            elif self.complete(request_id, kind == "error", body, connection.error_type):
                connection.send(202, _ACCEPTED)
            else:
                connection.send(400, _message("InvalidRequestID", "Invalid request ID"))
            return True
        if route == "init/error" and method == "POST":
            connection.send(202, _ACCEPTED)
            self.report_init_error(body, connection.error_type)
            return True
        connection.send(404, _message("NotFound", f"unknown path {method} {path}"))
        return True

    def connection_made(self, connection: Runtime) -> None:
        self._connections.add(connection)

    def connection_lost(self, connection: Runtime) -> None:
        self._connections.discard(connection)
        if self._waiter is connection:
            self._waiter = None


def _message(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _normalize_error(body: bytes, header_type: str | None) -> bytes:
    """The error document a runtime posted, or one built around a body that is not JSON."""
    try:
        value = json.loads(body) if body else None
    except ValueError:
        value = None
    if isinstance(value, dict):
        return body
    message = body.decode("utf-8", "replace") if body else "Unknown error"
    return error_payload(header_type or "Unhandled", message)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection from the worker."""

    def __init__(self, server: RuntimeApiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.parked = False
        self.keep_alive = True
        self.error_type: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.connection_lost(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.parked:
            self._process()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def deliver(self, invocation: Invocation) -> None:
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn),
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
        ]
        if invocation.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.cognito_identity is not None:
            headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
        self.send(200, invocation.payload, headers)
        self.resume()

    def resume(self) -> None:
        if self.parked:
            self.parked = False
            if self.keep_alive:
                asyncio.get_running_loop().call_soon(self._process)

    def send(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        if self.transport is None:
            return
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        if headers:
            lines.extend(f"{name}: {value}" for name, value in headers)
        if not self.keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head + body)
        if not self.keep_alive:
            self.transport.close()

    def _process(self) -> None:
        while not self.parked and self.transport is not None:
            try:
                request = self._parse()
            except ValueError:  # a malformed chunk size or an oversized chunked body
                self._fail(400)
                return
            if request is None:
                return
            method, target, body = request
            if not self.server.handle(self, method, target, body):
                self.parked = True

    def _parse(self) -> tuple[str, str, bytes] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._fail(400)
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            self._fail(400)
            return None
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = _dechunk(self.buffer, start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._fail(400)
                return None
            if length > MAX_BODY:
                self._fail(413)
                return None
            if len(self.buffer) < start + length:
                return None
            body, consumed = bytes(self.buffer[start : start + length]), start + length
        del self.buffer[:consumed]
        connection = headers.get("connection", "").lower()
        self.keep_alive = connection != "close" and (
            version != "HTTP/1.0" or connection == "keep-alive"
        )
        self.error_type = headers.get("lambda-runtime-function-error-type")
        return method, target, body

    def _fail(self, status: int) -> None:
        self.keep_alive = False
        self.send(status, _message("InvalidRequest", "malformed HTTP request"))
        self.buffer.clear()


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """A complete chunked body starting at ``start`` and where it ends; None when incomplete."""
    body = bytearray()
    pos = start
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";", 1)[0].strip() or b"0", 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", pos)
            while trailer_end > pos:  # skip trailer headers
                pos = trailer_end + 2
                trailer_end = buffer.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 2
        if len(buffer) < pos + size + 2:
            return None
        body += buffer[pos : pos + size]
        pos += size + 2
        if len(body) > MAX_BODY:
            raise ValueError("chunked body too large")
