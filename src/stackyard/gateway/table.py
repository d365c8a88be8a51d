"""The route table: an immutable snapshot the control plane publishes and the gateway swaps in.

The gateway never asks the registry anything per request; everything a request needs (routes,
their policies, the passing endpoints of each service) is in the current table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from ..registry.models import Endpoint
from .policy import NO_POLICY, RoutePolicy

if TYPE_CHECKING:
    from ..config.api import MockConfig
    from .cors import CorsPolicy

Balancer = Literal["round_robin", "least_request"]
Integration = Literal["http_proxy", "function", "mock", "bucket"]
PayloadVersion = Literal["1.0", "2.0"]


@dataclass(frozen=True)
class RouteSpec:
    """One route: a path template (``/items/{id}``, ``/files/{proxy+}``) and where it goes.

    ``integration`` ``http_proxy`` sends the request to ``service``; ``function`` invokes
    ``function`` with an API Gateway proxy event of ``payload_version`` (1.0 = REST API,
    2.0 = HTTP API), naming ``stage`` and ``resource`` (the template as the function sees it,
    without a stage prefix; ``$default`` for an HTTP API's default route); ``mock`` answers
    with ``mock`` itself; ``bucket`` serves the bucket ``bucket`` as a static site (``index``
    document for folders, ``error`` document for missing keys). ``host``: the route answers
    only requests for this ``Host`` (a stage served on its own host name); ``base_path``: the
    prefix the route's stage is served under (``/prod``), not part of the path a REST API
    (1.0) proxy event shows.
    ``stage_variables``: the stage's variables (``api.stages``), given to
    functions and transforms. ``cors``: the route's CORS policy, if any; ``policy``: the
    API-management steps' settings (keys, authorizer, throttle, cache, transforms, validation).
    """

    path: str
    service: str = ""
    methods: frozenset[str] = frozenset({"ANY"})
    strip_prefix: str = ""
    timeout: float = 29.0
    retries: int = 2
    balancer: Balancer = "round_robin"
    integration: Integration = "http_proxy"
    function: str = ""
    payload_version: PayloadVersion = "2.0"
    stage: str = ""
    resource: str = ""
    cors: CorsPolicy | None = None
    mock: MockConfig | None = None
    policy: RoutePolicy = NO_POLICY
    stage_variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    host: str = ""
    base_path: str = ""
    bucket: str = ""
    index: str = ""
    error: str = ""


@dataclass(frozen=True)
class RouteTable:
    """A versioned snapshot; ``endpoints`` maps a service name to its passing endpoints."""

    version: int
    routes: tuple[RouteSpec, ...] = ()
    endpoints: Mapping[str, tuple[Endpoint, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
