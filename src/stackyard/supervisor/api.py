"""The supervisor's admin API on the control port: services, their instances, and two actions.

- ``GET /_stackyard/services`` — ``[{name, replicas, passing, instances}]`` (counts);
- ``GET /_stackyard/services/{name}[?history=N]`` — the service document: ``{name, replicas,
  passing, instances: [...]}``, each instance with ``instance_id, address, port, pid, state,
  health, restarts, started_at, uptime, last_exit_code``, its ``checks`` (``check_id, name,
  status, output``) and its ``history``: the last ``N`` (default 20, at most 50) health
  transitions ``{time, check_id, from, to, output}``, newest first (``from`` is null when the
  instance was registered, ``to`` null when it was deregistered);
- ``POST /_stackyard/services/{name}/instances/{id}/restart`` — stops the instance gracefully
  and starts it again at once; answers the instance (a new ``pid``) once it has been spawned;
- ``PUT /_stackyard/services/{name}/replicas`` with ``{"replicas": n}`` (0 to 64) — starts the
  missing instances or stops the highest-numbered ones; answers the service document. The
  count holds until a deploy changes the service.

Errors are JSON ``{"error": {"code", "message"}}``: 404 ``UnknownService`` /
``UnknownInstance``, 400 ``InvalidParameter`` (a bad body or count), 409 ``NotRunning`` (the
supervisor is starting or stopping).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..registry.history import HealthHistory
from ..registry.models import Health, InstanceHealth
from ..responses import error_response
from .errors import SupervisorStateError, UnknownInstanceError, UnknownServiceError
from .instance import InstanceStatus
from .supervisor import Supervisor

MAX_REPLICAS = 64  # as the stack's ``replicas`` field
DEFAULT_HISTORY = 20
MAX_HISTORY = 50
MAX_BODY = 4096

Handler = Callable[[Request], Awaitable[Response]]


class HealthSource(Protocol):
    """What the API reads of the registry: instance health and the health history."""

    history: HealthHistory

    def health(self, name: str) -> list[InstanceHealth]: ...


class BadRequest(Exception):
    """A malformed parameter or body (400)."""


def service_routes(supervisor: Supervisor, registry: HealthSource) -> list[BaseRoute]:
    """The routes of the services admin API."""

    def guard(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except UnknownServiceError as exc:
                return error_response(404, "UnknownService", str(exc))
            except UnknownInstanceError as exc:
                return error_response(404, "UnknownInstance", str(exc))
            except BadRequest as exc:
                return error_response(400, "InvalidParameter", str(exc))
            except SupervisorStateError as exc:
                return error_response(409, "NotRunning", str(exc))

        return guarded

    def service_name(request: Request) -> str:
        name = str(request.path_params["name"])
        if name not in supervisor.services():
            raise UnknownServiceError(f"no service named {name!r}")
        return name

    async def list_services(request: Request) -> Response:
        out = []
        for name in supervisor.services():
            health = registry.health(name)
            out.append(
                {
                    "name": name,
                    "replicas": supervisor.replicas(name),
                    "passing": sum(1 for h in health if h.status is Health.PASSING),
                    "instances": sum(1 for s in supervisor.status() if s.service == name),
                }
            )
        return JSONResponse(out)

    async def get_service(request: Request) -> Response:
        name = service_name(request)
        limit = _int_param(request, "history", DEFAULT_HISTORY, 0, MAX_HISTORY)
        return JSONResponse(service_document(supervisor, registry, name, limit))

    async def restart(request: Request) -> Response:
        name = service_name(request)
        instance_id = str(request.path_params["instance_id"])
        if not any(s.instance_id == instance_id for s in _instances(supervisor, name)):
            raise UnknownInstanceError(f"service {name!r} has no instance {instance_id!r}")
        await supervisor.restart_instance(instance_id)
        doc = service_document(supervisor, registry, name, DEFAULT_HISTORY)
        (instance,) = [i for i in doc["instances"] if i["instance_id"] == instance_id]
        return JSONResponse(instance)

    async def scale(request: Request) -> Response:
        name = service_name(request)
        replicas = _replicas(await request.body())
        await supervisor.scale(name, replicas)
        return JSONResponse(service_document(supervisor, registry, name, DEFAULT_HISTORY))

    return [
        Route("/_stackyard/services", guard(list_services), methods=["GET"]),
        Route("/_stackyard/services/{name}", guard(get_service), methods=["GET"]),
        Route(
            "/_stackyard/services/{name}/instances/{instance_id}/restart",
            guard(restart),
            methods=["POST"],
        ),
        Route("/_stackyard/services/{name}/replicas", guard(scale), methods=["PUT"]),
    ]


def service_document(
    supervisor: Supervisor, registry: HealthSource, name: str, history: int = DEFAULT_HISTORY
) -> dict[str, Any]:
    """One service as ``GET /_stackyard/services/{name}`` shows it (the console's source too)."""
    health = {h.registration.id: h for h in registry.health(name)}
    now = time.time()
    instances = []
    for status in _instances(supervisor, name):
        entry = health.get(status.instance_id)
        registration = entry.registration if entry is not None else None
        instances.append(
            {
                "instance_id": status.instance_id,
                "address": registration.address if registration else supervisor.host,
                "port": registration.port if registration else status.port,
                "pid": status.pid,
                "state": status.state.value,
                "health": entry.status.value if entry is not None else Health.CRITICAL.value,
                "restarts": status.restarts,
                "started_at": status.started_at,
                "uptime": now - status.started_at if status.started_at and status.pid else None,
                "last_exit_code": status.last_exit_code,
                "checks": [
                    {
                        "check_id": c.spec.check_id,
                        "name": c.spec.name,
                        "status": c.status.value,
                        "output": c.output,
                    }
                    for c in (entry.checks if entry is not None else ())
                ],
                "history": [
                    t.as_json() for t in registry.history.of_service(status.instance_id, history)
                ],
            }
        )
    return {
        "name": name,
        "replicas": supervisor.replicas(name),
        "passing": sum(1 for h in health.values() if h.status is Health.PASSING),
        "instances": instances,
    }


def _instances(supervisor: Supervisor, name: str) -> list[InstanceStatus]:
    return [s for s in supervisor.status() if s.service == name]


def _int_param(request: Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{key} must be an integer") from exc
    if not low <= value <= high:
        raise BadRequest(f"{key} must be between {low} and {high}")
    return value


def _replicas(body: bytes) -> int:
    if len(body) > MAX_BODY:
        raise BadRequest("the body is too large")
    try:
        doc = json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest('the body must be JSON: {"replicas": n}') from exc
    value = doc.get("replicas") if isinstance(doc, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest('the body must be {"replicas": n} with an integer n')
    if not 0 <= value <= MAX_REPLICAS:
        raise BadRequest(f"replicas must be between 0 and {MAX_REPLICAS} (got {value})")
    return value
