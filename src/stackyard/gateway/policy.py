"""What a route asks of the API-management steps, as compiled into the route table.

A :class:`RoutePolicy` is the route's part of the stack's ``api:`` section (the config objects
themselves: they are immutable); the steps read it from ``scope["state"]["route"].route.policy``
and pass a request straight through when their part is unset, so a route without policies pays
one attribute check per step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.api import CacheConfig, ThrottleConfig, TransformConfig, ValidationConfig


@dataclass(frozen=True)
class RoutePolicy:
    """``api_key``: an ``x-api-key`` of a key in some usage plan is needed; ``authorizer`` (a
    name in ``api.authorizers``) with the ``scopes`` a token must carry; the route's own
    ``throttle``; its response ``cache``; request/response ``transform``; request
    ``validation``."""

    api_key: bool = False
    authorizer: str | None = None
    scopes: tuple[str, ...] = ()
    throttle: ThrottleConfig | None = None
    cache: CacheConfig | None = None
    transform: TransformConfig | None = None
    validation: ValidationConfig | None = None


NO_POLICY = RoutePolicy()
