"""A small client for the node's Consul-style discovery API, with client-side round-robin.

    discovery = sdk.Discovery()                    # $STACKYARD_URL, 2 s cache
    base = discovery.url("orders")                 # "http://127.0.0.1:41234", next in turn
    endpoints = discovery.endpoints("orders")      # [Endpoint(id, address, port), ...]

``endpoints`` reads ``GET $STACKYARD_URL/v1/health/service/{name}?passing`` (only instances
whose health checks pass) and caches the answer for ``ttl`` seconds per service; when a refresh
fails, the last known list is used for up to ``stale_ttl`` seconds more (the node may be
restarting) before the error is raised. Thread-safe; stdlib only.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, NamedTuple


class NoEndpoints(LookupError):
    """The service has no passing instance."""


class Endpoint(NamedTuple):
    id: str
    address: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"


class _Entry:
    __slots__ = ("endpoints", "fetched", "turn")

    def __init__(self, endpoints: list[Endpoint], fetched: float) -> None:
        self.endpoints = endpoints
        self.fetched = fetched
        self.turn = itertools.count()


def parse_health(document: Any) -> list[Endpoint]:
    """Endpoints of a ``/v1/health/service`` answer (the service address, else the node's)."""
    out: list[Endpoint] = []
    for entry in document if isinstance(document, list) else []:
        service = entry.get("Service") or {}
        node = entry.get("Node") or {}
        address = service.get("Address") or node.get("Address") or "127.0.0.1"
        port = service.get("Port")
        if isinstance(port, int) and port > 0:
            out.append(Endpoint(str(service.get("ID", "")), str(address), port))
    return out


class Discovery:
    """See the module docstring."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        ttl: float = 2.0,
        stale_ttl: float = 30.0,
        timeout: float = 2.0,
    ) -> None:
        url = base_url or os.environ.get("STACKYARD_URL")
        if not url:
            raise ValueError("no discovery URL: pass base_url or set STACKYARD_URL")
        self.base_url = url.rstrip("/")
        self.ttl = ttl
        self.stale_ttl = stale_ttl
        self.timeout = timeout
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _fetch(self, service: str) -> list[Endpoint]:
        name = urllib.parse.quote(service, safe="")
        url = f"{self.base_url}/v1/health/service/{name}?passing"
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            return parse_health(json.loads(response.read()))

    def endpoints(self, service: str) -> list[Endpoint]:
        """The passing endpoints of ``service`` (cached for ``ttl`` seconds)."""
        return list(self._entry(service).endpoints)

    def _entry(self, service: str) -> _Entry:
        now = time.monotonic()
        with self._lock:
            entry = self._cache.get(service)
        if entry is not None and now - entry.fetched < self.ttl:
            return entry
        try:
            found = self._fetch(service)
        except OSError:
            if entry is not None and now - entry.fetched < self.ttl + self.stale_ttl:
                return entry
            raise
        fresh = _Entry(found, now)
        with self._lock:
            if entry is not None:
                fresh.turn = entry.turn  # keep rotating where the last list left off
            self._cache[service] = fresh
        return fresh

    def next(self, service: str) -> Endpoint:
        """The next passing endpoint of ``service`` in round-robin order; :class:`NoEndpoints`
        when there is none."""
        entry = self._entry(service)
        if not entry.endpoints:
            raise NoEndpoints(f"no passing instance of {service!r}")
        return entry.endpoints[next(entry.turn) % len(entry.endpoints)]

    def url(self, service: str) -> str:
        """``http://address:port`` of :meth:`next`."""
        return self.next(service).url

    def invalidate(self, service: str | None = None) -> None:
        """Forget the cached endpoints of ``service`` (all services when None)."""
        with self._lock:
            if service is None:
                self._cache.clear()
            else:
                self._cache.pop(service, None)
