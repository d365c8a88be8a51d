"""A deadline that moves often, kept by one event-loop timer that rarely does.

Waits that each need a time limit — an upstream connection's waits for bytes, a function
worker's invocations, a function's queue of callers — would otherwise set an event-loop timer
and cancel it for every wait: on uvloop, setting and cancelling a timer costs more than the
rest of a short wait's bookkeeping. A :class:`Deadline` instead keeps the current deadline as a
number and one timer: :meth:`Deadline.expire_at` arms the timer only when none is armed or the
new deadline is earlier than the armed one; a timer that fires before the current deadline
(it was armed for an earlier wait) re-arms itself for it; one that fires with no deadline set
does nothing more. So a series of waits that end in time costs about one timer per time limit,
not one per wait, and a deadline that is reached still calls back on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

EARLY = 0.001
"""A timer that fires this close before the deadline has reached it (the loop's clock moves in
millisecond steps)."""


class Deadline:
    """The current deadline of a series of waits, and the callback for when it passes."""

    __slots__ = ("_at", "_callback", "_handle", "_loop", "when")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0
        self.when: float | None = None
        """The current deadline (the loop's clock), None when nothing waits."""

    def expire_at(self, when: float) -> None:
        """From now on the deadline is ``when``: the callback runs then, unless it is moved or
        cleared first."""
        self.when = when
        if self._handle is None or when < self._at:
            self._arm(when)

    def clear(self) -> None:
        """Nothing waits any more (the timer stays armed: it finds nothing to do)."""
        self.when = None

    def cancel(self) -> None:
        """Clear the deadline and drop the timer (when the owner is done for good)."""
        self.when = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, at: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(at, self._fire)
        self._at = at

    def _fire(self) -> None:
        self._handle = None
        when = self.when
        if when is None:
            return
        if when - self._loop.time() > EARLY:
            self._arm(when)
            return
        self.when = None
        self._callback()
