"""Token-bucket throttling: the :class:`Buckets` protocol and its in-process implementation.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second; a request takes one
token from every bucket that applies to it (the stage's, the route's, the API key's). The
buckets are refilled lazily from a monotonic clock when they are used, so a request costs O(1)
and an idle bucket costs nothing.

:class:`LocalBuckets` keeps the buckets in this gateway process: several gateway processes
(workers, hosts) each allow the full rate. :class:`Buckets` is the seam for a shared store
(Redis: the same check-then-take as one script) to plug in later.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..config.api import ThrottleConfig
from .errors import GatewayError


class Limit:
    """A bucket's name (``stage:dev``, ``route:GET /items/{id}``, ``key:alice``) and its
    settings, read once from the config (a request reads two floats, not a model's fields)."""

    __slots__ = ("burst", "name", "rate")

    def __init__(self, name: str, config: ThrottleConfig) -> None:
        self.name = name
        self.rate = float(config.rate)
        self.burst = float(config.burst)

    def __repr__(self) -> str:
        return f"Limit({self.name!r}, rate={self.rate:g}, burst={self.burst:g})"


class Throttled(GatewayError):
    """429 ``TooManyRequests``: a bucket is empty; ``Retry-After`` says when a token is back."""

    status = 429
    code = "TooManyRequests"

    def __init__(self, retry_after: float, message: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message)

    def default_message(self) -> str:
        return "too many requests: the throttle limit is reached"

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(retry_after_seconds(self.retry_after)).encode())]


def retry_after_seconds(wait: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


class Buckets(Protocol):
    """Where the token buckets live."""

    async def acquire(self, limits: Sequence[Limit]) -> float:
        """Take one token from each bucket in ``limits`` if every one has a token (then 0.0);
        otherwise take none and answer the seconds until all of them will have one."""
        ...


class LocalBuckets:
    """Token buckets in this process's memory (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # name -> [tokens, time of the last refill]
        self._buckets: dict[str, list[float]] = {}

    async def acquire(self, limits: Sequence[Limit]) -> float:
        return self.take(limits)

    def take(self, limits: Sequence[Limit]) -> float:
        """The synchronous core of :meth:`acquire`."""
        now = self._clock()
        buckets = self._buckets
        wait = 0.0
        for limit in limits:
            burst = limit.burst
            state = buckets.get(limit.name)
            if state is None:
                state = buckets[limit.name] = [burst, now]
            else:
                tokens = state[0] + (now - state[1]) * limit.rate
                state[0] = tokens if tokens < burst else burst
                state[1] = now
            if state[0] < 1.0:
                short = (1.0 - state[0]) / limit.rate
                if short > wait:
                    wait = short
        if wait > 0.0:
            return wait
        for limit in limits:  # every bucket has a token: take them
            buckets[limit.name][0] -= 1.0
        return 0.0

    def tokens(self, name: str) -> float | None:
        """The tokens a bucket had at its last use (None if never used); for tests and status."""
        state = self._buckets.get(name)
        return None if state is None else state[0]

    def forget(self, prefix: str) -> None:
        """Drops the buckets whose name starts with ``prefix`` (e.g. a revoked key's)."""
        for name in [n for n in self._buckets if n.startswith(prefix)]:
            del self._buckets[name]
