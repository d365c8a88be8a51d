"""The services pages: every service with its replicas and instances; one service's instances
with their health history, its live logs, its traffic charts and the restart and scale actions.

``GET /services`` lists the services (the table is ``/fragments/services``, polled);
``GET /services/{name}`` shows one: its instances and health history are
``/fragments/services/{name}/instances`` and its newest log lines
``/fragments/services/{name}/logs``, both polled. Data comes from ``status_document`` and
``service_document`` (what ``GET /_stackyard/status`` and ``GET /_stackyard/services/{name}``
answer) and the central log search; charts read the gateway metrics labelled with the service.
The restart buttons and the scale form (``static/services.js``) call the services admin API
(``POST /_stackyard/services/{name}/instances/{id}/restart``, ``PUT .../replicas``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...control import status_document
from ...supervisor.api import MAX_REPLICAS, service_document
from ...telemetry.logs import LogQuery
from ..app import Console

LOG_LINES_SHOWN = 50
HISTORY_SHOWN = 10  # health transitions shown per instance


def routes(console: Console) -> list[BaseRoute]:
    async def index(request: Request) -> Response:
        return console.render(request, "services.html", title="Services", **_index(console))

    async def index_fragment(request: Request) -> Response:
        return console.render(request, "_services_table.html", **_index(console))

    async def detail(request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in console.node.supervisor.services():
            return _unknown(console, request, name)
        return console.render(
            request,
            "service.html",
            title=f"Service {name}",
            routes=_routes_of(console, name),
            max_replicas=MAX_REPLICAS,
            logs=await _logs(console, name),
            **_detail(console, name),
        )

    async def instances_fragment(request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in console.node.supervisor.services():
            return _unknown(console, request, name)
        return console.render(request, "_service_instances.html", **_detail(console, name))

    async def logs_fragment(request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in console.node.supervisor.services():
            return _unknown(console, request, name)
        return console.render(
            request, "_service_logs.html", name=name, logs=await _logs(console, name)
        )

    return [
        Route("/services", index, methods=["GET"]),
        Route("/fragments/services", index_fragment, methods=["GET"]),
        Route("/services/{name}", detail, methods=["GET"]),
        Route("/fragments/services/{name}/instances", instances_fragment, methods=["GET"]),
        Route("/fragments/services/{name}/logs", logs_fragment, methods=["GET"]),
    ]


def _unknown(console: Console, request: Request, name: str) -> Response:
    return console.render(
        request, "services.html", status_code=404, title="Services", missing=name, **_index(console)
    )


def _index(console: Console) -> dict[str, Any]:
    status = status_document(console.node)
    routes: dict[str, list[str]] = {}
    for route in status["routes"]:
        if route["integration"] == "http_proxy" and route["service"]:
            routes.setdefault(route["service"], []).append(route["path"])
    return {"services": status["services"], "routes": routes}


def _detail(console: Console, name: str) -> dict[str, Any]:
    node = console.node
    service = service_document(node.supervisor, node.registry, name, HISTORY_SHOWN)
    for instance in service["instances"]:
        instance["uptime_text"] = uptime_text(instance["uptime"])
    return {"name": name, "service": service, "history_shown": HISTORY_SHOWN}


def uptime_text(seconds: float | None) -> str:
    """``45s``, ``3m 12s``, ``2h 05m``, ``3d 4h``: how long an instance has been up."""
    if seconds is None:
        return "\N{EN DASH}"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _routes_of(console: Console, name: str) -> list[dict[str, Any]]:
    return [
        route
        for route in status_document(console.node)["routes"]
        if route["integration"] == "http_proxy" and route["service"] == name
    ]


async def _logs(console: Console, name: str) -> list[dict[str, Any]]:
    records, _ = await console.node.telemetry.logs.search(
        LogQuery(service=name, limit=LOG_LINES_SHOWN)
    )
    return records
