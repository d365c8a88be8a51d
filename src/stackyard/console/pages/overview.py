"""The overview page: the stack as a live map, alarms in ALARM on top.

``GET /`` renders the page; ``GET /fragments/overview`` renders the map alone, which the page
polls (htmx) every few seconds.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute

from ...control import status_document
from ...gateway.tracing import DEFAULT_SERVICE
from ..app import Console
from ..stackmap import build_map, declared_edges

WINDOW_S = 300  # the calls shown on the map's edges: the last five minutes


def routes(console: Console) -> list[BaseRoute]:
    async def context(request: Request) -> dict[str, Any]:
        return await _context(console)

    return console.live_routes(
        "/", "Overview", context, "overview.html", "_overview_map.html", "/fragments/overview"
    )


async def _context(console: Console) -> dict[str, Any]:
    node = console.node
    status = status_document(node)
    end_ms = int(time.time() * 1000)
    links = await node.telemetry.spans.dependencies(end_ms, WINDOW_S * 1000)
    alarms = node.telemetry.alarms.states()
    declared = declared_edges(node.stack.config)
    stack_map = build_map(status, links, alarms, WINDOW_S, DEFAULT_SERVICE, declared)
    return {
        "status": status,
        "map": stack_map,
        "alarms": [alarm for alarm in alarms if alarm["state"] == "ALARM"],
        "window_minutes": WINDOW_S // 60,
    }
