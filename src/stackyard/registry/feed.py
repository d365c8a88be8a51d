"""Change indexes and wake-ups: the registry's raft-like index clock and per-domain change feeds.

One ``IndexClock`` numbers every change (catalog, health and KV share it, like Consul's raft
index). Each domain (the catalog, the KV store) has a ``ChangeFeed`` holding the clock value
of its last change; blocking queries wait on the feed, which swaps an ``asyncio.Event`` per
change so every waiter wakes at once, with no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

Listener = Callable[[int], None]


class IndexClock:
    """A counter that only grows; ``advance`` returns the next index."""

    def __init__(self, start: int = 0) -> None:
        self._value = max(0, start)

    @property
    def value(self) -> int:
        return self._value

    def advance(self) -> int:
        self._value += 1
        return self._value

    def at_least(self, value: int) -> None:
        self._value = max(self._value, value)


class ChangeFeed:
    """The index of a domain's last change, waiters, and synchronous listeners."""

    def __init__(self, index: int = 1) -> None:
        self._index = max(1, index)
        self._event = asyncio.Event()
        self._listeners: list[Listener] = []
        self._epoch = 0  # grows on close(): waiters from an older epoch return

    @property
    def index(self) -> int:
        return self._index

    def reset(self, index: int) -> None:
        """Set the index without waking anybody (used when loading from the store)."""
        self._index = max(1, index)

    def publish(self, index: int) -> None:
        """Record a change at ``index`` and wake every waiter and listener."""
        self._index = max(self._index + 1, index)
        self._wake()
        for listener in list(self._listeners):
            try:
                listener(self._index)
            except Exception:
                logger.exception("registry change listener failed")

    def close(self) -> None:
        """Release every current waiter now (the component is stopping).

        Later waits block as usual, so a consumer loop that outlives the component does not spin.
        """
        self._epoch += 1
        self._wake()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(index)`` after every change; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    async def wait_for_change(self, index: int, timeout: float) -> int:  # noqa: ASYNC109
        """Return the index as soon as it differs from ``index``, or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        epoch = self._epoch
        while self._index == index and self._epoch == epoch:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                break
        return self._index

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()
