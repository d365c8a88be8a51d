"""The access log: one JSON line per request the gateway answered, with its correlation id.

:class:`AccessLog` is the pipeline step (just inside the correlation step, so it sees the
correlation id and, after the answer, the matched route, the API key and the principal); it
hands each :class:`dict` record to a sink. :class:`AccessLogWriter` is the node's sink: it
keeps the latest records in memory for ``GET /_stackyard/api/requests`` (filters: ``status``,
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
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..asgi import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

AccessSink = Callable[[dict[str, Any]], None]


class AccessLog:
    """The access-log step: times the request and hands one record per answer to ``sink``."""

    def __init__(self, app: ASGIApp, sink: AccessSink) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = [0, 0]  # status, body bytes

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
            elif message["type"] == "http.response.body":
                answer[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            duration = (time.perf_counter() - started) * 1000.0
            try:
                self.sink(access_record(scope, answer[0], answer[1], duration))
            except Exception:  # a broken sink must not break the answer
                logger.exception("cannot write the access log")


def access_record(scope: Scope, status: int, size: int, duration_ms: float) -> dict[str, Any]:
    """The access-log record of one answered request (status 0: no answer was started)."""
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
    integration = None
    if route is not None:
        integration = (
            "mock"
            if route.integration == "mock"
            else f"function:{route.function}"
            if route.integration == "function"
            else f"service:{route.service}"
        )
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "route": route.path if route is not None else None,
        "status": status,
        "duration_ms": round(duration_ms, 3),
        "bytes": size,
        "correlation_id": state.get("correlation_id"),
        "trace_id": getattr(trace, "trace_id", None),
        "span_id": getattr(trace, "span_id", None),
        "client": str(client[0]) if client else None,
        "user_agent": user_agent,
        "api_key": getattr(key, "name", None),
        "principal": getattr(auth, "principal_id", None),
        "integration": integration,
    }


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
        forward: AccessSink | None = None,
    ) -> None:
        self.path = path
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self.batch = batch
        self.forward = forward
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def __call__(self, record: dict[str, Any]) -> None:
        self.recent.append(record)
        if self.forward is not None:
            self.forward(record)
        if self.path is not None:
            self._pending.append(json.dumps(record, separators=(",", ":")))
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
        """The latest matching records, newest first."""
        statuses = set(status)
        out: list[dict[str, Any]] = []
        for record in reversed(self.recent):
            if since is not None and record["time"] < since:
                break
            if (
                (statuses and record["status"] not in statuses)
                or (route is not None and record["route"] != route)
                or (method is not None and record["method"] != method)
                or (correlation_id is not None and record["correlation_id"] != correlation_id)
            ):
                continue
            out.append(record)
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


def _append(path: Path, lines: list[str], max_bytes: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size >= max_bytes:
            path.replace(path.with_name(path.name + ".1"))
    with path.open("a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
