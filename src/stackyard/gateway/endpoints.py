"""Per-endpoint runtime state (in-flight count, passive-health counters) kept across table swaps.

A table names endpoints; the gateway keeps one :class:`EndpointState` per endpoint, keyed by
instance id and authority, and reuses it when the next table still lists that endpoint, so
least-request counters and outlier ejections survive a swap. An endpoint that leaves the table
loses its state (requests in flight on it still hold their reference).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..registry.models import Endpoint

EndpointKey = tuple[str, str]


class EndpointState:
    """Mutable state of one upstream endpoint (touched only from the event loop)."""

    __slots__ = (
        "address",
        "consecutive_failures",
        "ejected_until",
        "ejections",
        "endpoint",
        "in_flight",
        "key",
        "origin",
        "port",
        "returned_at",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.key: EndpointKey = (endpoint.instance_id, endpoint.authority)
        self.address = endpoint.address
        self.port = endpoint.port
        host = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address
        self.origin = f"http://{host}:{endpoint.port}"
        self.in_flight = 0
        self.consecutive_failures = 0
        self.ejected_until = 0.0
        self.ejections = 0
        self.returned_at = 0.0

    def __repr__(self) -> str:
        return (
            f"EndpointState({self.key[0]!r}, {self.key[1]!r}, in_flight={self.in_flight}, "
            f"failures={self.consecutive_failures}, ejected_until={self.ejected_until:.3f})"
        )


class EndpointStates:
    """The gateway's endpoint states; ``refresh`` maps a table's endpoints onto them."""

    def __init__(self) -> None:
        self._states: dict[EndpointKey, EndpointState] = {}

    def items(self) -> list[tuple[EndpointKey, EndpointState]]:
        return list(self._states.items())

    def get(self, endpoint: Endpoint) -> EndpointState | None:
        return self._states.get((endpoint.instance_id, endpoint.authority))

    def refresh(
        self, endpoints: Mapping[str, Iterable[Endpoint]]
    ) -> dict[str, tuple[EndpointState, ...]]:
        """States for every service's endpoints, reusing known ones; forgets the others."""
        old = self._states
        new: dict[EndpointKey, EndpointState] = {}
        by_service: dict[str, tuple[EndpointState, ...]] = {}
        for service, eps in endpoints.items():
            states: list[EndpointState] = []
            seen: set[EndpointKey] = set()
            for ep in eps:
                key = (ep.instance_id, ep.authority)
                if key in seen:
                    continue
                seen.add(key)
                state = new.get(key) or old.get(key) or EndpointState(ep)
                new[key] = state
                states.append(state)
            by_service[service] = tuple(states)
        self._states = new
        return by_service
