"""The function runtime: every function's worker pool, async invocations, schedules, Lambda API.

:class:`FunctionRuntime` is the component the node owns (``start``/``stop``). It builds one
:class:`~stackyard.functions.pool.FunctionPool` per function (worker environment = the node's
standard environment + the Lambda variables + the function's ``env``), the asynchronous
dispatcher on ``<data_dir>/functions.sqlite3``, the scheduler of ``schedule`` events, and one
memory watchdog task. ``routes()`` is the Lambda API (see ``api.py``) for the control port.
Given ``spans`` (a ``SpanRecorder``), invocations are spans (see ``tracing.py``): every one
whose caller sampled its trace and, of those that start a trace, the ones ``sampler`` takes
(every one without a sampler).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.models import FunctionConfig
from ..supervisor.logs import LogWriter
from .async_invoke import AsyncDispatcher
from .errors import InvalidPayload, RuntimeStopped, TooManyRequests, UnknownFunction
from .events import new_request_id
from .events_store import DeadLetter, EventStore
from .logs import FunctionLogs
from .pool import FunctionPool
from .runtime_api import Invocation
from .schedule import (
    Clock,
    ScheduledTarget,
    Scheduler,
    SystemClock,
    parse_schedule,
    scheduled_event,
)
from .tracing import InvocationSpan
from .worker import WorkerSpec

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..gateway.tracecontext import SpanContext
    from ..telemetry.instruments import MetricsRecorder, SpanRecorder

MEMORY_POLL = 0.1
"""Seconds between two looks at the resident size of busy workers."""


class InvokeResult:
    """The answer of a synchronous invocation, as Lambda's Invoke API reports it; ``duration``
    is in milliseconds, from delivery to the worker until its answer (one per invocation: a
    plain slotted class, cheaper to make than a frozen dataclass)."""

    __slots__ = ("duration", "function_error", "log_tail", "payload", "request_id")

    def __init__(
        self,
        payload: bytes,
        function_error: str | None,
        log_tail: str,
        request_id: str,
        duration: float,
    ) -> None:
        self.payload = payload
        self.function_error = function_error
        self.log_tail = log_tail
        self.request_id = request_id
        self.duration = duration


@dataclass(frozen=True)
class FunctionStatus:
    name: str
    workers: int
    busy: int
    idle: int
    queued: int


class FunctionRuntime:
    """Runs the stack's functions (see the module docstring)."""

    def __init__(
        self,
        functions: Mapping[str, FunctionConfig],
        *,
        stack_root: Path,
        data_dir: Path,
        log_dir: Path,
        base_env: Mapping[str, str],
        host: str = "127.0.0.1",
        region: str = "us-east-1",
        account_id: str = "000000000000",
        retry_delays: Sequence[float] = (60.0, 120.0),
        queue_timeout: float = 3.0,
        max_queued: int = 100,
        clock: Clock | None = None,
        logs: LogWriter | None = None,
        spans: SpanRecorder | None = None,
        metrics: MetricsRecorder | None = None,
        sampler: Callable[[str], bool] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.spans = spans
        self.sampler = sampler
        self.metrics = metrics
        self.stack_root = stack_root
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.base_env = dict(base_env)
        self.host = host
        self.region = region
        self.account_id = account_id
        self.started_at = time.time()
        self.logs = FunctionLogs.like(logs) if logs is not None else FunctionLogs(log_dir)
        self.store = EventStore(data_dir / "functions.sqlite3")
        self.dispatcher = AsyncDispatcher(
            self.store,
            self._deliver,
            retry_delays=retry_delays,
            max_retries={name: fn.retries for name, fn in self.functions.items()},
            max_age={name: fn.max_event_age for name, fn in self.functions.items()},
        )
        self._queue_timeout = queue_timeout
        self._max_queued = max_queued
        self.pools = {
            name: self._make_pool(name, config) for name, config in self.functions.items()
        }
        self._clock = clock or SystemClock()
        self.scheduler = Scheduler(self._targets(), self._fire, self._clock)
        self._watchdog: asyncio.Task[None] | None = None
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # per function: its invocation counter and duration histogram, bound once
        self._series: dict[str, tuple[Callable[[float], None], Callable[[float], None]]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.store.open()
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))
        self._running = True
        await self.dispatcher.start()
        self.scheduler.start()
        self._watchdog = asyncio.create_task(self._watch_memory(), name="functions-memory")

    async def stop(self) -> None:
        self._running = False
        await self.scheduler.stop()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self.dispatcher.stop()
        await asyncio.gather(*(pool.stop() for pool in self.pools.values()))
        await self.store.close()
        self.logs.close()

    async def apply(self, functions: Mapping[str, FunctionConfig], drain: float = 30.0) -> None:
        """Run ``functions`` from now on: pools of new and changed functions start (warm workers
        ready) before they take invocations; pools of changed and removed functions finish the
        invocations they have (up to ``drain`` seconds) and stop. Unchanged functions keep their
        warm workers. Schedules and async retry limits follow the new definitions."""
        wanted = dict(functions)
        fresh = {
            name: self._make_pool(name, config)
            for name, config in wanted.items()
            if self.functions.get(name) != config
        }
        await asyncio.gather(*(pool.start() for pool in fresh.values()))
        retired = [pool for name, pool in self.pools.items() if name not in wanted or name in fresh]
        self.functions = wanted
        self.pools = {name: fresh.get(name) or self.pools[name] for name in wanted}
        self.dispatcher.max_retries = {name: fn.retries for name, fn in wanted.items()}
        self.dispatcher.max_age = {name: fn.max_event_age for name, fn in wanted.items()}
        await self.scheduler.stop()
        self.scheduler = Scheduler(self._targets(), self._fire, self._clock)
        if self._running:
            self.scheduler.start()
        await asyncio.gather(*(_drain_and_stop(pool, drain) for pool in retired))

    # -- queries -----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self.functions)

    def config(self, name: str) -> FunctionConfig:
        try:
            return self.functions[name]
        except KeyError:
            raise UnknownFunction(self._not_found(name)) from None

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def status(self, name: str) -> FunctionStatus:
        pool = self._pool(name)
        return FunctionStatus(name, len(pool.workers), pool.busy, pool.idle, pool.queued)

    async def dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self.store.dead_letters(function, limit)

    async def redrive(self, dead_letter_id: str) -> str:
        """Put a dead letter back in the delivery queue; returns its id."""
        event = await self.store.redrive(dead_letter_id)
        self.dispatcher.requeue(event)
        return event.id

    async def event_counts(self) -> dict[str, tuple[int, int]]:
        return await self.store.counts()

    def routes(self) -> list[BaseRoute]:
        from .api import lambda_routes

        return lambda_routes(self)

    # -- invoking ----------------------------------------------------------------------------------

    async def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        client_context: str | None = None,
        tail: bool = False,
        traceparent: str | None = None,
        amzn_trace_id: str | None = None,
        context: SpanContext | None = None,
        payload_is_json: bool = False,
    ) -> InvokeResult:
        """Invoke ``name`` synchronously.

        ``client_context`` is the base64 JSON of the Invoke API's ``X-Amz-Client-Context``.
        The caller's trace context (see :mod:`.tracing`) is ``context``, its span already parsed
        (the gateway's), or else ``traceparent`` (W3C) or else ``amzn_trace_id`` (X-Ray
        ``Root=...;Parent=...``); without one the invocation starts a trace.
        ``payload_is_json``: the caller encoded the payload itself (the gateway's events), so it
        is not parsed again to check it. Raises ``UnknownFunction``, ``InvalidPayload`` (not
        JSON), ``TooManyRequests``, ``RuntimeStopped``; a function error is a result with
        ``function_error`` set.
        Counts ``function_invocations_total``, ``function_errors_total``,
        ``function_throttles_total`` and ``function_duration_seconds`` when given metrics.
        """
        pool = self._pool(name)
        if not self._running:
            raise RuntimeStopped("the function runtime is not running")
        if not payload_is_json:
            validate_payload(payload)
        started = time.perf_counter()
        loop = self._loop or asyncio.get_running_loop()
        spans = self.spans
        span = InvocationSpan.begin(
            name, traceparent, amzn_trace_id, spans is not None, self.sampler, context
        )
        invocation = Invocation(
            request_id=new_request_id(),
            payload=payload or b"{}",
            function_arn=self.arn(name),
            timeout=pool.spec.timeout,
            outcome=loop.create_future(),
            client_context=_decode_client_context(client_context),
            trace_id=span.xray_header(),
        )
        error: str | None = None
        try:
            result = await pool.invoke(invocation, tail=tail)
            error = result.outcome.error
        except BaseException as exc:
            error = type(exc).__name__
            if isinstance(exc, TooManyRequests) and self.metrics is not None:
                self.metrics.count("function_throttles_total", {"function": name})
            raise
        finally:
            if spans is not None:
                span.finish(spans, invocation.request_id, error)
        if self.metrics is not None:
            self._count(name, error, time.perf_counter() - started)
        return InvokeResult(
            result.outcome.payload,
            result.outcome.error,
            result.log,
            invocation.request_id,
            result.duration_ms,
        )

    def _count(self, name: str, error: str | None, seconds: float) -> None:
        """One finished invocation in the function's metrics."""
        assert self.metrics is not None
        series = self._series.get(name)
        if series is None:
            labels = {"function": name}
            series = self._series[name] = (
                self.metrics.counter("function_invocations_total", labels),
                self.metrics.histogram("function_duration_seconds", labels),
            )
        invocations, duration = series
        invocations(1.0)
        if error is not None:
            self.metrics.count("function_errors_total", {"function": name})
        duration(seconds)

    async def invoke_async(
        self,
        name: str,
        payload: bytes,
        *,
        traceparent: str | None = None,
        amzn_trace_id: str | None = None,
    ) -> str:
        """Accept an ``Event`` invocation: persisted before this returns its request id. The
        caller's trace context (as for :meth:`invoke`) is kept with the event, so its delivery
        — and each retry — is a span of the caller's trace."""
        self._pool(name)
        if not self._running:
            raise RuntimeStopped("the function runtime is not running")
        validate_payload(payload)
        trace = traceparent or amzn_trace_id or None
        return await self.dispatcher.enqueue(name, payload or b"{}", trace)

    async def invoke_async_many(self, items: list[tuple[str, bytes, str | None]]) -> list[str]:
        """Several ``Event`` invocations ``(function, payload, trace context)`` accepted at
        once, persisted in one transaction; their request ids, in order. Checked as
        :meth:`invoke_async` checks one, before any is kept."""
        if not self._running:
            raise RuntimeStopped("the function runtime is not running")
        for name, payload, _ in items:
            self._pool(name)
            validate_payload(payload)
        return await self.dispatcher.enqueue_many(
            [(name, payload or b"{}", trace or None) for name, payload, trace in items]
        )

    async def _deliver(self, name: str, payload: bytes, trace: str | None) -> str | None:
        if trace is not None and trace.lstrip().startswith("Root="):
            result = await self.invoke(name, payload, amzn_trace_id=trace)
        else:
            result = await self.invoke(name, payload, traceparent=trace)
        if result.function_error is None:
            return None
        return result.payload.decode("utf-8", "replace")

    # -- building ----------------------------------------------------------------------------------

    def _make_pool(self, name: str, config: FunctionConfig) -> FunctionPool:
        return FunctionPool(
            self._spec(name, config),
            concurrency=config.concurrency,
            warm=config.warm,
            logs=self.logs,
            queue_timeout=self._queue_timeout,
            max_queued=self._max_queued,
        )

    def _pool(self, name: str) -> FunctionPool:
        pool = self.pools.get(name)
        if pool is None:
            raise UnknownFunction(self._not_found(name))
        return pool

    def _not_found(self, name: str) -> str:
        return f"Function not found: {self.arn(name)}"

    def _spec(self, name: str, config: FunctionConfig) -> WorkerSpec:
        # like services: the node's environment < the standard environment < Lambda's < the
        # function's own
        env = dict(os.environ)
        env.update(self.base_env)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "_HANDLER": config.handler,
                "LAMBDA_TASK_ROOT": str(self.stack_root),
                "STACKYARD_SERVICE": name,
                "OTEL_SERVICE_NAME": name,
            }
        )
        if config.runtime == "python":
            env.setdefault("PYTHONUNBUFFERED", "1")
            env["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.11"
            argv: tuple[str, ...] = (sys.executable, "-m", "stackyard.functions.bootstrap")
            cwd = self.stack_root
        else:
            folder = self.stack_root / Path(config.handler).parent
            argv = (str(folder / "bootstrap"),)
            cwd = folder
            env["LAMBDA_TASK_ROOT"] = str(folder)
            env["_HANDLER"] = Path(config.handler).name  # relative to its folder, the task root
        env.update(config.env)
        return WorkerSpec(
            function=name,
            argv=argv,
            cwd=cwd,
            env=env,
            memory_mb=config.memory_mb,
            timeout=config.timeout,
            arn=self.arn(name),
            channel=config.runtime == "python",
        )

    def _targets(self) -> list[ScheduledTarget]:
        targets = []
        for name, config in self.functions.items():
            for index, event in enumerate(config.events, start=1):
                if event.schedule is None or not event.schedule.enabled:
                    continue
                rule = (
                    f"arn:aws:events:{self.region}:{self.account_id}:rule/{name}-schedule-{index}"
                )
                targets.append(
                    ScheduledTarget(
                        name, parse_schedule(event.schedule.rate), rule, event.schedule.input
                    )
                )
        return targets

    async def _fire(self, target: ScheduledTarget, moment: datetime) -> None:
        if target.input is not None:  # EventBridge's constant input replaces the event
            document: object = target.input
        else:
            document = scheduled_event(
                rule_arn=target.rule_arn, account=self.account_id, region=self.region, moment=moment
            )
        await self.invoke_async(target.function, json.dumps(document).encode())

    async def _watch_memory(self) -> None:
        while True:
            await asyncio.sleep(MEMORY_POLL)
            for pool in self.pools.values():
                pool.check_memory()


def validate_payload(payload: bytes) -> None:
    """Raise ``InvalidPayload`` unless ``payload`` is empty or one JSON document."""
    if not payload:
        return
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"Could not parse request body into json: {exc}") from exc


def _decode_client_context(value: str | None) -> str | None:
    """The Invoke API sends base64 JSON; the Runtime API carries the JSON itself."""
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidPayload("Client context must be a valid Base64-encoded JSON object.") from None


async def _drain_and_stop(pool: FunctionPool, timeout: float) -> None:  # noqa: ASYNC109
    """Stop ``pool`` once its running and queued invocations are done (or ``timeout`` passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (pool.busy or pool.queued) and loop.time() < deadline:  # noqa: ASYNC110 (counters)
        await asyncio.sleep(0.05)
    await pool.stop()
