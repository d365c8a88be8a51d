"""The route table: an immutable snapshot the control plane publishes and the gateway swaps in.

The gateway never asks the registry anything per request; everything a request needs (routes,
their policies, the passing endpoints of each service) is in the current table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from ..registry.models import Endpoint

Balancer = Literal["round_robin", "least_request"]


@dataclass(frozen=True)
class RouteSpec:
    """One route: a path template (``/items/{id}``, ``/files/{proxy+}``) and where it goes."""

    path: str
    service: str
    methods: frozenset[str] = frozenset({"ANY"})
    strip_prefix: str = ""
    timeout: float = 29.0
    retries: int = 2
    balancer: Balancer = "round_robin"


@dataclass(frozen=True)
class RouteTable:
    """A versioned snapshot; ``endpoints`` maps a service name to its passing endpoints."""

    version: int
    routes: tuple[RouteSpec, ...] = ()
    endpoints: Mapping[str, tuple[Endpoint, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
