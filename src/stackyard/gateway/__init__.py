"""The data plane: routes requests by a swappable route table to load-balanced upstreams.

Public API: :class:`Gateway` (the ASGI app with ``update``/``start``/``stop``), the table types
:class:`RouteSpec`/:class:`RouteTable`, the compiled :class:`Router`, the policies
(:class:`OutlierSettings`, :class:`PoolSettings`), the error tree in :mod:`.errors` and
:func:`tune_gc` (call once after the node started; see :mod:`.tuning`).
"""

from .app import DEFAULT_MAX_BODY_SIZE, Gateway, build_pipeline
from .balancer import LeastRequest, RoundRobin, ServicePool
from .cors import CorsPolicy
from .endpoints import EndpointState
from .errors import (
    BodyTooLarge,
    GatewayError,
    GatewayNotStarted,
    InvalidRoute,
    MethodNotAllowed,
    NoHealthyUpstream,
    NoRoute,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from .outlier import OutlierDetector, OutlierSettings
from .router import RouteMatch, Router
from .table import Balancer, RouteSpec, RouteTable
from .tuning import tune_gc
from .upstream import PoolSettings, UpstreamClient

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "Balancer",
    "BodyTooLarge",
    "CorsPolicy",
    "EndpointState",
    "Gateway",
    "GatewayError",
    "GatewayNotStarted",
    "InvalidRoute",
    "LeastRequest",
    "MethodNotAllowed",
    "NoHealthyUpstream",
    "NoRoute",
    "OutlierDetector",
    "OutlierSettings",
    "PoolSettings",
    "RoundRobin",
    "RouteMatch",
    "RouteSpec",
    "RouteTable",
    "Router",
    "ServicePool",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "build_pipeline",
    "tune_gc",
]
