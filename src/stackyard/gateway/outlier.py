"""Passive outlier detection: ejects endpoints that keep failing, Envoy style.

After ``consecutive_failures`` failures in a row (connect errors, resets, timeouts, 5xx
answers) an endpoint is ejected for ``base_ejection_time`` times the number of times it was
ejected recently (capped at ``max_ejection_time``); the multiplier decays by one for each
``base_ejection_time`` the endpoint stays healthy. An ejection never leaves a service without
an endpoint and never exceeds ``max_ejection_percent`` of its endpoints (one is always
allowed when the service has two or more). An ejected endpoint comes back by itself when its
time is up; its failure count starts again from zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .endpoints import EndpointState


@dataclass(frozen=True)
class OutlierSettings:
    """Outlier-ejection policy; ``consecutive_failures=0`` disables ejection."""

    consecutive_failures: int = 5
    base_ejection_time: float = 10.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 50.0


class OutlierDetector:
    """Counts failures per endpoint and decides ejections."""

    __slots__ = ("_clock", "active_until", "settings")

    def __init__(
        self,
        settings: OutlierSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or OutlierSettings()
        self._clock = clock
        # Latest ejection end over all endpoints: no endpoint is ejected once it has passed.
        self.active_until = 0.0

    def now(self) -> float:
        return self._clock()

    def success(self, state: EndpointState) -> None:
        state.consecutive_failures = 0

    def failure(self, state: EndpointState, peers: Sequence[EndpointState]) -> bool:
        """Records a failure of ``state`` (one of ``peers``); True if it got ejected."""
        settings = self.settings
        state.consecutive_failures += 1
        if settings.consecutive_failures <= 0:
            return False
        if state.consecutive_failures < settings.consecutive_failures:
            return False
        now = self._clock()
        if state.ejected_until > now:
            return False
        total = len(peers)
        ejected = sum(1 for p in peers if p.ejected_until > now)
        if total - ejected <= 1:
            return False  # never eject the last available endpoint
        if ejected > 0 and (ejected + 1) * 100.0 > total * settings.max_ejection_percent:
            return False
        base = settings.base_ejection_time
        if state.ejections and base > 0:
            healthy_for = now - state.returned_at
            state.ejections = max(0, state.ejections - int(healthy_for // base))
        state.ejections += 1
        duration = min(base * state.ejections, max(settings.max_ejection_time, base))
        state.ejected_until = now + duration
        state.returned_at = state.ejected_until
        state.consecutive_failures = 0
        if state.ejected_until > self.active_until:
            self.active_until = state.ejected_until
        return True

    def is_ejected(self, state: EndpointState, now: float) -> bool:
        return state.ejected_until > now
