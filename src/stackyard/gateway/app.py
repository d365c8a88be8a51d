"""The gateway: holds the current compiled route table and serves requests through the pipeline.

:class:`Gateway` is the data plane's one object: ``update(table)`` compiles a
:class:`~stackyard.gateway.table.RouteTable` (router, per-route upstream pools) and swaps it in
with one reference assignment, so a request in flight finishes on the table it matched;
``start``/``stop`` own the pooled upstream client; the instance (or ``app``) is the ASGI app,
and ``serve`` the same app for servers that simply await what it returns (the node's).
:func:`build_pipeline` assembles the steps every request takes, once, in order:
correlation → access log → metrics → CORS → early cache hits → error answers → API docs →
route match; then the matched route's own chain runs, compiled with the table
(:func:`route_chain`): authorizer → API key, throttle and quota → validation → gzip → cache →
transform → the route's integration (http proxy, a function when the gateway was given a
function invoker, a mock answer or a bucket's static site), each policy step only where the
route (or the API, for gzip and the stage throttle) uses it, so a plain route pays for no step
it does not use. A cached route with none of the steps before its cache has its hits answered
by the early step (:class:`~.cache.CacheFront`), without the route match.

Tracing (:mod:`.tracing`) is on when the gateway is given ``spans`` (a ``SpanRecorder``):
SERVER span per request, CLIENT span per upstream try or function call, W3C/B3 propagation,
``x-trace-id`` on the response of every recorded request; ``service_name`` (``gateway``),
``sample_ratio`` (1.0) and ``reservoir`` (0: traces taken each second before the ratio
applies) tune it. ``spans=None`` (the default): no tracing step, no span objects, the client's
trace headers pass to the upstream unchanged.

Endpoint state (in-flight counts, outlier ejections) and balancer positions are kept by the
gateway across table swaps for the endpoints and services that stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..asgi import ASGIApp, Receive, Scope, Send
from ..config.api import ApiConfig
from .access_log import AccessLog, AccessSink
from .auth import Authorize, Authorizers
from .balancer import Chooser, ServicePool, make_chooser
from .body import BUFFER_LIMIT
from .cache import CacheFront, ContentPolicies, FrontIndex
from .cors import Cors
from .docs import ApiDocs
from .endpoints import EndpointState, EndpointStates
from .errors import NoRoute
from .lambda_proxy import FunctionIntegration, FunctionInvoker
from .metrics import RequestMetrics
from .mock import MockIntegration
from .openapi import LiveDocument
from .outlier import OutlierDetector, OutlierSettings
from .proxy import HttpProxy, RouteTarget
from .router import HostRouter
from .static import ObjectSource, StaticSite
from .steps import (
    Correlation,
    ErrorResponder,
    HttpFirst,
    RouteChain,
    RouteMatcher,
    RouterSource,
)
from .table import Balancer, RouteSpec, RouteTable
from .tracing import DEFAULT_SERVICE, TracedCorrelation, Tracer
from .upstream import PoolSettings, UpstreamClient
from .usage import UsagePlans, UsageStep

if TYPE_CHECKING:
    from ..telemetry.instruments import MetricsRecorder, SpanRecorder

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024


def build_pipeline(
    source: RouterSource,
    tracer: Tracer | None = None,
    metrics: RequestMetricsSettings | None = None,
    docs: Callable[[], bytes] | None = None,
    access_log: AccessSink | None = None,
    front: FrontIndex | None = None,
) -> ASGIApp:
    """The steps every request takes, outermost first, ending with the route match, which
    hands the request to the matched route's chain (the correlation step traces with a tracer;
    with metrics, every answer is counted and timed; with an access log, logged; with a
    ``front`` index, a cache hit of a route with no step before its cache is answered before
    the route match).

    The app returned is not itself a coroutine function (its first steps return the next
    one's awaitable, see :mod:`stackyard.asgi`): serve it through :class:`Gateway`, whose
    ``__call__`` is, for servers that tell ASGI 3 from ASGI 2 by that."""
    app: ASGIApp = RouteMatcher(RouteChain(), source)
    if docs is not None:  # /_docs, when no route claims it
        app = ApiDocs(app, source, docs)
    app = ErrorResponder(app)
    if front is not None:
        app = CacheFront(app, front)
    app = Cors(app, source)  # outside the error answers: a browser can read why it was refused
    if metrics is not None:
        app = RequestMetrics(app, metrics.recorder, metrics.stage)
    if access_log is not None:
        app = AccessLog(app, access_log)
    app = Correlation(app) if tracer is None else TracedCorrelation(app, tracer)
    return app


def route_chain(
    route: RouteSpec,
    integration: ASGIApp,
    usage: UsagePlans,
    authorizers: Authorizers,
    content: ContentPolicies,
) -> ASGIApp:
    """The steps of one route after the match, outermost first, ending with ``integration``:
    only those the route's policy (or the API's gzip and stage throttle) uses. The authorizer
    step is always there: without an authorizer it removes the header that carries an
    authorizer's context, so a client cannot forge one."""
    checked = usage.applies(route)  # a key, a route or stage throttle
    first = route.policy.authorizer is None and not checked
    app = content.wrap_route(route, integration, first)  # validation → gzip → cache → transform
    if checked:
        app = UsageStep(app, usage, route)
    return Authorize(app, authorizers)


@dataclass(frozen=True)
class RequestMetricsSettings:
    recorder: MetricsRecorder
    stage: str = "dev"


class Integrations:
    """The integrations a route can end in: the http proxy, a function, a mock answer or a
    bucket's static site (``None`` when the gateway has no function invoker or buckets)."""

    def __init__(
        self, proxy: ASGIApp, function: ASGIApp | None, static: ASGIApp | None = None
    ) -> None:
        self.proxy = proxy
        self.function = function
        self.static = static
        self.mock = MockIntegration()

    def of(self, route: RouteSpec) -> ASGIApp:
        """The integration ``route`` ends in (404 for one this gateway cannot serve)."""
        by_kind: dict[str, ASGIApp | None] = {
            "http_proxy": self.proxy,
            "mock": self.mock,
            "bucket": self.static,
        }
        found = by_kind.get(route.integration, self.function)  # else "function"
        return found if found is not None else _no_route


async def _no_route(scope: Scope, receive: Receive, send: Send) -> None:
    raise NoRoute()


class _Live:
    """The compiled table currently in force; ``Gateway.update`` swaps it whole, in one
    synchronous call on the event loop, so no request sees a half-made table."""

    __slots__ = ("router", "table")

    def __init__(self, table: RouteTable, router: HostRouter[RouteTarget]) -> None:
        self.table = table
        self.router = router

    def replace(self, other: _Live) -> None:
        self.table, self.router = other.table, other.router


class Gateway:
    """The data plane's ASGI application (see the module docstring)."""

    def __init__(
        self,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        outlier: OutlierSettings | None = None,
        pool: PoolSettings | None = None,
        buffer_limit: int = BUFFER_LIMIT,
        functions: FunctionInvoker | None = None,
        spans: SpanRecorder | None = None,
        service_name: str = DEFAULT_SERVICE,
        sample_ratio: float = 1.0,
        reservoir: int = 0,
        metrics: MetricsRecorder | None = None,
        stage: str = "dev",
        api: ApiConfig | None = None,
        root: Path | None = None,
        data_dir: Path | None = None,
        access_log: AccessSink | None = None,
        buckets: ObjectSource | None = None,
    ) -> None:
        self.max_body_size = max_body_size
        self.stage = stage
        self.api = api if api is not None else ApiConfig()
        self.root = root  # relative file names in ``api`` (JWKS, schemas) are resolved here
        self.data_dir = data_dir  # where policy state is kept (keys, quotas); None: memory
        self.tracer = (
            Tracer(spans, service=service_name, sample_ratio=sample_ratio, reservoir=reservoir)
            if spans is not None
            else None
        )
        self.usage = UsagePlans(self.api, stage, data_dir)  # API keys, quotas, throttling
        # JWT and function authorizers (JWKS loaded by start())
        self.authorizers = Authorizers(self.api.authorizers, root=root, functions=functions)
        self.detector = OutlierDetector(outlier)
        self.client = UpstreamClient(pool)
        self._states = EndpointStates()
        self._choosers: dict[tuple[str, Balancer], Chooser] = {}
        self.content = ContentPolicies(self, root, max_body_size)  # validation, cache, ...
        self.integrations = Integrations(
            HttpProxy(self.client, max_body_size=max_body_size, buffer_limit=buffer_limit),
            FunctionIntegration(functions, max_body_size=max_body_size)
            if functions is not None
            else None,
            StaticSite(buckets) if buckets else None,
        )
        self._live = self._compile(RouteTable(version=0))
        self.openapi = LiveDocument(self)  # the live API as OpenAPI JSON (/_docs)
        self._pipeline = build_pipeline(
            self._live,
            self.tracer,
            RequestMetricsSettings(metrics, stage) if metrics is not None else None,
            docs=self.openapi,
            access_log=access_log,
            front=self.content.front,
        )
        self.serve: ASGIApp = HttpFirst(self._pipeline, self)
        """The gateway as a plain callable that returns the pipeline's awaitable for an HTTP
        request (anything else goes through ``__call__``): one coroutine frame fewer per
        request, for servers that await what an app returns without asking whether it is a
        coroutine function — granian, which :class:`~stackyard.serving.AsgiServer` runs."""

    @property
    def table(self) -> RouteTable:
        return self._live.table

    @property
    def app(self) -> ASGIApp:
        return self

    def update(self, table: RouteTable) -> None:
        """Compiles ``table`` and swaps it in; raises InvalidRoute and keeps the old one.

        Call it on the gateway's event loop thread (``loop.call_soon_threadsafe`` otherwise).
        """
        self._live.replace(self._compile(table))

    def _compile(self, table: RouteTable) -> _Live:
        states = self._states.refresh(table.endpoints)
        pools: dict[tuple[str, Balancer], ServicePool] = {}
        choosers: dict[tuple[str, Balancer], Chooser] = {}

        def prepare(route: RouteSpec) -> RouteTarget:
            key = (route.service, route.balancer)
            pool = pools.get(key)
            if pool is None:
                chooser = self._choosers.get(key) or make_chooser(route.balancer)
                choosers[key] = chooser
                eps: tuple[EndpointState, ...] = states.get(route.service, ())
                pool = pools[key] = ServicePool(route.service, eps, chooser, self.detector)
            chain = route_chain(
                route, self.integrations.of(route), self.usage, self.authorizers, self.content
            )
            return RouteTarget(route, pool, chain)

        router = HostRouter(table.routes, prepare)
        self.content.prepare(table.routes)  # schemas and templates; InvalidRoute if bad
        self._choosers = choosers
        return _Live(table, router)

    def configure(self, api: ApiConfig) -> None:
        """Use ``api``'s policies from now on (a deploy; the route table is swapped next).

        Call it on the gateway's event loop thread, like ``update``.
        """
        self.api = api
        self.usage.configure(api, self.stage)
        self.authorizers.configure(api.authorizers)
        self.content.configure(api)
        # the routes' chains depend on the API's gzip and stage throttle: compile them again
        self._live.replace(self._compile(self._live.table))

    def endpoint_state_items(self) -> list[tuple[tuple[str, str], EndpointState]]:
        """Every endpoint's runtime state by (instance id, authority), for deploys and status."""
        return self._states.items()

    def endpoint_states(self, service: str) -> tuple[EndpointState, ...]:
        """The runtime state of a service's endpoints in the current table (for status pages)."""
        out: list[EndpointState] = []
        for ep in self.table.endpoints.get(service, ()):
            state = self._states.get(ep)
            if state is not None:
                out.append(state)
        return tuple(out)

    async def start(self) -> None:
        """Creates the pooled upstream client (idempotent)."""
        await self.client.start()
        await self.usage.start()
        await self.authorizers.start()

    async def stop(self) -> None:
        """Closes the upstream client and its connections; writes the quota counters."""
        await self.authorizers.stop()
        await self.usage.stop()
        await self.client.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # a coroutine function, as servers that tell ASGI 3 from ASGI 2 by it expect
        kind = scope["type"]
        if kind == "http":
            await self._pipeline(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    logger.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
