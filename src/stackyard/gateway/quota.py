"""Usage-plan quotas: requests per API key per calendar period (UTC day, ISO week, month).

:class:`Quotas` keeps one counter per key in memory (the request path never touches SQLite);
the counters are written to the key store every ``flush_interval`` seconds and when the
gateway stops, and read back at start, so a restart keeps them (a crash loses at most the
requests of the last interval). A counter whose period has ended starts again from zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..config.api import QuotaConfig
from .errors import GatewayError
from .throttle import retry_after_seconds


class QuotaExceeded(GatewayError):
    """429 ``LimitExceeded``: the key used its plan's quota for the current period."""

    status = 429
    code = "LimitExceeded"

    def __init__(self, plan: str, quota: QuotaConfig, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"quota of usage plan {plan!r} exceeded: {quota.limit} requests per {quota.period}"
        )

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(retry_after_seconds(self.retry_after)).encode())]


def period_bounds(period: str, now: float) -> tuple[float, float]:
    """Start and end (epoch seconds) of the calendar ``period`` holding ``now``, in UTC.

    ``day``: midnight to midnight; ``week``: Monday 00:00 to the next Monday; ``month``: the
    first of the month to the first of the next.
    """
    moment = datetime.fromtimestamp(math.floor(now), UTC)  # no rounding up to the next period
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
    else:
        raise ValueError(f"unknown quota period {period!r}")
    return start.timestamp(), end.timestamp()


@dataclass(frozen=True)
class QuotaUsage:
    """What the usage endpoint shows of one key's quota."""

    limit: int
    period: str
    used: int
    period_start: float
    period_end: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class QuotaCounter:
    """One key's requests in one period."""

    __slots__ = ("end", "name", "period", "start", "used")

    def __init__(self, name: str, period: str, start: float, end: float, used: int) -> None:
        self.name = name
        self.period = period
        self.start = start
        self.end = end
        self.used = used


class Quotas:
    """In-memory quota counters per key name (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[str, QuotaCounter] = {}
        self._dirty: set[str] = set()

    def _counter(self, name: str, quota: QuotaConfig, now: float) -> QuotaCounter:
        counter = self._counters.get(name)
        if counter is None or now >= counter.end or counter.period != quota.period:
            start, end = period_bounds(quota.period, now)
            counter = self._counters[name] = QuotaCounter(name, quota.period, start, end, 0)
        return counter

    def check(self, name: str, plan: str, quota: QuotaConfig) -> QuotaCounter:
        """``name``'s counter; raises :class:`QuotaExceeded` when it has no request left."""
        now = self._clock()
        counter = self._counter(name, quota, now)
        if counter.used >= quota.limit:
            raise QuotaExceeded(plan, quota, counter.end - now)
        return counter

    def add(self, counter: QuotaCounter) -> None:
        """Counts one request (once :meth:`check` and the throttle let it pass)."""
        counter.used += 1
        self._dirty.add(counter.name)

    def count(self, name: str, quota: QuotaConfig) -> None:
        """Counts one request of ``name``."""
        self.add(self._counter(name, quota, self._clock()))

    def usage(self, name: str, quota: QuotaConfig) -> QuotaUsage:
        counter = self._counter(name, quota, self._clock())
        return QuotaUsage(quota.limit, quota.period, counter.used, counter.start, counter.end)

    def load(self, rows: Iterable[tuple[str, str, float, int]]) -> None:
        """Counters read back from the store: (name, period, period start, used)."""
        now = self._clock()
        for name, period, start, used in rows:
            current, end = period_bounds(period, now)
            if current == start:
                self._counters[name] = QuotaCounter(name, period, start, end, used)

    def dirty(self) -> list[tuple[str, str, float, int]]:
        """The counters changed since the last call, as rows for the store."""
        names, self._dirty = self._dirty, set()
        out = []
        for name in names:
            counter = self._counters.get(name)
            if counter is not None:
                out.append((name, counter.period, counter.start, counter.used))
        return out

    def restore(self, rows: Iterable[tuple[str, str, float, int]]) -> None:
        """Marks the counters of ``rows`` (from :meth:`dirty`) unsaved again (a write failed)."""
        self._dirty.update(row[0] for row in rows)

    def forget(self, name: str) -> None:
        self._counters.pop(name, None)
        self._dirty.discard(name)
