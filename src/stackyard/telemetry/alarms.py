"""Alarms (CloudWatch semantics) on the metric rollups: evaluation, state, actions, history.

An alarm (:class:`~stackyard.config.models.AlarmConfig`) watches ``metric`` over the series
whose labels include ``dimensions`` (their values merged), computes ``statistic`` for each of
the last ``evaluation_periods`` complete periods (aligned to the epoch, ``period`` seconds
each) and compares it with ``threshold``. States: ``OK``, ``ALARM``, ``INSUFFICIENT_DATA``
(the state before the first evaluation). With M = ``datapoints_to_alarm`` (default N):

- ALARM when at least M datapoints breach; otherwise OK, except that missing datapoints follow
  ``treat_missing_data``: ``missing`` — not evaluated, and INSUFFICIENT_DATA when all N are
  missing; ``notBreaching`` — count as good; ``breaching`` — count as breaching; ``ignore`` —
  the current state is kept when all N are missing.

:class:`Alarms` evaluates each alarm once per period, right after the period ends (a loop
ticking every ``interval`` seconds — injectable, as is the ``clock``; ``None`` = no loop), or
on demand with :meth:`Alarms.evaluate`. On a state change it stores the change (``alarm_state`` and
``alarm_history`` in the metrics store), writes a log record to the central log store
(service ``stackyard-alarms``), POSTs an :class:`AlarmEvent` as JSON to every ``webhook``
action (aiohttp, ``webhook_timeout``; failures are logged, never fatal), logs a warning on the
node's console for ``log: true`` actions, and calls every hook registered with
:meth:`Alarms.on_alarm` (the autoscaler's way in; a hook may be sync or async).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import operator
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from ..config.models import AlarmConfig
from .rollups import MetricQuery, MetricsStore

logger = logging.getLogger(__name__)

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"

_COMPARE: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AlarmEvent:
    """One state change, as hooks receive it and webhooks get it (``as_json``)."""

    alarm: str
    state: str
    previous_state: str
    reason: str
    time: float
    config: AlarmConfig
    values: tuple[float | None, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "state": self.state,
            "previous_state": self.previous_state,
            "reason": self.reason,
            "time": iso(self.time),
            "metric": self.config.metric,
            "dimensions": dict(self.config.dimensions),
            "statistic": self.config.statistic,
            "comparison": self.config.comparison,
            "threshold": self.config.threshold,
            "period": self.config.period,
            "evaluation_periods": self.config.evaluation_periods,
            "datapoints_to_alarm": self.config.required,
            "values": list(self.values),
        }


AlarmHook = Callable[[AlarmEvent], Awaitable[None] | None]


@dataclass
class _State:
    state: str = INSUFFICIENT_DATA
    reason: str = "Unchecked: initial alarm creation"
    changed_at: float = 0.0
    evaluated_at: float | None = None
    last_end: float = 0.0
    values: tuple[float | None, ...] = field(default_factory=tuple)


def decide(config: AlarmConfig, values: list[float | None], current: str) -> tuple[str, str]:
    """The new state and its reason for datapoints ``values`` (oldest first, None = missing)."""
    compare, words = _COMPARE[config.comparison]
    present = [v for v in values if v is not None]
    breaching = sum(1 for v in present if compare(v, config.threshold))
    missing = len(values) - len(present)
    n, m = config.evaluation_periods, config.required
    shown = "[" + ", ".join("-" if v is None else f"{v:g}" for v in values) + "]"
    if not present and config.treat_missing_data in ("missing", "ignore"):
        reason = f"No datapoints in the last {n} period(s) of {config.period:g}s"
        if config.treat_missing_data == "ignore":
            return current, reason + " (missing data ignored)"
        return INSUFFICIENT_DATA, reason
    if config.treat_missing_data == "breaching":
        breaching += missing
    crossed = breaching >= m
    how = "crossed" if crossed else "not crossed"
    reason = (
        f"Threshold {how}: {breaching} of the last {n} datapoint(s) {shown} "
        f"{'were' if breaching != 1 else 'was'} {words} the threshold ({config.threshold:g});"
        f" {m} needed"
    )
    return (ALARM if crossed else OK), reason


class Alarms:
    """The configured alarms of a node: evaluation loop, state, actions and history."""

    def __init__(
        self,
        configs: Mapping[str, AlarmConfig],
        store: MetricsStore,
        *,
        flush: Callable[[], Awaitable[None]],
        log: Callable[[Mapping[str, Any]], None],
        clock: Callable[[], float] = time.time,
        interval: float | None = 2.0,
        webhook_timeout: float = 5.0,
    ) -> None:
        self.configs = dict(configs)
        self.store = store
        self.interval = interval
        self.webhook_timeout = webhook_timeout
        self._flush = flush
        self._log = log
        self._clock = clock
        self._states = {name: _State(changed_at=clock()) for name in self.configs}
        self._hooks: list[AlarmHook] = []
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Restore the stored states and start the evaluation loop."""
        if self._task is not None:
            return
        for name, (state, reason, at) in (await self.store.alarm_states()).items():
            if name in self._states:
                self._states[name] = _State(state, reason, at)
        if self.configs:
            self._session = aiohttp.ClientSession()
            if self.interval is not None:
                self._task = asyncio.create_task(self._run(self.interval), name="telemetry-alarms")

    async def stop(self) -> None:
        """Stop the loop, give pending webhooks a moment, close the HTTP session."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sends:
            _, pending = await asyncio.wait(set(self._sends), timeout=self.webhook_timeout)
            for send in pending:
                send.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def on_alarm(self, hook: AlarmHook) -> Callable[[], None]:
        """Call ``hook(event)`` on every state change; returns a function that unregisters."""
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook) if hook in self._hooks else None

    def states(self) -> list[dict[str, Any]]:
        """Each alarm with its configuration, state, reason and last change."""
        out = []
        for name in sorted(self.configs):
            config, state = self.configs[name], self._states[name]
            out.append(
                {
                    "name": name,
                    "state": state.state,
                    "reason": state.reason,
                    "changed_at": iso(state.changed_at),
                    "evaluated_at": iso(state.evaluated_at) if state.evaluated_at else None,
                    "values": list(state.values),
                    **config.model_dump(mode="json"),
                }
            )
        return out

    async def evaluate(self, names: list[str] | None = None) -> list[AlarmEvent]:
        """Flush the metrics and evaluate ``names`` (default: all) now; the state changes."""
        async with self._lock:
            await self._flush()
            now = self._clock()
            events = []
            for name in names if names is not None else sorted(self.configs):
                event = await self._evaluate(name, now)
                if event is not None:
                    events.append(event)
            return events

    async def _run(self, interval: float) -> None:
        while True:
            try:
                now = self._clock()
                due = [
                    name
                    for name, config in self.configs.items()
                    if now // config.period * config.period > self._states[name].last_end
                ]
                if due:
                    await self.evaluate(due)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alarm evaluation failed")
            await asyncio.sleep(interval)

    async def _evaluate(self, name: str, now: float) -> AlarmEvent | None:
        config, state = self.configs[name], self._states[name]
        period = int(config.period)
        end = int(now // period * period)
        since = end - config.evaluation_periods * period
        query = MetricQuery(config.metric, config.dimensions, period, since, end)
        _, stats = await self.store.query(query)
        by_time = {s.time: s.value(config.statistic) for s in stats}
        values = [by_time.get(since + k * period) for k in range(config.evaluation_periods)]
        new, reason = decide(config, values, state.state)
        state.last_end, state.evaluated_at, state.values = end, now, tuple(values)
        if new == state.state:
            state.reason = reason
            return None
        event = AlarmEvent(name, new, state.state, reason, now, config, tuple(values))
        state.state, state.reason, state.changed_at = new, reason, now
        await self.store.record_alarm(name, now, event.previous_state, new, reason, event.as_json())
        self._act(event)
        return event

    def _act(self, event: AlarmEvent) -> None:
        level = "warn" if event.state == ALARM else "info"
        text = f"alarm {event.alarm}: {event.previous_state} -> {event.state}: {event.reason}"
        record = {"level": level, "msg": text, "alarm": event.alarm, "state": event.state}
        self._log(
            {
                "time": iso(event.time),
                "service": "stackyard-alarms",
                "instance": event.alarm,
                "stream": "stdout",
                "message": json.dumps(record),
            }
        )
        logger.info("%s", text)
        for action in event.config.actions:
            if action.log:
                logger.warning("%s", text)
            if action.webhook is not None:
                self._spawn(self._post(action.webhook, event))
        for hook in list(self._hooks):
            try:
                result = hook(event)
            except Exception:
                logger.exception("alarm hook %r failed", hook)
                continue
            if inspect.isawaitable(result):
                self._spawn(self._await_hook(result))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _await_hook(self, result: Awaitable[None]) -> None:
        try:
            await result
        except Exception:
            logger.exception("alarm hook failed")

    async def _post(self, url: str, event: AlarmEvent) -> None:
        session = self._session
        if session is None:
            return
        try:
            timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
            async with session.post(url, json=event.as_json(), timeout=timeout) as response:
                if response.status >= 400:
                    logger.warning(
                        "alarm %s: webhook %s answered %s", event.alarm, url, response.status
                    )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning("alarm %s: webhook %s failed: %s", event.alarm, url, exc)
