"""The console's pages: each module's ``routes(console)``, in navigation order."""

from collections.abc import Callable

from starlette.routing import BaseRoute

from ..app import Console
from . import alarms, api, data, functions, logs, overview, requests, services, traces

ROUTES: list[Callable[[Console], list[BaseRoute]]] = [
    overview.routes,
    services.routes,
    requests.routes,
    traces.routes,
    logs.routes,
    functions.routes,
    data.routes,
    api.routes,
    alarms.routes,
]
