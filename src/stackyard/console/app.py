"""The console's Starlette app: page routes of every page module, templates and static files.

Each page module has ``routes(console) -> list[BaseRoute]`` and renders its templates with
:meth:`Console.render`; this module only assembles them under :data:`CONSOLE_PATH`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles

if TYPE_CHECKING:
    from ..node import Node

# what a live page shows, from its request (``error``: why it cannot, answered with 400)
PageContext = Callable[[Request], Awaitable[dict[str, Any]]]
CONSOLE_PATH = "/_console"
MISSING = "\N{EN DASH}"  # what a table cell shows for no value

# (path under the console, title) of the pages in the navigation bar, in order
NAVIGATION: list[tuple[str, str]] = [
    ("/", "Overview"),
    ("/services", "Services"),
    ("/requests", "Requests"),
    ("/traces", "Traces"),
    ("/logs", "Logs"),
    ("/functions", "Functions"),
    ("/data", "Data"),
    ("/api", "API"),
    ("/alarms", "Alarms"),
]


class Console:
    """What every page shares: the node it shows and the template environment."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.env = Environment(
            loader=PackageLoader("stackyard.console", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            base=CONSOLE_PATH,
            navigation=NAVIGATION,
            stack_name=lambda: node.stack.config.name,
            stage=lambda: node.settings.stage,
        )
        self.env.filters.update(
            datetime=format_time, duration=format_duration, number=format_number
        )

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        page = self.env.get_template(template)
        html = page.render(request=request, path=_page_path(request), **context)
        return HTMLResponse(html, status_code=status_code)

    def url(self, path: str) -> str:
        return CONSOLE_PATH + path

    def live_routes(
        self,
        path: str,
        title: str,
        context: PageContext,
        template: str,
        fragment: str,
        fragment_path: str | None = None,
    ) -> list[BaseRoute]:
        """A page (``GET path``, ``template``) and the part of it that it polls (``GET
        /fragments/<name>``, ``fragment``), rendered from the same ``context``; both answer
        400 when the context has an ``error`` (a bad filter), with the page still shown."""

        async def answer(request: Request, name: str, **extra: Any) -> Response:
            values = await context(request)
            status = 400 if values.get("error") else 200
            return self.render(request, name, status_code=status, **extra, **values)

        async def page(request: Request) -> Response:
            return await answer(request, template, title=title)

        async def part(request: Request) -> Response:
            return await answer(request, fragment)

        polled = fragment_path or "/fragments" + path
        return [Route(path, page, methods=["GET"]), Route(polled, part, methods=["GET"])]


def create_console_app(node: Node) -> Starlette:
    """The console, to be mounted at :data:`CONSOLE_PATH` on the control app."""
    from . import pages  # the page modules import Console from here

    console = Console(node)
    routes = [route for module_routes in pages.ROUTES for route in module_routes(console)]
    app = Starlette(routes=routes)
    app.mount("/static", StaticFiles(packages=[("stackyard.console", "static")]), name="static")
    return app


def _page_path(request: Request) -> str:
    """The page's path under the console ('/' for the overview), for the navigation bar."""
    path = request.url.path.removeprefix(CONSOLE_PATH) or "/"
    return "/" + path.strip("/").split("/", 1)[0] if path != "/" else "/"


def format_time(value: float | int | None, unit: str = "s") -> str:
    """A timestamp (seconds, or ``unit='us'``/``'ms'``) as UTC ``YYYY-MM-DD HH:MM:SS.mmm``."""
    if value is None:
        return MISSING
    seconds = value / {"s": 1, "ms": 1e3, "us": 1e6}[unit]
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_duration(value: float | int | None, unit: str = "ms") -> str:
    """A duration as a person reads it: µs, ms or s with three significant figures."""
    if value is None:
        return MISSING
    us = value * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.3g} ms"
    return f"{us / 1_000_000:.3g} s"


def format_number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return MISSING
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.{digits}g}"
