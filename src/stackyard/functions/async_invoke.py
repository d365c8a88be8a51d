"""Delivery of asynchronous (``Event``) invocations: retries with backoff, then dead letters.

The :class:`AsyncDispatcher` keeps an in-memory heap of due times mirroring the ``events``
table (loaded at start, so events accepted before a restart are delivered after it). A due
event is invoked through the runtime; on success its row is deleted; on a function error it is
retried after ``retry_delays[attempt]`` (AWS: about 1 and 2 minutes, 2 retries) and then moved
to the dead letters. A throttled delivery (``TooManyRequests``) is retried after
``throttle_delay`` without counting as an attempt, as Lambda does. An event older than its
function's maximum event age (Lambda's ``MaximumEventAgeInSeconds``, 6 hours by default) is
not attempted again: it goes to the dead letters with the reason ``EventAgeExceeded``.
Nothing is deleted before a delivery succeeded or the event is safely in the dead-letter
table: at least once, nothing lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from .errors import FunctionError, TooManyRequests, UnknownFunction
from .events_store import EventStore, StoredEvent

logger = logging.getLogger(__name__)

Deliver = Callable[[str, bytes, str | None], Awaitable[str | None]]
"""Invoke a function synchronously (name, payload, the caller's trace context); returns the
function error text, or None on success."""

MAX_PARALLEL = 64
DEFAULT_MAX_AGE = 6 * 3600.0
"""Lambda's default ``MaximumEventAgeInSeconds``."""


class AsyncDispatcher:
    """Owns the delivery task of the asynchronous invocations of one runtime."""

    def __init__(
        self,
        store: EventStore,
        deliver: Deliver,
        *,
        retry_delays: Sequence[float] = (60.0, 120.0),
        throttle_delay: float = 1.0,
        max_retries: Mapping[str, int] | None = None,
        max_age: Mapping[str, float] | None = None,
    ) -> None:
        self.store = store
        self.deliver = deliver
        self.retry_delays = tuple(retry_delays)
        self.max_retries = dict(max_retries or {})
        self.max_age = dict(max_age or {})
        self.throttle_delay = throttle_delay
        self._heap: list[tuple[float, str]] = []
        self._events: dict[str, StoredEvent] = {}
        self._inflight: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_PARALLEL)

    async def start(self) -> None:
        for event in await self.store.pending():
            self._schedule(event)
        self._task = asyncio.create_task(self._run(), name="functions-async-dispatcher")

    async def stop(self) -> None:
        """Stop delivering; undelivered events stay in the store for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    async def enqueue(self, function: str, payload: bytes, trace: str | None = None) -> str:
        """Persist a new event, then schedule it; returns its request id. ``trace``: the
        caller's trace context, which the delivery continues (however late it comes)."""
        now = time.time()
        event = StoredEvent(str(uuid.uuid4()), function, payload, 0, now, now, trace)
        await self.store.put(event)
        self._schedule(event)
        return event.id

    async def enqueue_many(self, items: list[tuple[str, bytes, str | None]]) -> list[str]:
        """:meth:`enqueue` for several ``(function, payload, trace)`` at once: persisted in one
        transaction, then scheduled in order; their request ids."""
        now = time.time()
        events = [
            StoredEvent(str(uuid.uuid4()), function, payload, 0, now, now, trace)
            for function, payload, trace in items
        ]
        await self.store.put_many(events)
        for event in events:
            self._schedule(event)
        return [event.id for event in events]

    def requeue(self, event: StoredEvent) -> None:
        """Schedule an event that was put back into the store (a redriven dead letter)."""
        self._schedule(event)

    @property
    def pending(self) -> int:
        return len(self._events)

    def _schedule(self, event: StoredEvent) -> None:
        self._events[event.id] = event
        heapq.heappush(self._heap, (event.next_attempt, event.id))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                due, event_id = heapq.heappop(self._heap)
                event = self._events.get(event_id)
                if event is None or event_id in self._inflight or event.next_attempt != due:
                    continue
                await self._slots.acquire()
                self._inflight.add(event_id)
                task = asyncio.create_task(self._deliver(event))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
            delay = self._heap[0][0] - time.time() if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _deliver(self, event: StoredEvent) -> None:
        try:
            await self._attempt(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("delivery of event %s failed; it stays pending", event.id)
            self._retry_later(event, event.attempts, time.time() + self.throttle_delay)
        finally:
            self._inflight.discard(event.id)
            self._slots.release()

    async def _attempt(self, event: StoredEvent) -> None:
        age = time.time() - event.created
        max_age = self.max_age.get(event.function, DEFAULT_MAX_AGE)
        if age > max_age:
            reason = f"EventAgeExceeded: {age:.0f} s old, the maximum is {max_age:.0f} s"
            await self._bury(event, event.attempts, reason)
            return
        try:
            error = await self.deliver(event.function, event.payload, event.trace)
        except UnknownFunction as exc:
            await self._bury(event, event.attempts, str(exc))
            return
        except TooManyRequests:
            due = time.time() + self.throttle_delay
            await self.store.reschedule(event.id, event.attempts, due, "throttled")
            self._retry_later(event, event.attempts, due)
            return
        except FunctionError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            await self.store.delete(event.id)
            self._events.pop(event.id, None)
            return
        attempts = event.attempts + 1
        retries = min(len(self.retry_delays), self.max_retries.get(event.function, 2))
        if attempts > retries:
            await self._bury(event, attempts, error)
            return
        due = time.time() + self.retry_delays[attempts - 1]
        await self.store.reschedule(event.id, attempts, due, error)
        self._retry_later(event, attempts, due)

    def _retry_later(self, event: StoredEvent, attempts: int, due: float) -> None:
        updated = StoredEvent(
            event.id, event.function, event.payload, attempts, due, event.created, event.trace
        )
        self._schedule(updated)

    async def _bury(self, event: StoredEvent, attempts: int, error: str) -> None:
        await self.store.bury(event, attempts, error)
        self._events.pop(event.id, None)
        logger.warning(
            "event %s for %s moved to the dead letters: %s", event.id, event.function, error
        )
