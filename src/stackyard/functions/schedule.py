"""Schedule expressions (EventBridge ``rate(...)`` and 6-field ``cron(...)``) and their firing.

- ``rate(1 minute)``, ``rate(5 minutes)``, ``rate(1 hour)``, ``rate(2 days)``: a positive integer
  and a unit, singular for 1 and plural otherwise (AWS rejects ``rate(1 minutes)``).
- ``cron(min hour day-of-month month day-of-week year)`` in UTC: one of the two day fields must
  be ``?``; day-of-week counts 1-7 from Sunday (or ``SUN``-``SAT``) and accepts ``#`` (nth) and
  ``L`` (last); day-of-month accepts ``L`` and ``W``; the year field (1970-2199) is evaluated
  here, the other five by ``croniter``.

:func:`validate_schedule` is what the config layer calls; :class:`Scheduler` fires due
schedules through a callback with the EventBridge scheduled-event document, on a clock that
tests may replace (:class:`ScaledClock` runs time faster).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from croniter import croniter

from .errors import ScheduleError

_RATE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_YEARS = (1970, 2199)
_DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class Schedule(Protocol):
    expression: str

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (UTC), or None when there is none."""


@dataclass(frozen=True)
class RateSchedule:
    expression: str
    period: timedelta

    def next_after(self, moment: datetime) -> datetime | None:
        return moment + self.period


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    fields: str
    """The five fields in croniter's syntax (day-of-week 0-6 from Sunday)."""
    years: frozenset[int] = field(default_factory=frozenset)

    def next_after(self, moment: datetime) -> datetime | None:
        start = moment.astimezone(UTC).replace(tzinfo=None)
        last_year = max(self.years)
        while start.year <= last_year:  # each turn moves on by at least a year
            if start.year not in self.years:
                year = min(y for y in self.years if y > start.year)
                start = datetime(year, 1, 1) - timedelta(seconds=1)
            try:
                candidate: datetime = croniter(self.fields, start).get_next(datetime)
            except Exception:  # croniter gives up on dates that never exist (Feb 30)
                return None
            if candidate.year in self.years:
                return candidate.replace(tzinfo=UTC)
            start = datetime(candidate.year, 1, 1)  # a year not allowed: jump past it
        return None


def parse_schedule(expression: str) -> RateSchedule | CronSchedule:
    """Parse a ``rate(...)`` or ``cron(...)`` expression; raises ``ScheduleError``."""
    text = expression.strip()
    if text.startswith("rate("):
        return _parse_rate(text)
    if text.startswith("cron(") and text.endswith(")"):
        return _parse_cron(text)
    raise ScheduleError(
        f"invalid schedule {expression!r}: expected rate(N unit) or "
        "cron(minutes hours day-of-month month day-of-week year)"
    )


def validate_schedule(expression: str) -> None:
    """Raise ``ValueError`` (``ScheduleError``) with a clear message for a bad expression."""
    parse_schedule(expression)


def _parse_rate(text: str) -> RateSchedule:
    match = _RATE.match(text)
    if not match:
        raise ScheduleError(f"invalid rate {text!r}: expected rate(<positive integer> <unit>)")
    value, unit = int(match.group(1)), match.group(2)
    base = unit[:-1] if unit.endswith("s") else unit
    if base not in _UNITS:
        raise ScheduleError(f"invalid rate {text!r}: the unit is minute(s), hour(s) or day(s)")
    if value <= 0:
        raise ScheduleError(f"invalid rate {text!r}: the value must be a positive integer")
    if value == 1 and unit != base:
        raise ScheduleError(f"invalid rate {text!r}: use the singular for 1 (rate(1 {base}))")
    if value > 1 and unit == base:
        raise ScheduleError(f"invalid rate {text!r}: use the plural for {value} ({base}s)")
    return RateSchedule(text, timedelta(seconds=value * _UNITS[base]))


def _parse_cron(text: str) -> CronSchedule:
    parts = text[len("cron(") : -1].split()
    if len(parts) != 6:
        raise ScheduleError(
            f"invalid cron {text!r}: expected 6 fields "
            f"(minutes hours day-of-month month day-of-week year), got {len(parts)}"
        )
    minutes, hours, dom, month, dow, year = parts
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(
            f"invalid cron {text!r}: exactly one of day-of-month and day-of-week must be '?'"
        )
    fields = " ".join(
        [minutes, hours, "*" if dom == "?" else dom, month, "*" if dow == "?" else _dow(dow, text)]
    )
    if not croniter.is_valid(fields):
        raise ScheduleError(f"invalid cron {text!r}: a field is out of range or malformed")
    years = _years(year, text)
    return CronSchedule(text, fields, years)


def _dow(value: str, text: str) -> str:
    """AWS day-of-week (1 = Sunday) → croniter's (0 = Sunday)."""

    def day(token: str) -> str:
        if token.upper() in _DOW_NAMES:
            return token.upper()
        if not token.isdigit() or not 1 <= int(token) <= 7:
            raise ScheduleError(
                f"invalid cron {text!r}: day-of-week {token!r} is not 1-7 or SUN-SAT"
            )
        return str(int(token) - 1)

    items = []
    for item in value.split(","):
        if item == "*":
            items.append("*")
        elif item == "L":
            items.append("6")
        elif item.endswith("L"):
            items.append("L" + day(item[:-1]))
        elif "#" in item:
            weekday, _, nth = item.partition("#")
            items.append(f"{day(weekday)}#{nth}")
        else:
            body, slash, step = item.partition("/")
            low, dash, high = body.partition("-")
            mapped = "*" if low == "*" else day(low) + (f"-{day(high)}" if dash else "")
            items.append(mapped + (f"/{step}" if slash else ""))
    return ",".join(items)


def _years(value: str, text: str) -> frozenset[int]:
    low_limit, high_limit = _YEARS
    years: set[int] = set()
    try:
        for item in value.split(","):
            body, slash, step_text = item.partition("/")
            step = int(step_text) if slash else 1
            if body == "*":
                low, high = low_limit, high_limit
            else:
                first, dash, last = body.partition("-")
                low = int(first)
                high = int(last) if dash else (high_limit if slash else low)
            if not (low_limit <= low <= high <= high_limit) or step <= 0:
                raise ValueError
            years.update(range(low, high + 1, step))
    except ValueError:
        raise ScheduleError(
            f"invalid cron {text!r}: year {value!r} must be *, or years 1970-2199 with , - /"
        ) from None
    return frozenset(years)


def scheduled_event(
    *, rule_arn: str, account: str, region: str, moment: datetime, detail: Any = None
) -> dict[str, Any]:
    """The document EventBridge sends a target for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {} if detail is None else detail,
    }


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, moment: datetime) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - self.now()).total_seconds()))


class ScaledClock:
    """A clock running ``factor`` times faster than real time (for tests and demos)."""

    def __init__(self, factor: float, start: datetime | None = None) -> None:
        self.factor = factor
        self._origin = start or datetime.now(UTC)
        self._real = time.monotonic()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._real) * self.factor)

    async def sleep_until(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - self.now()).total_seconds() / self.factor))


@dataclass(frozen=True)
class ScheduledTarget:
    """One enabled schedule of one function."""

    function: str
    schedule: RateSchedule | CronSchedule
    rule_arn: str
    input: dict[str, object] | None = None


Fire = Callable[[ScheduledTarget, datetime], Awaitable[None]]


class Scheduler:
    """One task per schedule, firing ``fire(target, moment)`` at each due time."""

    def __init__(self, targets: Sequence[ScheduledTarget], fire: Fire, clock: Clock) -> None:
        self.targets = list(targets)
        self.fire = fire
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(target)) for target in self.targets]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self, target: ScheduledTarget) -> None:
        moment = self.clock.now()
        while True:
            due = target.schedule.next_after(moment)
            if due is None:
                return
            await self.clock.sleep_until(due)
            try:
                await self.fire(target, due)
            except asyncio.CancelledError:
                raise
            except Exception:
                import logging

                logging.getLogger(__name__).exception("schedule of %s failed", target.function)
            moment = due
