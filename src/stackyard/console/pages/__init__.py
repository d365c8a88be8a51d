"""The console's pages: each module's ``routes(console)``, in navigation order."""

from collections.abc import Callable

from starlette.routing import BaseRoute

from ..app import Console
from . import functions, overview

ROUTES: list[Callable[[Console], list[BaseRoute]]] = [
    overview.routes,
    functions.routes,
]
