"""The requests page: the gateway's recent requests, newest first, filtered, live.

``GET /requests`` renders the page with its filter form; ``GET /fragments/requests`` renders the
table alone, which the page polls (htmx) while "live" is on. Both take the same query
parameters, so a filtered view is a link: ``status`` (codes and classes, ``500``, ``5xx``,
several with commas), ``route`` (a route template), ``method``, ``correlation_id``, ``since``
(a duration ago such as ``15m``, an ISO 8601 time or epoch milliseconds) and ``limit``.

The records come from the access log's query (``node.access_log.query``, what
``GET /_stackyard/api/requests`` answers): the latest requests the node keeps in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.routing import BaseRoute

from ...telemetry.errors import TelemetryError
from ...telemetry.query import parse_moment
from ..app import Console

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
LOOKBACKS = ("1m", "5m", "15m", "1h", "6h", "1d")
POLL_SECONDS = 2


class FilterError(ValueError):
    """A filter the page cannot apply (shown above the table, answered with status 400)."""


@dataclass(frozen=True)
class RequestFilters:
    """The page's filters as given (strings, for the form) and as the query takes them."""

    status: str = ""
    route: str = ""
    method: str = ""
    correlation_id: str = ""
    since: str = ""
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, request: Request) -> RequestFilters:
        params = request.query_params
        raw_limit = params.get("limit") or str(DEFAULT_LIMIT)
        try:
            limit = max(1, min(int(raw_limit), MAX_LIMIT))
        except ValueError:
            raise FilterError(f"limit must be an integer, not {raw_limit!r}") from None
        return cls(
            status=(params.get("status") or "").strip(),
            route=params.get("route") or "",
            method=(params.get("method") or "").upper(),
            correlation_id=(params.get("correlation_id") or "").strip(),
            since=(params.get("since") or "").strip(),
            limit=limit,
        )

    def statuses(self) -> list[int]:
        """``"5xx, 404"`` → every code of class 5 and 404."""
        codes: list[int] = []
        for token in self.status.replace(" ", ",").split(","):
            token = token.strip().lower()
            if not token:
                continue
            if len(token) == 3 and token[0] in "12345" and token[1:] == "xx":
                first = int(token[0]) * 100
                codes.extend(range(first, first + 100))
            elif token.isdigit() and 100 <= int(token) <= 599:
                codes.append(int(token))
            else:
                raise FilterError(f"status: {token!r} is not a status code or class like 5xx")
        return codes

    def since_iso(self) -> str | None:
        if not self.since:
            return None
        try:
            micros = parse_moment(self.since, "since")
        except TelemetryError as exc:
            raise FilterError(str(exc)) from None
        return datetime.fromtimestamp(micros / 1e6, UTC).isoformat()

    def query_string(self) -> str:
        """The filters as a query string (only those set), for links and the polled fragment."""
        pairs = {
            "status": self.status,
            "route": self.route,
            "method": self.method,
            "correlation_id": self.correlation_id,
            "since": self.since,
            "limit": "" if self.limit == DEFAULT_LIMIT else str(self.limit),
        }
        return urlencode({key: value for key, value in pairs.items() if value})


def routes(console: Console) -> list[BaseRoute]:
    async def context(request: Request) -> dict[str, Any]:
        return _context(console, request)

    return console.live_routes(
        "/requests", "Requests", context, "requests.html", "_requests_rows.html"
    )


def _context(console: Console, request: Request) -> dict[str, Any]:
    node = console.node
    error = None
    records: list[dict[str, Any]] = []
    try:
        filters = RequestFilters.parse(request)
    except FilterError as exc:
        error, filters = str(exc), RequestFilters()
    if error is None:
        try:
            records = node.access_log.query(
                status=filters.statuses(),
                route=filters.route or None,
                method=filters.method or None,
                correlation_id=filters.correlation_id or None,
                since=filters.since_iso(),
                limit=filters.limit,
            )
        except ValueError as exc:  # FilterError too
            error = str(exc)
    return {
        "filters": filters,
        "query": filters.query_string(),
        "records": [_row(record) for record in records],
        "error": error,
        "route_paths": sorted({route.path for route in node.gateway.table.routes}),
        "methods": METHODS,
        "lookbacks": LOOKBACKS,
        "poll_seconds": POLL_SECONDS,
        "live": request.query_params.get("live") != "0",
    }


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """A record plus what its row shows: the status class and a short time of day."""
    status = int(record.get("status") or 0)
    stamp = str(record.get("time") or "")
    return {
        **record,
        "status_class": f"s{status // 100}xx" if status else "bad",
        "clock": stamp[11:23] if len(stamp) >= 23 else stamp,
        "day": stamp[:10],
    }
