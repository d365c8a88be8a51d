"""Stackyard's Python runtime: the loop a worker of runtime ``python`` runs.

Started as ``python -m stackyard.functions.bootstrap`` with the Lambda environment
(``AWS_LAMBDA_RUNTIME_API``, ``_HANDLER``, ``LAMBDA_TASK_ROOT``, ...). It limits its address
space (memory), imports the handler once (module-level code runs once per worker), then loops:
``GET invocation/next`` → ``handler(event, context)`` (``_X_AMZN_TRACE_ID`` = the invocation's
``Lambda-Runtime-Trace-Id`` in the environment, set before the call and left until the next
invocation, which sets its own or removes it, as AWS's runtime does; see :func:`trace_setter`)
→ ``POST .../response`` with the JSON result, or ``POST .../error`` with ``{errorMessage,
errorType, stackTrace}`` the moment the handler raises. Initialisation errors go to
``init/error`` and end the process.

When the node started it (``STACKYARD_RUNTIME_FD`` set), the same loop runs over the node's
private channel instead (``channel.py``: one frame each way per invocation, the result frame
doubling as "next"); otherwise it speaks the Runtime API over HTTP, as any custom runtime does.

Imports are kept to the bare standard library (no ``http.client``, which pulls in ``email`` and
``ssl``): the Runtime API is spoken over one keep-alive socket, which keeps cold starts short.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from stackyard.functions import channel

_API = "/2018-06-01/runtime"
_ADDRESS_SPACE_FACTOR = 1.5
"""Address space allowed beyond the interpreter's own, as a multiple of the memory size."""


Next = tuple[str, int, str, str, str, str, bytes]
"""An invocation: request id, deadline (ms), ARN, trace id, client context, identity, event."""


class _RuntimeClient:
    """A minimal HTTP/1.1 client for the Runtime API (one persistent connection)."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host.strip("[]") or "127.0.0.1", int(port))
        self._sock: socket.socket | None = None
        self._buffer = b""

    def next(self) -> Next:
        _, headers, body = self.request("GET", "/invocation/next")
        return (
            headers.get("lambda-runtime-aws-request-id", ""),
            int(headers.get("lambda-runtime-deadline-ms", "0") or 0),
            headers.get("lambda-runtime-invoked-function-arn", ""),
            headers.get("lambda-runtime-trace-id", ""),
            headers.get("lambda-runtime-client-context", ""),
            headers.get("lambda-runtime-cognito-identity", ""),
            body,
        )

    def respond(self, request_id: str, result: bytes) -> None:
        self.request("POST", f"/invocation/{request_id}/response", result)

    def fail(self, request_id: str, document: bytes) -> None:
        self.request("POST", f"/invocation/{request_id}/error", document)

    def init_error(self, document: bytes) -> None:
        self.request("POST", "/init/error", document)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        head = f"{method} {_API}{path} HTTP/1.1\r\nHost: runtime\r\nContent-Length: {len(body)}\r\n"
        if headers:
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        data = (head + "\r\n").encode("latin-1") + body
        for attempt in (0, 1):
            try:
                if self._sock is None:
                    self._sock = socket.create_connection(self._address)
                    self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._buffer = b""
                self._sock.sendall(data)
                return self._read_response()
            except OSError:
                self._close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _recv(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the runtime API closed the connection")
        self._buffer += chunk

    def _read_response(self) -> tuple[int, dict[str, str], bytes]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._recv()
        lines = self._buffer[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        start = end + 4
        while len(self._buffer) < start + length:
            self._recv()
        body = self._buffer[start : start + length]
        self._buffer = self._buffer[start + length :]
        if headers.get("connection", "").lower() == "close":
            self._close()
        return status, headers, body


class _ChannelClient:
    """The node's private channel (``channel.py``): one frame each way per invocation."""

    def __init__(self, fd: int) -> None:
        os.set_inheritable(fd, False)  # not for the handler's own child processes
        self._sock = socket.socket(fileno=fd)
        self._buffer = b""
        # one receive buffer for the process: a fresh 256 KiB ``recv`` per invocation would be
        # an mmap, an mremap and a munmap each time
        self._chunk = memoryview(bytearray(262144))
        self._waiting = False
        """True once a result frame went out: the node then sends the next invocation."""

    def next(self) -> Next:
        if not self._waiting:
            self._sock.sendall(channel.frame(channel.NEXT, b""))
        self._waiting = False
        kind, body = self._read()
        if kind != channel.INVOKE:
            raise ConnectionError(f"unexpected frame kind {kind} from the node")
        return channel.parse_invoke(body)

    def respond(self, request_id: str, result: bytes) -> None:
        self._sock.sendall(channel.result_frame(channel.RESULT, request_id, result))
        self._waiting = True

    def fail(self, request_id: str, document: bytes) -> None:
        self._sock.sendall(channel.result_frame(channel.ERROR, request_id, document))
        self._waiting = True

    def init_error(self, document: bytes) -> None:
        self._sock.sendall(channel.frame(channel.INIT, document))

    def _read(self) -> tuple[int, bytes]:
        size = channel.HEADER.size
        while len(self._buffer) < size:
            self._recv()
        length, kind = channel.HEADER.unpack_from(self._buffer)
        while len(self._buffer) < size + length:
            self._recv()
        body = self._buffer[size : size + length]
        self._buffer = self._buffer[size + length :]
        return kind, body

    def _recv(self) -> None:
        received = self._sock.recv_into(self._chunk)
        if not received:
            raise ConnectionError("the node closed the runtime channel")
        self._buffer += self._chunk[:received]


class CognitoIdentity:
    """``context.identity`` (empty unless the caller sent a Cognito identity)."""

    def __init__(self, value: dict[str, Any] | None = None) -> None:
        value = value or {}
        self.cognito_identity_id = value.get("cognitoIdentityId")
        self.cognito_identity_pool_id = value.get("cognitoIdentityPoolId")


class Client:
    """``context.client_context.client``."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.installation_id = value.get("installation_id")
        self.app_title = value.get("app_title")
        self.app_version_name = value.get("app_version_name")
        self.app_version_code = value.get("app_version_code")
        self.app_package_name = value.get("app_package_name")


class ClientContext:
    """``context.client_context``: what the caller passed as ``ClientContext``."""

    def __init__(self, value: dict[str, Any]) -> None:
        client = value.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = value.get("custom")
        self.env = value.get("env")


class LambdaContext:
    """The ``context`` argument of a handler, as AWS's Python runtime builds it."""

    _static: tuple[str, str, str, str, str] | None = None
    """The function's constants (from the environment), read once per process."""

    def __init__(
        self, request_id: str, deadline_ms: int, arn: str, client_context: str, identity: str
    ) -> None:
        static = LambdaContext._static
        if static is None:
            env = os.environ
            static = LambdaContext._static = (
                env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
                env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""),
                env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
                env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            )
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        (
            self.function_name,
            self.function_version,
            self.memory_limit_in_mb,
            self.log_group_name,
            self.log_stream_name,
        ) = static
        self._deadline_ms = deadline_ms
        self.identity = CognitoIdentity(_json_object(identity))
        context = _json_object(client_context)
        self.client_context = ClientContext(context) if context is not None else None

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, "
            f"function_name={self.function_name!r}, "
            f"invoked_function_arn={self.invoked_function_arn!r})"
        )


def _json_object(text: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _default(obj: Any) -> Any:
    if type(obj).__name__ == "Decimal":  # what AWS's runtime does for DynamoDB numbers
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = json.JSONEncoder(separators=(",", ":"), default=_default).encode


def _to_json(value: Any) -> bytes:
    return _encode(value).encode()


def _error_document(exc: BaseException, error_type: str | None = None, message: str = "") -> bytes:
    import traceback  # only on the error path: it is not free to import

    frames = exc.__traceback__
    if frames is not None and frames.tb_frame.f_code.co_filename == __file__:
        frames = frames.tb_next  # the runtime's own frame is not the user's business
    stack = traceback.format_list(traceback.extract_tb(frames))
    document = {
        "errorMessage": message or str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": stack,
    }
    print(f"[ERROR] {document['errorType']}: {document['errorMessage']}", file=sys.stderr)
    if stack:
        print("Traceback (most recent call last):\n" + "".join(stack).rstrip(), file=sys.stderr)
    sys.stderr.flush()
    return json.dumps(document).encode()


TRACE_VARIABLE = "_X_AMZN_TRACE_ID"


def trace_setter(env: os._Environ[str]) -> Callable[[str], None]:
    """What puts an invocation's trace header in ``os.environ[TRACE_VARIABLE]`` ('' removes it).

    The value goes into the mapping behind ``os.environ`` without ``setenv(3)``: glibc keeps
    every value ever given to ``setenv`` (a caller may still hold the old string), so a new
    trace id per invocation would grow a long-lived worker by about 135 bytes an invocation,
    until its memory limit killed it. Python code (the X-Ray SDK, botocore, OpenTelemetry, a
    handler) reads ``os.environ``/``os.getenv`` and sees the value as before; the C-level
    environment, which a child process started without ``env=`` inherits, does not have it.
    """
    env.pop(TRACE_VARIABLE, None)  # an inherited one, from both views
    data = getattr(env, "_data", None)
    if not isinstance(data, dict):  # not CPython's os._Environ: the plain way

        def plain(value: str) -> None:
            if value:
                env[TRACE_VARIABLE] = value
            else:
                env.pop(TRACE_VARIABLE, None)

        return plain
    key, encode = env.encodekey(TRACE_VARIABLE), env.encodevalue

    def direct(value: str) -> None:
        if value:
            data[key] = encode(value)
        else:
            data.pop(key, None)

    return direct


def _die_out_of_memory() -> None:
    """Like the kernel's OOM killer in a Lambda sandbox: the runtime exits on SIGKILL."""
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def limit_memory(memory_mb: int) -> None:
    """Cap the address space at the interpreter's current size + 1.5 x ``memory_mb``.

    An allocation beyond it raises ``MemoryError``, which the loop turns into a SIGKILL of the
    worker (``Runtime exited with error: signal: killed``). The node also watches the resident
    size, which catches gradual growth beyond ``memory_mb`` itself.
    """
    try:
        import resource

        with open("/proc/self/status", encoding="ascii") as status:
            size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration, ValueError):
        return
    limit = size_kb * 1024 + int(memory_mb * _ADDRESS_SPACE_FACTOR) * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def load_handler(spec: str, task_root: str) -> Callable[[Any, Any], Any]:
    """Import ``path/module.fn`` (module code runs now); raise ``_InitError`` like AWS."""
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    module_name, dot, function_name = spec.rpartition(".")
    if not dot or not module_name or not function_name:
        raise _InitError(
            "Runtime.MalformedHandlerName", f"Bad handler '{spec}': expected module.fn"
        )
    module_path = module_name.replace("/", ".")
    import importlib

    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise _InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except SyntaxError as exc:
        raise _InitError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        ) from exc
    handler = getattr(module, function_name, None)
    if handler is None or not callable(handler):
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler  # type: ignore[no-any-return]


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class _RequestIds:
    """A ``logging`` filter that puts the current invocation's id on every record."""

    current = ""

    def filter(self, record: Any) -> bool:
        record.aws_request_id = self.current
        return True


def _lambda_logging(env: os._Environ[str]) -> _RequestIds:
    """Lambda's logging set-up for code that uses ``logging`` (only then: importing it costs a
    cold start ≈ 6 ms): a root handler on stdout writing
    ``[LEVEL]\t<UTC time>Z\t<request id>\t<message>``, or one JSON object per record with
    ``AWS_LAMBDA_LOG_FORMAT=JSON``; the root level from ``AWS_LAMBDA_LOG_LEVEL`` (else as the
    code left it: WARNING by default, as on Lambda, where ``logger.setLevel("INFO")`` is the
    usual first line). A function that configured the root logger itself keeps its handlers;
    they only gain the ``aws_request_id`` record attribute."""
    import logging

    ids = _RequestIds()
    root = logging.getLogger()
    if root.handlers:  # the function configured logging itself (e.g. stackyard.sdk.setup())
        for handler in root.handlers:
            handler.addFilter(ids)
        return ids
    handler = logging.StreamHandler(sys.stdout)
    formatter: logging.Formatter
    if env.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        formatter = _json_formatter_class()()
    else:
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(ids)
    root.addHandler(handler)
    level = env.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)
    return ids


def _json_formatter_class() -> type[Any]:
    """The JSON formatter's class (defined on first use, like the ``logging`` import)."""
    import logging

    class JsonFormatter(logging.Formatter):
        """Lambda's JSON log format: timestamp, level, message, logger, requestId."""

        def format(self, record: logging.LogRecord) -> str:
            document = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "requestId": getattr(record, "aws_request_id", ""),
            }
            if record.exc_info:
                document["stackTrace"] = self.formatException(record.exc_info)
            return json.dumps(document, default=str)

    return JsonFormatter


def main() -> None:
    env = os.environ
    fd = env.pop(channel.FD_ENV, "")
    client: _RuntimeClient | _ChannelClient
    if fd.isdigit():
        client = _ChannelClient(int(fd))
    else:
        client = _RuntimeClient(env["AWS_LAMBDA_RUNTIME_API"])
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit():
        limit_memory(int(memory))
    task_root = env.get("LAMBDA_TASK_ROOT") or os.getcwd()
    try:
        handler = load_handler(env.get("_HANDLER", ""), task_root)
    except MemoryError:
        _die_out_of_memory()
        return
    except _InitError as exc:
        client.init_error(_error_document(exc, exc.error_type))
        sys.exit(1)
    except Exception as exc:
        client.init_error(_error_document(exc))
        sys.exit(1)
    flush = sys.stdout.flush
    request_ids = _lambda_logging(env) if "logging" in sys.modules else None
    set_trace = trace_setter(env)
    while True:
        request_id, deadline_ms, arn, trace, client_context, identity, body = client.next()
        context = LambdaContext(request_id, deadline_ms, arn, client_context, identity)
        if request_ids is not None:
            request_ids.current = request_id
        set_trace(trace)  # as AWS's runtime: the invocation's trace header, until the next one's
        try:
            value = handler(json.loads(body) if body else {}, context)
            try:
                result = _to_json(value)
            except (TypeError, ValueError) as exc:
                message = f"Unable to marshal response: {exc}"
                raise _InitError("Runtime.MarshalError", message) from exc
        except MemoryError:
            _die_out_of_memory()
            return
        except _InitError as exc:
            flush()
            client.fail(request_id, _error_document(exc, exc.error_type))
            continue
        except Exception as exc:
            flush()
            client.fail(request_id, _error_document(exc))
            continue
        flush()
        client.respond(request_id, result)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except (ConnectionError, OSError):
        sys.exit(1)
