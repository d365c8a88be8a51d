"""The moving deadline: on time whatever the series of waits, about one timer per time limit."""

from __future__ import annotations

import asyncio
from typing import Any

from stackyard.deadline import Deadline


class CountingLoop:
    """The running loop, counting the timers set through it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.timers = 0

    def call_at(self, when: float, callback: Any) -> asyncio.TimerHandle:
        self.timers += 1
        return self.loop.call_at(when, callback)

    def time(self) -> float:
        return self.loop.time()


async def _fired() -> tuple[CountingLoop, Deadline, list[float]]:
    loop = CountingLoop(asyncio.get_running_loop())
    fired: list[float] = []
    deadline = Deadline(loop, lambda: fired.append(loop.time()))  # type: ignore[arg-type]
    return loop, deadline, fired


async def test_waits_that_end_in_time_share_one_timer() -> None:
    loop, deadline, fired = await _fired()
    for _ in range(200):  # 200 short waits, each with a 0.2 s limit
        deadline.expire_at(loop.time() + 0.2)
        await asyncio.sleep(0.001)
        deadline.clear()
    assert loop.timers <= 3 and fired == []
    await asyncio.sleep(0.3)
    assert fired == []  # the armed timer fired with nothing waiting


async def test_a_deadline_moved_later_is_kept_on_time() -> None:
    loop, deadline, fired = await _fired()
    began = loop.time()
    deadline.expire_at(began + 0.05)
    deadline.expire_at(began + 0.15)  # the timer stays at 0.05, then moves to 0.15
    await asyncio.sleep(0.25)
    assert len(fired) == 1 and 0.14 <= fired[0] - began < 0.24
    assert loop.timers == 2


async def test_a_deadline_moved_earlier_moves_the_timer() -> None:
    loop, deadline, fired = await _fired()
    began = loop.time()
    deadline.expire_at(began + 5)
    deadline.expire_at(began + 0.05)
    await asyncio.sleep(0.15)
    assert len(fired) == 1 and fired[0] - began < 0.14


async def test_cleared_and_cancelled_deadlines_do_not_call_back() -> None:
    loop, deadline, fired = await _fired()
    deadline.expire_at(loop.time() + 0.05)
    deadline.clear()
    other_loop, other, other_fired = await _fired()
    other.expire_at(other_loop.time() + 0.05)
    other.cancel()
    await asyncio.sleep(0.1)
    assert fired == [] and other_fired == []
    assert deadline.when is None and other.when is None
