"""Service registry: catalog with health checks, KV, Consul-compatible HTTP API and DNS.

``Registry`` (the in-process ``Catalog``), ``consul_routes(registry)`` (Starlette routes for the
control-plane app), ``DnsServer`` (UDP DNS over any ``Catalog``).
"""

from .api import consul_routes
from .base import Catalog
from .catalog import Registry
from .dns import DnsServer
from .errors import (
    InvalidRegistration,
    RegistryClosed,
    RegistryError,
    StoreError,
    UnknownCheck,
    UnknownService,
)
from .httpio import MAX_BODY
from .kv import KVStore
from .models import (
    CheckSpec,
    CheckState,
    Endpoint,
    Health,
    InstanceHealth,
    KVEntry,
    ServiceRegistration,
)
from .wire import NodeInfo

__all__ = [
    "MAX_BODY",
    "Catalog",
    "CheckSpec",
    "CheckState",
    "DnsServer",
    "Endpoint",
    "Health",
    "InstanceHealth",
    "InvalidRegistration",
    "KVEntry",
    "KVStore",
    "NodeInfo",
    "Registry",
    "RegistryClosed",
    "RegistryError",
    "ServiceRegistration",
    "StoreError",
    "UnknownCheck",
    "UnknownService",
    "consul_routes",
]
