"""Health history: the last state changes of each check, kept in memory and bounded.

The registry records a :class:`Transition` when a check is registered (``from`` is ``None``),
when its status changes, and when its instance is deregistered (``to`` is ``None``). The
history of a check outlives its registration, so an instance that the supervisor restarts
(deregistered, then registered again with the same check id) keeps one continuous history.

Bounds: ``per_check`` transitions per check (the oldest are dropped) and ``max_checks`` checks
(the check changed longest ago is forgotten first). Nothing is persisted: a restarted node
starts with an empty history.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models import Health

PER_CHECK = 50
MAX_CHECKS = 4096
OUTPUT_LIMIT = 512  # characters of a check's output kept with a transition


@dataclass(frozen=True)
class Transition:
    """One change of a check: registered (``from_status`` None), a status change, or
    deregistered (``to_status`` None)."""

    time: float
    check_id: str
    service_id: str
    from_status: Health | None
    to_status: Health | None
    output: str
    seq: int = 0  # order of recording (times may tie)

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "check_id": self.check_id,
            "service_id": self.service_id,
            "from": self.from_status.value if self.from_status is not None else None,
            "to": self.to_status.value if self.to_status is not None else None,
            "output": self.output,
        }


class HealthHistory:
    """Bounded per-check transition lists, newest last inside, newest first out."""

    def __init__(
        self,
        per_check: int = PER_CHECK,
        max_checks: int = MAX_CHECKS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_check = max(1, per_check)
        self.max_checks = max(1, max_checks)
        self._clock = clock
        self._checks: OrderedDict[str, deque[Transition]] = OrderedDict()
        self._by_service: dict[str, set[str]] = {}
        self._seq = 0

    def record(
        self,
        check_id: str,
        service_id: str,
        from_status: Health | None,
        to_status: Health | None,
        output: str,
    ) -> None:
        entries = self._checks.get(check_id)
        if entries is None:
            entries = self._checks[check_id] = deque(maxlen=self.per_check)
            while len(self._checks) > self.max_checks:
                self._forget(*self._checks.popitem(last=False))
        else:
            self._checks.move_to_end(check_id)
        self._seq += 1
        entries.append(
            Transition(
                self._clock(),
                check_id,
                service_id,
                from_status,
                to_status,
                output[:OUTPUT_LIMIT],
                self._seq,
            )
        )
        self._by_service.setdefault(service_id, set()).add(check_id)

    def of_check(self, check_id: str, limit: int | None = None) -> list[Transition]:
        """The check's transitions, newest first."""
        entries = list(reversed(self._checks.get(check_id, ())))
        return entries[:limit] if limit is not None else entries

    def of_service(self, service_id: str, limit: int | None = None) -> list[Transition]:
        """The transitions of every check an instance has had, newest first."""
        found = [
            t
            for check_id in self._by_service.get(service_id, ())
            for t in self._checks.get(check_id, ())
            if t.service_id == service_id
        ]
        found.sort(key=lambda t: t.seq, reverse=True)
        return found[:limit] if limit is not None else found

    def _forget(self, check_id: str, entries: deque[Transition]) -> None:
        for service_id in {t.service_id for t in entries}:
            ids = self._by_service.get(service_id)
            if ids is not None:
                ids.discard(check_id)
                if not ids:
                    del self._by_service[service_id]
