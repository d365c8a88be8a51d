"""The worker pool of one function: concurrency limit, warm workers, the bounded wait queue.

- At most ``concurrency`` workers exist (starting, idle or busy); ``warm`` of them are started
  with the pool and replaced when they die, so a warm invoke never waits for a process.
- An invoke takes an idle worker (most recently used first, to keep caches hot), or starts a
  new one (cold start) while under the limit, or waits in a FIFO queue of at most
  ``max_queued`` callers for at most ``queue_timeout`` seconds → ``TooManyRequests``. Every
  waiter has the same timeout, so the queue is in deadline order too: one
  :class:`~stackyard.deadline.Deadline`, the first waiter's, expires the waiters (not a timer
  per waiter).
- A worker that died (timeout, crash, out of memory) is dropped; its slot goes to the first
  waiter, and the pool tops itself up to ``warm`` in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

from ..deadline import EARLY, Deadline
from .errors import RuntimeStopped, TooManyRequests, WorkerStartError
from .logs import FunctionLogs
from .runtime_api import Invocation, Outcome, error_payload
from .worker import Worker, WorkerResult, WorkerSpec

logger = logging.getLogger(__name__)


class FunctionPool:
    """Workers of one function."""

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        concurrency: int,
        warm: int,
        logs: FunctionLogs,
        queue_timeout: float = 3.0,
        max_queued: int = 100,
    ) -> None:
        self.spec = spec
        self.concurrency = concurrency
        self.warm = min(warm, concurrency)
        self.logs = logs
        self.queue_timeout = queue_timeout
        self.max_queued = max_queued
        self.workers: set[Worker] = set()
        self._idle: list[Worker] = []
        self._waiters: deque[tuple[float, asyncio.Future[Worker | None]]] = deque()
        """(deadline, waiter) of the callers waiting, oldest first."""
        self._expiry: Deadline | None = None  # the first waiter's
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._reapers: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def busy(self) -> int:
        return sum(1 for worker in self.workers if worker.state == "busy")

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def start(self) -> None:
        """Start the warm workers and wait (bounded by their init timeout) until they are ready."""
        for _ in range(self.warm):
            self._spawn_warm()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        self._stopping = True
        if self._expiry is not None:
            self._expiry.cancel()
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeStopped(f"function {self.spec.function} is stopping"))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await asyncio.gather(*(worker.stop() for worker in list(self.workers)))
        await asyncio.gather(*list(self._reapers), return_exceptions=True)
        self.workers.clear()
        self._idle.clear()

    async def invoke(self, invocation: Invocation, *, tail: bool = False) -> WorkerResult:
        """Run ``invocation`` on a worker; raises ``TooManyRequests`` or ``RuntimeStopped``."""
        if self._stopping:
            raise RuntimeStopped(f"function {self.spec.function} is stopping")
        try:
            worker = await self._acquire()
        except WorkerStartError as exc:
            document = error_payload("Runtime.InvalidEntrypoint", str(exc))
            return WorkerResult(Outcome(document, "Unhandled"), "", 0.0)
        try:
            return await worker.invoke(invocation, tail=tail)
        finally:
            self._release(worker)

    def check_memory(self) -> None:
        for worker in self.workers:
            worker.check_memory()

    # -- acquiring and releasing -----------------------------------------------------------------

    async def _acquire(self) -> Worker:
        while True:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
            if len(self.workers) < self.concurrency:
                return await self._spawn()
            if len(self._waiters) >= self.max_queued:
                raise TooManyRequests(_throttle_message(self.spec.function))
            worker_or_slot = await self._wait()
            if worker_or_slot is not None:
                return worker_or_slot
            if len(self.workers) < self.concurrency:  # a slot was freed for us
                return await self._spawn()

    async def _wait(self) -> Worker | None:
        """Wait in the queue for a worker (or, None, a free slot); raises ``TooManyRequests``
        when the queue timeout passes first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Worker | None] = loop.create_future()
        self._waiters.append((loop.time() + self.queue_timeout, waiter))
        if self._expiry is None:
            self._expiry = Deadline(loop, self._expire)
        self._expiry.expire_at(self._waiters[0][0])
        try:
            return await waiter
        except asyncio.CancelledError:  # the caller went away: what it was handed goes on
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is not None:
                    self._release(handed)
                elif not self._stopping:
                    self._pass_slot()
            else:
                self._waiters = deque(item for item in self._waiters if item[1] is not waiter)
            raise

    def _expire(self) -> None:
        """Fail the waiters whose deadline passed; the deadline moves to the next waiter's."""
        now = asyncio.get_running_loop().time()
        waiters = self._waiters
        while waiters:
            deadline, waiter = waiters[0]
            if deadline - now > EARLY:
                if self._expiry is not None:
                    self._expiry.expire_at(deadline)
                return
            waiters.popleft()
            if not waiter.done():
                waiter.set_exception(TooManyRequests(_throttle_message(self.spec.function)))

    def _pass_slot(self) -> bool:
        """Give a free slot (None) to the first waiter; False when nobody waits."""
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    def _release(self, worker: Worker) -> None:
        if worker.alive and not self._stopping:
            while self._waiters:
                _, waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(worker)
                    return
            self._idle.append(worker)
        else:
            self._forget(worker)

    def _forget(self, worker: Worker) -> None:
        """Drop a dead worker: hand its slot to a waiter, top the pool up to ``warm``."""
        if worker not in self.workers:
            return
        self.workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        reaper = asyncio.create_task(worker.stop())  # reap pipes and the listener
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        if self._stopping:
            return
        if self._pass_slot():
            return
        if worker.was_ready and len(self.workers) < self.warm:
            self._spawn_warm()  # not for workers that failed init: no crash loop

    async def _spawn(self) -> Worker:
        worker = Worker(
            self.spec, f"{self.spec.function}-{next(self._ids)}", self.logs, self._forget
        )
        self.workers.add(worker)
        try:
            await worker.start()
        except WorkerStartError:
            self.workers.discard(worker)
            raise
        return worker

    def _spawn_warm(self) -> None:
        async def warm_up() -> None:
            try:
                worker = await self._spawn()
            except WorkerStartError as exc:
                logger.warning("function %s: %s", self.spec.function, exc)
                return
            if await worker.wait_ready():
                self._release(worker)

        self._background(warm_up())

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _throttle_message(function: str) -> str:
    return f"Rate Exceeded. (function {function}: concurrency limit reached)"
