"""The function authorizers' result cache: bounded (least recently used out), entries expire
after their TTL, and concurrent misses of one key share one load."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 10_000


class ResultCache(Generic[V]):
    """``key → value`` for ``ttl`` seconds each, at most ``max_entries`` of them."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, value: V, ttl: float) -> None:
        if ttl <= 0 or self.max_entries <= 0:
            return
        self._entries[key] = (self.clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def load(self, key: Hashable, ttl: float, loader: Callable[[], Awaitable[V]]) -> V:
        """The cached value of ``key``, or ``loader()``'s (cached for ``ttl``; one call for the
        requests that miss together, run as its own task so that a request that goes away does
        not cancel it for the others; a failure is not cached)."""
        value = self.get(key)
        if value is not None:
            return value
        task = self._loading.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(key, ttl, loader))
            task.add_done_callback(_retrieve)
            self._loading[key] = task
        return await asyncio.shield(task)

    async def _run(self, key: Hashable, ttl: float, loader: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await loader()
            self.put(key, value, ttl)
            return value
        finally:
            self._loading.pop(key, None)


def _retrieve(task: asyncio.Task[object]) -> None:
    """Marks a failed load's exception as seen (the waiters, if any, got it already)."""
    if not task.cancelled():
        task.exception()
