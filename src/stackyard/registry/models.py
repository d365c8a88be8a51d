"""Value types of the registry, shared with the supervisor, the gateway and the node.

The shapes follow Consul's agent API (service registrations carrying their checks) so the
Consul-compatible HTTP API maps onto them one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Health(StrEnum):
    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"


CheckKind = Literal["http", "tcp", "ttl"]


@dataclass(frozen=True)
class CheckSpec:
    """A health check attached to one service instance.

    ``target`` is the URL for ``http`` checks and ``host:port`` for ``tcp``; unused for ``ttl``.
    ``success_before_passing`` / ``failures_before_critical`` are Consul's names for the
    healthy / unhealthy thresholds. ``method`` and ``headers`` apply to ``http`` checks.
    """

    check_id: str
    kind: CheckKind
    name: str = ""
    target: str = ""
    interval: float = 10.0
    timeout: float = 5.0
    ttl: float | None = None
    success_before_passing: int = 0
    failures_before_critical: int = 0
    deregister_after: float | None = None
    initial_status: Health = Health.CRITICAL
    notes: str = ""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServiceRegistration:
    """One instance of a service, as registered (by the supervisor or through the API)."""

    id: str
    name: str
    address: str = "127.0.0.1"
    port: int = 0
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    checks: tuple[CheckSpec, ...] = ()


@dataclass(frozen=True)
class CheckState:
    """The current result of one check."""

    spec: CheckSpec
    service_id: str
    status: Health
    output: str = ""
    modify_index: int = 0


@dataclass(frozen=True)
class InstanceHealth:
    """An instance with the state of each of its checks; passing only if every check passes."""

    registration: ServiceRegistration
    checks: tuple[CheckState, ...]
    create_index: int = 0
    modify_index: int = 0

    @property
    def status(self) -> Health:
        statuses = {c.status for c in self.checks}
        if Health.CRITICAL in statuses:
            return Health.CRITICAL
        if Health.WARNING in statuses:
            return Health.WARNING
        return Health.PASSING


@dataclass(frozen=True)
class Endpoint:
    """Where the gateway may send traffic: a passing instance."""

    instance_id: str
    address: str
    port: int

    @property
    def authority(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class KVEntry:
    """One KV key with Consul's indexes (``LockIndex``/``Session`` unused: no sessions yet)."""

    key: str
    value: bytes
    flags: int = 0
    create_index: int = 0
    modify_index: int = 0
    lock_index: int = 0
    session: str | None = None
