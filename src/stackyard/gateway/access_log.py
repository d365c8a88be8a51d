"""The access log: one JSON line per request the gateway answered, with its correlation id.

:class:`AccessLog` is the pipeline step (just inside the correlation step, so it sees the
correlation id and, after the answer, the matched route, the API key and the principal); it
hands each answer's values (an :data:`AccessEntry`: plain text and numbers, nothing of the
request kept alive) to a sink, which makes the JSON record (:func:`access_record`) when it
writes, forwards or is asked. :class:`AccessLogWriter` is the node's sink: it
keeps the latest entries in memory for ``GET /_stackyard/api/requests`` (filters: ``status``,
``route``, ``method``, ``correlation_id``, ``since``), appends them as JSON lines to
``<data dir>/logs/gateway-access.log`` (written in batches every ``flush_interval`` seconds
or ``batch`` records, rotated at ``max_bytes`` with one old generation kept) and passes each
record to an optional ``forward`` callable (the node sends it to the central log store).

Record fields: ``time`` (ISO 8601 UTC), ``method``, ``path``, ``query``, ``route`` (the matched
template, or null), ``status``, ``duration_ms``, ``bytes`` (response body bytes sent),
``correlation_id``, ``trace_id`` and ``span_id`` (the gateway's span, when traced),
``client``, ``user_agent``, ``api_key`` (the key's name), ``principal`` (the authorizer's
principal id), ``integration`` (``service:NAME``, ``function:NAME`` or ``mock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..asgi import ASGIApp, Receive, Scope, Send
from ..jsontext import dumps as _encode
from ..jsontext import text as _string
from .answer import observe

logger = logging.getLogger(__name__)

FIELDS = (
    "time",
    "method",
    "path",
    "query",
    "route",
    "status",
    "duration_ms",
    "bytes",
    "correlation_id",
    "trace_id",
    "span_id",
    "client",
    "user_agent",
    "api_key",
    "principal",
    "integration",
)
"""The fields of a record, in the order of an entry's values."""

AccessEntry = tuple[Any, ...]
"""One answered request: the values of its record's ``FIELDS``, ``time`` as epoch seconds (see
:func:`access_entry`). Only text and numbers: an entry keeps nothing of the request alive (its
scope, state, trace, route match), so what a request made is freed when it ends even though the
latest entries are kept — holding ten thousand requests' objects costs every later request
memory it cannot reuse while warm."""

AccessSink = Callable[[AccessEntry], None]


class AccessLog:
    """The access-log step: times the request and hands one entry per answer to ``sink``."""

    def __init__(self, app: ASGIApp, sink: AccessSink) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer, send = observe(scope, send)
        try:
            await self.app(scope, receive, send)
        finally:
            duration = (time.perf_counter() - started) * 1000.0
            try:
                self.sink(access_entry(scope, answer.status, answer.size, duration))
            except Exception:  # a broken sink must not break the answer
                logger.exception("cannot write the access log")


def access_entry(scope: Scope, status: int, size: int, duration_ms: float) -> AccessEntry:
    """The entry of one answered request (status 0: no answer was started)."""
    state: Mapping[str, Any] = scope.get("state") or {}
    match = state.get("route")
    route = match.route if match is not None else None
    trace = state.get("trace")
    key = state.get("api_key")
    auth = state.get("auth")
    client = scope.get("client")
    user_agent = None
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
            break
    if route is None:
        path = integration = None
    else:
        path = route.path
        integration = (
            "mock"
            if route.integration == "mock"
            else f"function:{route.function}"
            if route.integration == "function"
            else f"service:{route.service}"
        )
    return (
        time.time(),
        scope["method"],
        scope["path"],
        scope.get("query_string", b"").decode("latin-1"),
        path,
        status,
        round(duration_ms, 3),
        size,
        state.get("correlation_id"),
        None if trace is None else trace.trace_id,  # (not getattr(..., None): on None, that
        None if trace is None else trace.span_id,  # raises and catches an AttributeError)
        str(client[0]) if client else None,
        user_agent,
        None if key is None else key.name,
        None if auth is None else auth.principal_id,
        integration,
    )


def access_record(entry: AccessEntry) -> dict[str, Any]:
    """The access-log record of an entry (the fields of the module docstring)."""
    record = dict(zip(FIELDS, entry, strict=True))
    record["time"] = iso_millis(entry[0])
    return record


def access_line(entry: AccessEntry) -> str:
    """``jsontext.dumps(access_record(entry))``, written field by field (no dict is built and
    walked by the encoder for every request)."""
    (
        moment,
        method,
        path,
        query,
        route,
        status,
        duration_ms,
        size,
        correlation_id,
        trace_id,
        span_id,
        client,
        user_agent,
        api_key,
        principal,
        integration,
    ) = entry
    return (
        f'{{"time":"{iso_millis(moment)}","method":{_text(method)},"path":{_text(path)}'
        f',"query":{_text(query)},"route":{_text(route)},"status":{_number(status)}'
        f',"duration_ms":{_number(duration_ms)},"bytes":{_number(size)}'
        f',"correlation_id":{_text(correlation_id)},"trace_id":{_text(trace_id)}'
        f',"span_id":{_text(span_id)},"client":{_text(client)}'
        f',"user_agent":{_text(user_agent)},"api_key":{_text(api_key)}'
        f',"principal":{_text(principal)},"integration":{_text(integration)}}}'
    )


def _text(value: Any) -> str:
    """A field that is text or null, as JSON (anything else as the encoder writes it)."""
    if value is None:
        return "null"
    if type(value) is str:
        return _string(value)
    return _encode(value)


def _number(value: Any) -> str:
    """A field that is a number, as JSON (an int as its digits, a float as its repr)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float and math.isfinite(value):
        return repr(value)
    return _encode(value)


_second = -1
_second_text = ""


def iso_millis(moment: float) -> str:
    """``moment`` (epoch seconds) as ISO 8601 UTC with milliseconds and ``Z`` — what
    ``datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")`` gives (with
    ``Z`` for ``+00:00``), the text of each second made once."""
    global _second, _second_text
    second = int(moment)
    micros = round((moment - second) * 1e6)  # as datetime rounds a timestamp
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    if second != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    return _second_text + _MILLIS[micros // 1000]


_MILLIS = tuple(f".{n:03d}Z" for n in range(1000))
"""The end of a time's text for each millisecond (no format spec parsed per request)."""


AccessForward = Callable[[dict[str, Any], str], None]
"""Where the node sends each record: the record and its JSON line (as the file has it)."""


class AccessLogWriter:
    """Keeps, writes and forwards access records (see the module docstring)."""

    def __init__(
        self,
        path: Path | None,
        *,
        keep: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        flush_interval: float = 0.5,
        batch: int = 2000,
        forward: AccessForward | None = None,
    ) -> None:
        self.path = path
        self.recent: deque[AccessEntry] = deque(maxlen=keep)
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self.batch = batch
        self.forward = forward
        self._pending: list[str] = []  # JSON lines not yet in the file
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def __call__(self, entry: AccessEntry) -> None:
        self.recent.append(entry)
        if self.forward is None and self.path is None:
            return
        line = access_line(entry)  # made once, for the file and the forward
        if self.forward is not None:
            self.forward(access_record(entry), line)
        if self.path is not None:
            self._pending.append(line)
            if len(self._pending) >= self.batch:
                self._wake.set()

    async def start(self) -> None:
        if self.path is not None and self._task is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._task = asyncio.create_task(self._run(), name="access-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write the pending lines now."""
        lines, self._pending = self._pending, []
        if lines and self.path is not None:
            await asyncio.to_thread(_append, self.path, lines, self.max_bytes)

    def query(
        self,
        *,
        status: Iterable[int] = (),
        route: str | None = None,
        method: str | None = None,
        correlation_id: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The latest matching records, newest first (``since``: an ISO 8601 time)."""
        statuses = set(status)
        after = _epoch(since) if since is not None else None
        out: list[dict[str, Any]] = []
        for entry in reversed(self.recent):
            moment, entry_method, _, _, entry_route, answered, _, _, correlation = entry[:9]
            if after is not None and moment < after:
                break
            if (
                (statuses and answered not in statuses)
                or (route is not None and entry_route != route)
                or (method is not None and entry_method != method)
                or (correlation_id is not None and correlation != correlation_id)
            ):
                continue
            out.append(access_record(entry))
            if len(out) >= limit:
                break
        return out

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except OSError:
                logger.exception("cannot write the access log %s", self.path)


def _epoch(text: str) -> float:
    """An ISO 8601 time (``Z`` or an offset; UTC when none) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"since: not an ISO 8601 time: {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _append(path: Path, lines: list[str], max_bytes: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size >= max_bytes:
            path.replace(path.with_name(path.name + ".1"))
    with path.open("a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
