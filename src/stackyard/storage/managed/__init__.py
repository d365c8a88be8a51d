"""Declared caches and databases: real Redis and PostgreSQL servers the node runs (data in the
data dir) or external ones given by ``url``, with their URLs injected into the services and
functions that ``uses`` them."""

from .component import ManagedResources, Resource
from .errors import ManagedError, MissingBinary
from .postgres import ManagedPostgres
from .redis import ManagedRedis

__all__ = [
    "ManagedError",
    "ManagedPostgres",
    "ManagedRedis",
    "ManagedResources",
    "MissingBinary",
    "Resource",
]
