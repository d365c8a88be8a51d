"""The telemetry component: owns the span, log and metric stores, their writers (a child
process each for spans and logs, a thread for metrics), retention, the metrics aggregator, its
collectors and the alarms.

    telemetry = Telemetry(data_dir, retention=RetentionSettings(max_age=3 * 86400),
                          alarms=stack.alarms)
    await telemetry.start()
    supervisor_log_writer.on_record = telemetry.log_sink     # output lines → logs (+ EMF)
    control_routes += telemetry.routes()                     # OTLP, Zipkin, logs, metrics
    telemetry.record_span(span)                              # function runtime spans
    telemetry.record_gateway_request(record)                 # gateway spans, compact form
    telemetry.metrics.count("gateway_requests_total", {...}) # any MetricsRecorder producer
    telemetry.add_collector(lambda m: m.set("instance_healthy", {...}, 1.0))
    telemetry.on_alarm(autoscaler.on_alarm)                  # AlarmEvent on state changes
    ...
    await telemetry.stop()                                   # flushes; nothing left running

``start`` opens the SQLite files (the span and log stores' writer processes start side by side)
and starts three tasks: retention (every
``retention.interval`` seconds; the first pass runs inside ``start``), the metrics flush (every
``metrics_interval`` seconds, aligned to the wall clock: collectors run, then the aggregator's
interval statistics go to the rollups) and the alarm loop (ticking every ``alarm_interval``
seconds; ``None`` leaves evaluation to ``telemetry.alarms.evaluate()``). ``clock`` (epoch
seconds) dates metric points, alarm evaluations and metric retention; tests inject one.
``stop`` cancels the tasks, flushes the last metrics, commits everything queued and joins the
writer threads and processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from ..config.models import AlarmConfig
from .alarms import AlarmHook, Alarms
from .collectors import Collector, ProcessCollector
from .emf import emf_from_record, record_emf
from .gateway_spans import GatewayRecord
from .ingest import ingest_routes
from .logs import LogStore
from .metrics import MetricsAggregator
from .metrics_api import metrics_routes
from .model import Span
from .query import log_search_route, zipkin_query_routes
from .retention import RetentionSettings
from .rollups import MetricsStore
from .spans import SpanStore

logger = logging.getLogger(__name__)


class Telemetry:
    """Traces, logs, metrics and alarms of a node: stores, ingest and query routes, hooks."""

    def __init__(
        self,
        data_dir: Path,
        *,
        retention: RetentionSettings | None = None,
        alarms: Mapping[str, AlarmConfig] | None = None,
        clock: Callable[[], float] = time.time,
        metrics_interval: float = 10.0,
        alarm_interval: float | None = 2.0,
        webhook_timeout: float = 5.0,
        process_metrics: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.retention = retention or RetentionSettings()
        self.clock = clock
        self.metrics_interval = metrics_interval
        self.spans = SpanStore(self.data_dir)
        self.logs = LogStore(self.data_dir)
        self.metrics = MetricsAggregator()
        self.metric_store = MetricsStore(self.data_dir)
        self.alarms = Alarms(
            alarms or {},
            self.metric_store,
            flush=self.flush_metrics,
            log=self.logs.add,
            clock=clock,
            interval=alarm_interval,
            webhook_timeout=webhook_timeout,
        )
        self._collectors: list[Collector] = [ProcessCollector()] if process_metrics else []
        self._last_flush = clock()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the stores and start the retention, metrics flush and alarm tasks."""
        if self._tasks:
            return
        stores: list[tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = [
            (store.start, store.stop) for store in (self.spans, self.logs, self.metric_store)
        ]
        results = await asyncio.gather(*(start() for start, _ in stores), return_exceptions=True)
        started = [stop for (_, stop), res in zip(stores, results, strict=True) if res is None]
        try:
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            await self.alarms.start()
        except BaseException:
            for stop in reversed(started):
                await stop()
            raise
        self._last_flush = self.clock()
        try:  # the first retention pass, done before anything new is recorded
            await self.enforce_retention()
        except Exception:
            logger.exception("telemetry retention failed")
        self._tasks = [
            self._spawn(self._retain(), "telemetry-retention"),
            self._spawn(self._flush_loop(), "telemetry-metrics-flush"),
        ]

    async def stop(self) -> None:
        """Stop the tasks, store the last metrics, flush what is queued, close the stores."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.alarms.stop()
        if tasks:
            with contextlib.suppress(Exception):
                await self.flush_metrics()
        results = await asyncio.gather(
            self.metric_store.stop(), self.logs.stop(), self.spans.stop(), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def routes(self) -> list[BaseRoute]:
        """Every telemetry HTTP endpoint, to mount at the root of the control app."""
        return [
            *ingest_routes(self.spans, self.logs),
            *zipkin_query_routes(self.spans),
            log_search_route(self.logs),
            *metrics_routes(self.metrics, self.metric_store, self.alarms, self.clock),
        ]

    def log_sink(self, record: Mapping[str, Any]) -> None:
        """The supervisor's ``on_record`` sink: queues one output line (never raises); an
        embedded-metric-format line also records its metrics."""
        self.logs.add(record)
        message = record.get("message")
        if type(message) is str and '"_aws"' in message:
            try:
                record_emf(self.metrics, emf_from_record(record))
            except Exception:
                logger.exception("cannot record EMF metrics")

    def record_span(self, span: Span) -> None:
        """Store a span produced in-process (raises ``Overloaded`` when the queue is full)."""
        self.spans.add(span)

    def record_gateway_request(self, record: GatewayRecord) -> None:
        """Store a traced gateway request's spans, given in compact form
        (:mod:`.gateway_spans`; the span store's writer process builds them)."""
        self.spans.add(record)

    def add_collector(self, collector: Collector) -> Callable[[], None]:
        """Call ``collector(self.metrics)`` before every metrics flush (publish gauges there).
        Returns a function that removes it."""
        self._collectors.append(collector)
        return lambda: self._collectors.remove(collector) if collector in self._collectors else None

    def on_alarm(self, callback: AlarmHook) -> Callable[[], None]:
        """Call ``callback(AlarmEvent)`` on every alarm state change (sync or async).
        Returns a function that unregisters it."""
        return self.alarms.on_alarm(callback)

    async def flush_metrics(self) -> None:
        """Run the collectors, hand the aggregator's interval statistics to the rollups and
        wait until they are stored."""
        for collector in list(self._collectors):
            try:
                collector(self.metrics)
            except Exception:
                logger.exception("metrics collector %r failed", collector)
        now = self.clock()
        middle = (self._last_flush + now) / 2 if now > self._last_flush else now
        self._last_flush = now
        self.metric_store.add(middle, self.metrics.drain())
        await self.metric_store.flush()

    async def flush(self) -> None:
        """Wait until everything queued or recorded so far is stored and searchable."""
        await self.spans.flush()
        await self.logs.flush()
        await self.flush_metrics()

    async def enforce_retention(self) -> None:
        """Apply the retention settings now (also done every ``retention.interval`` seconds)."""
        await self.spans.enforce_retention(self.retention)
        await self.logs.enforce_retention(self.retention)
        await self.metric_store.enforce_retention(
            self.retention.metric_ages, self.retention.max_age, self.clock()
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(coro, name=name)

    async def _retain(self) -> None:
        while True:
            await asyncio.sleep(self.retention.interval)
            try:
                await self.enforce_retention()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("telemetry retention failed")

    async def _flush_loop(self) -> None:
        interval = self.metrics_interval
        while True:
            await asyncio.sleep(interval - time.time() % interval)
            try:
                await self.flush_metrics()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("metrics flush failed")
