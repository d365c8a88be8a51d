"""The logs page: full-text search of the central logs with filters, "more", and a live tail.

``GET /logs`` renders the search form and the newest matching lines; ``GET /fragments/logs``
renders matching lines alone (table rows, and a "more" row holding the next page's cursor when
there is one). Both take the log search's parameters — ``q``, ``service``, ``level``, ``since``,
``until``, ``trace_id``, ``correlation_id``, ``limit``, ``cursor`` (see
``stackyard.telemetry.query``) — so a search is a link; ``live=1`` starts the page with the
live tail on. ``static/logs.js`` appends the next page on "more", and while the tail is on it
asks the fragment every few seconds for lines since the newest one shown and puts new ones on
top. The lines come from the log store's search (``node.telemetry.logs.search``, what
``GET /_stackyard/logs/search`` answers): newest first, limited, indexed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.routing import BaseRoute

from ...telemetry.errors import TelemetryError
from ...telemetry.log_writer import LEVELS
from ...telemetry.query import log_query
from ..app import Console

FILTERS = ("q", "service", "level", "since", "until", "trace_id", "correlation_id", "limit")
LOOKBACKS = ("5m", "15m", "1h", "6h", "1d", "7d")
TAIL_SECONDS = 2


def routes(console: Console) -> list[BaseRoute]:
    async def context(request: Request) -> dict[str, Any]:
        return await _context(console, request)

    return console.live_routes("/logs", "Logs", context, "logs.html", "_logs_rows.html")


async def _context(console: Console, request: Request) -> dict[str, Any]:
    node = console.node
    params = request.query_params
    filters = {name: (params.get(name) or "").strip() for name in FILTERS}
    error = None
    records: list[dict[str, Any]] = []
    cursor = None
    try:
        records, next_page = await node.telemetry.logs.search(log_query(request))
        cursor = f"{next_page[0]}.{next_page[1]}" if next_page else None
    except TelemetryError as exc:
        error = str(exc)
    config = node.stack.config
    return {
        "filters": filters,
        "query": urlencode({key: value for key, value in filters.items() if value}),
        "records": records,
        "cursor": cursor,
        "error": error,
        "services": ["gateway", *sorted(set(config.services) | set(config.functions))],
        "levels": list(LEVELS),
        "lookbacks": LOOKBACKS,
        "live": params.get("live") in ("1", "true", "on"),
        "tail_seconds": TAIL_SECONDS,
    }
