"""A traced gateway request's spans in compact form, and how they become stored spans.

The gateway records one tuple per traced request (a :data:`GatewayRecord`) instead of building
:class:`~.model.Span` objects with tag dicts on its event loop: the raw fields of its SERVER
span and of its CLIENT spans (one per upstream try or function call). A recorder with
``record_gateway_request`` (``Telemetry``: the span store queues the tuple as is and its writer
process expands it, :func:`expand`) takes it whole; for any other ``SpanRecorder`` the gateway
calls ``record_span`` with :func:`spans_of` (CLIENT spans first, then the SERVER span: the order
in which they end). Either way the stored spans are the same: names, tags (same keys, same
order), endpoints and ids as documented in ``stackyard.gateway.tracing``.

Layout (times are ``time.time_ns()`` at the start and a ``perf_counter_ns()`` difference)::

    (REQUEST, trace_id, span_id, parent_id, service, start_ns, duration_ns, method,
     raw_path, query, route_path, route_name, stage, status, error, correlation_id, clients)

``raw_path``/``query`` are the request's bytes (``http.target`` is built from them),
``route_path``/``route_name``/``stage`` are None when no route matched, ``status`` is 0 when no
answer started, ``error`` the exception's type name or None; ``clients`` is None or a list of::

    (HTTP_TRY, span_id, name, start_ns, duration_ns, remote_service, address, port,
     attempt, status, error)                       # status None: no answer
    (FUNCTION_CALL, span_id, name, start_ns, duration_ns, function, status, error)

Everything is a str, int, bytes, None or list/tuple of them, so a record ships with
:mod:`marshal` as it is. This module imports only :mod:`.model`.
"""

from __future__ import annotations

import json
from typing import Any

from .model import Endpoint, Span, endpoint_json

_quote = json.encoder.encode_basestring  # what model.zipkin_json quotes with

REQUEST = 0
HTTP_TRY = 1
FUNCTION_CALL = 2

GatewayRecord = tuple[Any, ...]
SpanTuple = tuple[Any, ...]
"""A span as the span store ships it: the :class:`Span` fields in order, endpoints as
``(service_name, ipv4, ipv6, port)`` tuples (see ``span_writer.encode``)."""

_NO_NOTES: list[tuple[int, str]] = []


def expand(record: GatewayRecord) -> list[SpanTuple]:
    """The span tuples of a gateway record: its CLIENT spans, then its SERVER span."""
    (
        _,
        trace_id,
        span_id,
        parent_id,
        service,
        start_ns,
        duration_ns,
        method,
        raw,
        query,
        route_path,
        route_name,
        stage,
        status,
        error,
        correlation_id,
        clients,
    ) = record
    local = (service, None, None, None)
    out: list[SpanTuple] = []
    if clients:
        for client in clients:
            out.append(_client(client, trace_id, span_id, local))
    target = (raw + b"?" + query if query and b"?" not in raw else raw).decode("latin-1")
    tags = {"http.method": method, "http.target": target, "correlation.id": correlation_id}
    if route_path is not None:
        name = f"{method} {route_path}"
        tags["http.route"] = route_path
        tags["stackyard.route"] = route_name
        if stage:
            tags["stackyard.stage"] = stage
    else:
        name = method
    if status:
        tags["http.status_code"] = str(status)
    if error is not None:
        tags["error"] = error
    elif status >= 500:
        tags["error"] = str(status)
    out.append(
        (
            trace_id,
            span_id,
            name,
            parent_id,
            "SERVER",
            start_ns // 1000,
            max(1, duration_ns // 1000),
            local,
            None,
            tags,
            _NO_NOTES,
            False,
            False,
        )
    )
    return out


def _client(
    client: tuple[Any, ...], trace_id: str, parent_id: str, local: tuple[Any, ...]
) -> SpanTuple:
    kind = client[0]
    tags: dict[str, str]
    if kind == HTTP_TRY:
        (
            _,
            span_id,
            name,
            start_ns,
            duration_ns,
            service,
            address,
            port,
            attempt,
            status,
            error,
        ) = client
        tags = {
            "http.method": name.partition(" ")[0],
            "peer.address": f"{address}:{port}",
            "retry.attempt": str(attempt),
        }
        if status is not None:
            tags["http.status_code"] = str(status)
        if error is not None:
            tags["error"] = error
        elif status is not None and status >= 500:
            tags["error"] = str(status)
        ipv6 = ":" in address
        remote = (service, None if ipv6 else address, address if ipv6 else None, port)
    else:
        (_, span_id, name, start_ns, duration_ns, function, status, error) = client
        tags = {"faas.invoked_name": function}
        if status:
            tags["http.status_code"] = str(status)
        if error is not None:
            tags["error"] = error
        elif status >= 500:
            tags["error"] = str(status)
        remote = (function, None, None, None)
    return (
        trace_id,
        span_id,
        name,
        parent_id,
        "CLIENT",
        start_ns // 1000,
        max(1, duration_ns // 1000),
        local,
        remote,
        tags,
        _NO_NOTES,
        False,
        False,
    )


def spans_of(record: GatewayRecord) -> list[Span]:
    """The record's spans as :class:`Span` objects (CLIENT spans first)."""
    out = []
    for trace_id, span_id, name, parent_id, kind, ts, duration, local, remote, tags, *_ in expand(
        record
    ):
        out.append(
            Span(
                trace_id,
                span_id,
                name,
                parent_id,
                kind,
                ts,
                duration,
                Endpoint(*local),
                None if remote is None else Endpoint(*remote),
                tags,
            )
        )
    return out


Row = tuple[Any, ...]
"""A ``spans`` table row (``span_writer``): trace id, span id, parent id, kind, name (lower
case), service, remote service (lower case), ts, duration, error, shared, Zipkin JSON."""


def rows_of(record: GatewayRecord) -> tuple[list[Row], list[Row]]:
    """The ``spans`` rows of a gateway record (CLIENT spans first) and the provisional
    ``calls`` rows of its CLIENT spans (``c:<id>``, see :mod:`.dependencies`): what the span
    writer stores for the record's spans when their trace has no other spans (the writer's
    fast path; the same rows its general path makes of :func:`expand`, JSON included, without
    building the tuples and tag dicts). ``route_name`` must be a str when ``route_path`` is."""
    (
        _,
        trace_id,
        span_id,
        parent_id,
        service,
        start_ns,
        duration_ns,
        method,
        raw,
        query,
        route_path,
        route_name,
        stage,
        status,
        error,
        correlation_id,
        clients,
    ) = record
    local_json = endpoint_json((service, None, None, None))
    service_lc = (service or "unknown").lower()
    rows: list[Row] = []
    calls: list[Row] = []
    if clients:
        head = f'{{"traceId":"{trace_id}","parentId":"{span_id}","id":"'
        for client in clients:
            row = _client_row(client, head, trace_id, span_id, local_json, service_lc)
            rows.append(row)
            remote = row[6]
            if remote and remote != service_lc:
                calls.append((trace_id, "c:" + row[1], row[7], service_lc, remote, row[9]))
    target = (raw + b"?" + query if query and b"?" not in raw else raw).decode("latin-1")
    tags = (
        f'{{"http.method":{_quote(method)},"http.target":{_quote(target)},'
        f'"correlation.id":{_quote(correlation_id)}'
    )
    if route_path is not None:
        name = f"{method} {route_path}"
        tags += f',"http.route":{_quote(route_path)},"stackyard.route":{_quote(route_name)}'
        if stage:
            tags += ',"stackyard.stage":' + _quote(stage)
    else:
        name = method
    if status:
        tags += f',"http.status_code":"{status}"'
    failed = 1
    if error is not None:
        tags += ',"error":' + _quote(error)
    elif status >= 500:
        tags += f',"error":"{status}"'
    else:
        failed = 0
    ts = start_ns // 1000
    duration = max(1, duration_ns // 1000)
    body = (
        f'{{"traceId":"{trace_id}","parentId":"{parent_id}","id":"{span_id}"'
        if parent_id
        else f'{{"traceId":"{trace_id}","id":"{span_id}"'
    )
    body += ',"kind":"SERVER"'
    if name:
        body += ',"name":' + _quote(name)
    body += f',"timestamp":{ts},"duration":{duration},"localEndpoint":{local_json}'
    body += ',"tags":' + tags + "}}"
    rows.append(
        (
            trace_id,
            span_id,
            parent_id,
            "SERVER",
            name.lower(),
            service_lc,
            "",
            ts,
            duration,
            failed,
            0,
            body,
        )
    )
    return rows, calls


def _client_row(
    client: tuple[Any, ...],
    head: str,
    trace_id: str,
    parent_id: str,
    local_json: str,
    service: str,
) -> Row:
    span_id, name, start_ns, duration_ns = client[1:5]
    if client[0] == HTTP_TRY:
        remote, address, port, attempt, status, error = client[5:]
        ipv6 = ":" in address
        remote_json = endpoint_json(
            (remote, None if ipv6 else address, address if ipv6 else None, port)
        )
        tags = (
            f'{{"http.method":{_quote(name.partition(" ")[0])},'
            f'"peer.address":{_quote(f"{address}:{port}")},"retry.attempt":"{attempt}"'
        )
        if status is not None:
            tags += f',"http.status_code":"{status}"'
        failed = 1
        if error is not None:
            tags += ',"error":' + _quote(error)
        elif status is not None and status >= 500:
            tags += f',"error":"{status}"'
        else:
            failed = 0
    else:
        remote, status, error = client[5:]
        remote_json = endpoint_json((remote, None, None, None))
        tags = '{"faas.invoked_name":' + _quote(remote)
        if status:
            tags += f',"http.status_code":"{status}"'
        failed = 1
        if error is not None:
            tags += ',"error":' + _quote(error)
        elif status >= 500:
            tags += f',"error":"{status}"'
        else:
            failed = 0
    ts = start_ns // 1000
    duration = max(1, duration_ns // 1000)
    body = f'{head}{span_id}","kind":"CLIENT"'
    if name:
        body += ',"name":' + _quote(name)
    body += (
        f',"timestamp":{ts},"duration":{duration},"localEndpoint":{local_json}'
        f',"remoteEndpoint":{remote_json},"tags":{tags}}}}}'
    )
    return (
        trace_id,
        span_id,
        parent_id,
        "CLIENT",
        name.lower(),
        service,
        (remote or "").lower(),
        ts,
        duration,
        failed,
        0,
        body,
    )
