"""The registry's interface as the other components see it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from .models import Endpoint, Health, InstanceHealth, ServiceRegistration


class Catalog(Protocol):
    """Service catalog with health state, and a change index for watchers.

    ``index`` grows on every change of registrations or of any check's status (Consul's
    ``X-Consul-Index`` for the catalog and health endpoints).
    """

    @property
    def index(self) -> int: ...

    async def register(self, registration: ServiceRegistration) -> None: ...

    async def deregister(self, service_id: str) -> bool: ...

    async def update_ttl(self, check_id: str, status: Health, note: str = "") -> bool: ...

    def services(self) -> Mapping[str, tuple[str, ...]]:
        """Service name → union of its instances' tags."""
        ...

    def health(self, name: str) -> list[InstanceHealth]: ...

    def passing(self, name: str) -> list[Endpoint]: ...

    async def wait_for_change(self, index: int, timeout: float) -> int:  # noqa: ASYNC109
        """Return the current index as soon as it differs from ``index``, or after ``timeout``."""
        ...
