"""The SDK for Python services and functions running on Stackyard: one call sets up logging,
tracing and propagation from the standard environment (DESIGN.md, "Standard environment").

    from stackyard import sdk

    sdk.setup()                                   # at start-up (module level in a function)

    # inbound: a SERVER span continuing the caller's trace + the correlation context
    app = sdk.WsgiMiddleware(app)                 # or sdk.AsgiMiddleware(app)
    with sdk.server_span(handler.headers, "GET /orders") as request:   # http.server
        ...
    with sdk.function_span(event):                # in a function handler
        ...

    # outbound: context headers (and CLIENT spans) on every call
    sdk.urlopen(url)                              # urllib; requests/aiohttp/httpx are hooked
    sdk.outbound_headers()                        # {"traceparent", "x-correlation-id", ...}

    logging.getLogger(__name__).info("placed")    # a JSON line with trace_id, correlation_id

Pieces: :mod:`.logs` (JSON lines), :mod:`.tracing` (OpenTelemetry, spans, headers),
:mod:`.middleware` (WSGI/ASGI), :mod:`.clients` (urllib, requests, aiohttp, httpx),
:mod:`.discovery` (the node's Consul-style API with round-robin). OpenTelemetry is optional
(``pip install 'stackyard[sdk]'``): without it logs and correlation ids still work and trace
context is forwarded as it came.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import clients, tracing
from .clients import (
    ClientCall,
    PropagationHandler,
    aiohttp_trace_config,
    client_span,
    httpx_event_hooks,
    instrument,
    requests_session,
    uninstrument,
    urlopen,
)
from .context import Correlation, current_correlation_id
from .discovery import Discovery, Endpoint, NoEndpoints
from .logs import ContextFilter, JsonFormatter, StdoutHandler
from .logs import install as install_logging
from .middleware import AsgiMiddleware, WsgiMiddleware
from .tracing import (
    RequestSpan,
    current_ids,
    force_flush,
    function_span,
    outbound_headers,
    server_span,
)

__all__ = [
    "AsgiMiddleware",
    "ClientCall",
    "ContextFilter",
    "Correlation",
    "Discovery",
    "Endpoint",
    "JsonFormatter",
    "NoEndpoints",
    "PropagationHandler",
    "RequestSpan",
    "Sdk",
    "StdoutHandler",
    "WsgiMiddleware",
    "aiohttp_trace_config",
    "client_span",
    "correlation_id",
    "current_ids",
    "force_flush",
    "function_span",
    "httpx_event_hooks",
    "install_logging",
    "instrument",
    "outbound_headers",
    "requests_session",
    "server_span",
    "setup",
    "shutdown",
    "uninstrument",
    "urlopen",
]

logger = logging.getLogger("stackyard.sdk")

DEFAULT_INSTRUMENT = ("aiohttp", "httpx", "requests", "urllib")


@dataclass
class Sdk:
    """What :func:`setup` did."""

    service_name: str
    tracing: str  # "otlp" (spans recorded and exported), "api" (propagation only) or "off"
    handler: logging.Handler
    instrumented: list[str] = field(default_factory=list)
    warning: str | None = None

    def flush(self, timeout_millis: int = 5000) -> bool:
        """Export the spans ended so far."""
        return force_flush(timeout_millis)

    def shutdown(self) -> None:
        shutdown()


def correlation_id() -> str | None:
    """The correlation id of the current request (None outside one)."""
    return current_correlation_id()


def shutdown() -> None:
    """Export what is left and stop the tracer provider :func:`setup` made (also done at exit)."""
    tracing.shutdown()


def setup(
    service_name: str | None = None,
    *,
    level: int | str = "INFO",
    instrument: Iterable[str] = DEFAULT_INSTRUMENT,
) -> Sdk:
    """Set up this process: JSON log lines on stdout (root logger at ``level``), OpenTelemetry
    from the standard environment (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``,
    ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``), W3C + B3 propagation, and outbound hooks for
    the ``instrument`` libraries that are importable (see :mod:`.clients`; ``()`` for none).

    ``service_name`` overrides ``OTEL_SERVICE_NAME`` (which the node sets to the service or
    function name). Safe to call again (logging is replaced, tracing kept). When OpenTelemetry
    is missing a warning is logged and everything else works.
    """
    handler = install_logging(level)
    name = tracing.service_name_from_env(service_name)
    warning = tracing.configure(name)
    if warning:
        logger.warning(warning)
    done = clients.instrument(instrument)
    mode = "otlp" if tracing.state.provider is not None else "api" if tracing.state.api else "off"
    return Sdk(name, mode, handler, done, warning)
