"""Zipkin v2 JSON decoding: a ``POST /api/v2/spans`` body → validated :class:`Span` objects.

Follows openzipkin/zipkin-api: ``traceId`` 16 or 32 hex digits, ``id``/``parentId`` 16 hex
(case-insensitive, stored lowercase; all-zero ids are invalid), ``timestamp`` and ``duration``
non-negative integers in microseconds, ``kind`` one of CLIENT/SERVER/PRODUCER/CONSUMER,
endpoints ``{serviceName, ipv4, ipv6, port}``, ``annotations`` ``[{timestamp, value}]``, ``tags``
string → string (numbers and booleans are accepted and stringified), ``debug``, ``shared``. Span
names and service names are lowercased, as Zipkin does. Like Zipkin, one malformed span rejects
the whole request (:class:`InvalidPayload`).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidPayload
from .model import KINDS, Endpoint, Span, valid_span_id, valid_trace_id

MAX_SPANS = 100_000


def decode_spans(body: bytes) -> list[Span]:
    """Parse a Zipkin v2 JSON list; raises :class:`InvalidPayload` when anything is malformed."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"malformed JSON: {exc}") from exc
    if not isinstance(value, list):
        raise InvalidPayload("expected a JSON list of spans")
    if len(value) > MAX_SPANS:
        raise InvalidPayload(f"more than {MAX_SPANS} spans in one request")
    spans = []
    for index, item in enumerate(value):
        try:
            spans.append(_span(item))
        except (ValueError, TypeError) as exc:
            raise InvalidPayload(f"span {index}: {exc}") from exc
    return spans


def _span(item: Any) -> Span:
    if not isinstance(item, dict):
        raise ValueError("a span must be a JSON object")
    trace_id = _text(item.get("traceId"), "traceId").lower()
    if not valid_trace_id(trace_id):
        raise ValueError(f"invalid traceId {trace_id!r}")
    span_id = _text(item.get("id"), "id").lower()
    if not valid_span_id(span_id):
        raise ValueError(f"invalid id {span_id!r}")
    parent = item.get("parentId")
    parent_id = None
    if parent is not None and parent != "":
        parent_id = _text(parent, "parentId").lower()
        if not valid_span_id(parent_id):
            raise ValueError(f"invalid parentId {parent_id!r}")
    kind = item.get("kind")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"invalid kind {kind!r}")
    name = item.get("name")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=_text(name, "name").lower() if name is not None else "",
        kind=kind,
        timestamp=_micros(item.get("timestamp"), "timestamp"),
        duration=_micros(item.get("duration"), "duration"),
        local_endpoint=_endpoint(item.get("localEndpoint")),
        remote_endpoint=_endpoint(item.get("remoteEndpoint")),
        tags=_tags(item.get("tags")),
        annotations=_annotations(item.get("annotations")),
        debug=_flag(item.get("debug"), "debug"),
        shared=_flag(item.get("shared"), "shared"),
    )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value


def _micros(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number of microseconds")
    if value < 0 or value >= 2**63 or value != value:
        raise ValueError(f"{what} out of range")
    return int(value)


def _flag(value: Any, what: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be a boolean")
    return value


def _endpoint(value: Any) -> Endpoint | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("an endpoint must be a JSON object")
    service = value.get("serviceName")
    port = value.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
    ):
        raise ValueError("endpoint port must be an integer 0-65535")
    ipv4, ipv6 = value.get("ipv4"), value.get("ipv6")
    return Endpoint(
        service_name=_text(service, "serviceName").lower() if service is not None else None,
        ipv4=_text(ipv4, "ipv4") if ipv4 is not None else None,
        ipv6=_text(ipv6, "ipv6") if ipv6 is not None else None,
        port=port,
    )


def _tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("tags must be a JSON object")
    tags = {}
    for key, tag in value.items():
        if isinstance(tag, str):
            tags[key] = tag
        elif isinstance(tag, bool):
            tags[key] = "true" if tag else "false"
        elif isinstance(tag, int | float):
            tags[key] = json.dumps(tag)
        else:
            raise ValueError(f"tag {key!r} must be a string")
    return tags


def _annotations(value: Any) -> list[tuple[int, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("annotations must be a list")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError("an annotation must be a JSON object")
        ts = _micros(item.get("timestamp"), "annotation timestamp")
        if ts is None:
            raise ValueError("an annotation needs a timestamp")
        out.append((ts, _text(item.get("value"), "annotation value")))
    return out
