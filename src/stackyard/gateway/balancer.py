"""Load balancers: which endpoint of a service takes the next try.

:class:`RoundRobin` cycles over the endpoints; :class:`LeastRequest` takes the less busy of two
endpoints drawn at random (power of two choices, by in-flight requests). Both skip ejected
endpoints and the endpoints a request already tried (so a retry goes elsewhere when it can);
when every endpoint is excluded they fall back to the tried ones, then to the ejected ones
(Envoy's panic mode), so a service with endpoints always yields one.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Protocol

from .endpoints import EndpointState
from .outlier import OutlierDetector
from .table import Balancer


class Chooser(Protocol):
    def choose(self, candidates: Sequence[EndpointState]) -> EndpointState: ...


class RoundRobin:
    """Cycles over the candidates."""

    __slots__ = ("_counter",)

    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(self, candidates: Sequence[EndpointState]) -> EndpointState:
        return candidates[next(self._counter) % len(candidates)]


class LeastRequest:
    """Power of two random choices by in-flight requests."""

    __slots__ = ("_random",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = rng or random.Random()

    def choose(self, candidates: Sequence[EndpointState]) -> EndpointState:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        rand = self._random.random
        a = int(rand() * n)
        b = int(rand() * (n - 1))
        if b >= a:
            b += 1
        first, second = candidates[a], candidates[b]
        return second if second.in_flight < first.in_flight else first


def make_chooser(kind: Balancer) -> Chooser:
    if kind == "least_request":
        return LeastRequest()
    return RoundRobin()


class ServicePool:
    """A service's endpoints in one table, with the balancer a route uses for them."""

    __slots__ = ("chooser", "detector", "endpoints", "service")

    def __init__(
        self,
        service: str,
        endpoints: tuple[EndpointState, ...],
        chooser: Chooser,
        detector: OutlierDetector,
    ) -> None:
        self.service = service
        self.endpoints = endpoints
        self.chooser = chooser
        self.detector = detector

    def pick(self, tried: Sequence[EndpointState] = ()) -> EndpointState | None:
        """The endpoint for the next try, avoiding ``tried`` and ejected ones when possible."""
        eps = self.endpoints
        if not eps:
            return None
        detector = self.detector
        until = detector.active_until
        if not tried and (until == 0.0 or until <= detector.now()):
            return self.chooser.choose(eps)
        now = detector.now()
        healthy = [e for e in eps if e.ejected_until <= now]
        fresh = [e for e in healthy if e not in tried]
        return self.chooser.choose(fresh or healthy or eps)
