"""What changes between the running stack and an edited one: the plan a deploy prints and applies.

:func:`stack_diff` compares two validated stacks part by part — services, functions, routes
(keyed by methods and path), authorizers, usage plans, stages, the stage-wide API settings,
alarms and tracing — and lists each :class:`Change`. ``Node.deploy`` applies the plan (see
its docstring for the order that keeps requests flowing); the parts marked
``needs_restart`` are reported but take effect at the next ``stackyard up``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from .config import StackConfig
from .config.api import RouteConfig

Action = Literal["added", "changed", "removed"]

_API_SETTINGS = ("openapi", "throttle", "cors", "gzip", "cache", "key_source")
_RESTART_KINDS = frozenset({"alarm", "tracing"})


class DeployError(Exception):
    """A deploy that cannot be applied (the running stack is left as it was)."""


@dataclass(frozen=True)
class Change:
    """One part of the stack that a deploy adds, changes or removes."""

    kind: str
    name: str
    action: Action

    @property
    def needs_restart(self) -> bool:
        return self.kind in _RESTART_KINDS

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "needs_restart": self.needs_restart,
        }


def route_key(route: RouteConfig) -> str:
    """How a deploy names a route: ``GET,POST /items/{id}``."""
    return f"{','.join(sorted(route.methods))} {route.path}"


def stack_diff(old: StackConfig, new: StackConfig) -> list[Change]:
    """Every change from ``old`` to ``new``, by kind then name."""
    changes: list[Change] = []
    changes += _named("service", old.services, new.services)
    changes += _named("function", old.functions, new.functions)
    changes += _named(
        "route",
        {route_key(r): r for r in old.api.routes},
        {route_key(r): r for r in new.api.routes},
    )
    changes += _named("authorizer", old.api.authorizers, new.api.authorizers)
    changes += _named("usage_plan", old.api.usage_plans, new.api.usage_plans)
    changes += _named("stage", old.api.stages, new.api.stages)
    changes += _named(
        "api",
        {k: getattr(old.api, k) for k in _API_SETTINGS},
        {k: getattr(new.api, k) for k in _API_SETTINGS},
    )
    changes += _named("alarm", old.alarms, new.alarms)
    for setting in ("sample_ratio", "reservoir"):
        if getattr(old.tracing, setting) != getattr(new.tracing, setting):
            changes.append(Change("tracing", setting, "changed"))
    return changes


def _named(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    out = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            out.append(Change(kind, name, "removed"))
        elif name not in old:
            if new[name] is not None:
                out.append(Change(kind, name, "added"))
        elif _dump(old[name]) != _dump(new[name]):
            action: Action = "removed" if new[name] is None else "changed"
            out.append(Change(kind, name, "added" if old[name] is None else action))
    return out


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
