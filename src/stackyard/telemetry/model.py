"""The one span model every ingest path maps to (Zipkin v2 semantics), and id helpers.

A :class:`Span` is what OTLP, Zipkin and in-process producers (gateway, function runtime) all
become: ids are lowercase hex (trace 16 or 32 digits, span 16), ``timestamp`` and ``duration``
are microseconds, ``kind`` is one of ``CLIENT``/``SERVER``/``PRODUCER``/``CONSUMER`` or None,
``tags`` are string to string (an ``error`` tag marks a failed span) and ``annotations`` are
``(timestamp µs, value)`` pairs. :meth:`Span.to_zipkin` gives the Zipkin v2 JSON object the
query API returns.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = frozenset({"CLIENT", "SERVER", "PRODUCER", "CONSUMER"})
_HEX = frozenset("0123456789abcdef")
_quote = json.encoder.encode_basestring  # the C quoting function; non-ASCII kept as is
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(slots=True)
class Endpoint:
    """Zipkin endpoint: a service name and, optionally, its address."""

    service_name: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    port: int | None = None

    def to_zipkin(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.service_name:
            out["serviceName"] = self.service_name
        if self.ipv4:
            out["ipv4"] = self.ipv4
        if self.ipv6:
            out["ipv6"] = self.ipv6
        if self.port:
            out["port"] = self.port
        return out

    def to_json(self) -> str:
        """:meth:`to_zipkin` encoded as compact JSON (memoized by value: few endpoints exist)."""
        return endpoint_json((self.service_name, self.ipv4, self.ipv6, self.port))


EndpointKey = tuple[str | None, str | None, str | None, int | None]
_ENDPOINT_JSON: dict[EndpointKey, str] = {}


def endpoint_json(key: EndpointKey) -> str:
    """The Zipkin JSON of the endpoint ``(service_name, ipv4, ipv6, port)`` (memoized)."""
    text = _ENDPOINT_JSON.get(key)
    if text is None:
        if len(_ENDPOINT_JSON) >= 4096:
            _ENDPOINT_JSON.clear()
        text = _ENDPOINT_JSON[key] = _dumps(Endpoint(*key).to_zipkin())
    return text


@dataclass(slots=True)
class Span:
    """One span, already validated (use :func:`new_span` or the ingest decoders to build one)."""

    trace_id: str
    span_id: str
    name: str = ""
    parent_id: str | None = None
    kind: str | None = None
    timestamp: int | None = None
    duration: int | None = None
    local_endpoint: Endpoint | None = None
    remote_endpoint: Endpoint | None = None
    tags: dict[str, str] = field(default_factory=dict)
    annotations: list[tuple[int, str]] = field(default_factory=list)
    debug: bool = False
    shared: bool = False

    @property
    def service(self) -> str:
        """The local service name, lowercased (``unknown`` when absent)."""
        name = self.local_endpoint.service_name if self.local_endpoint else None
        return (name or "unknown").lower()

    @property
    def remote_service(self) -> str:
        name = self.remote_endpoint.service_name if self.remote_endpoint else None
        return (name or "").lower()

    @property
    def error(self) -> bool:
        return "error" in self.tags

    def to_zipkin(self) -> dict[str, Any]:
        """The Zipkin v2 JSON object of this span."""
        out: dict[str, Any] = {"traceId": self.trace_id}
        if self.parent_id:
            out["parentId"] = self.parent_id
        out["id"] = self.span_id
        if self.kind:
            out["kind"] = self.kind
        if self.name:
            out["name"] = self.name
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        if self.duration is not None:
            out["duration"] = self.duration
        if self.local_endpoint is not None:
            out["localEndpoint"] = self.local_endpoint.to_zipkin()
        if self.remote_endpoint is not None:
            out["remoteEndpoint"] = self.remote_endpoint.to_zipkin()
        if self.annotations:
            out["annotations"] = [{"timestamp": t, "value": v} for t, v in self.annotations]
        if self.tags:
            out["tags"] = self.tags
        if self.debug:
            out["debug"] = True
        if self.shared:
            out["shared"] = True
        return out

    def to_json(self) -> str:
        """:meth:`to_zipkin` encoded as compact JSON (same keys, same order), built directly
        from the fields (:func:`zipkin_json`)."""
        local, remote = self.local_endpoint, self.remote_endpoint
        return zipkin_json(
            self.trace_id,
            self.span_id,
            self.name,
            self.parent_id,
            self.kind,
            self.timestamp,
            self.duration,
            None if local is None else local.to_json(),
            None if remote is None else remote.to_json(),
            self.tags,
            self.annotations,
            self.debug,
            self.shared,
        )


def zipkin_json(
    trace_id: str,
    span_id: str,
    name: str,
    parent_id: str | None,
    kind: str | None,
    timestamp: int | None,
    duration: int | None,
    local_json: str | None,
    remote_json: str | None,
    tags: dict[str, str],
    annotations: list[tuple[int, str]],
    debug: bool,
    shared: bool,
) -> str:
    """A span's Zipkin v2 JSON from its fields (endpoints already encoded): what
    :meth:`Span.to_json` returns and the span store's writer stores, without a :class:`Span`."""
    text = (
        f'{{"traceId":"{trace_id}","parentId":"{parent_id}","id":"{span_id}"'
        if parent_id
        else f'{{"traceId":"{trace_id}","id":"{span_id}"'
    )
    if kind:
        text += f',"kind":"{kind}"'
    if name:
        text += ',"name":' + _quote(name)
    if timestamp is not None:
        text += f',"timestamp":{timestamp}'
    if duration is not None:
        text += f',"duration":{duration}'
    if local_json is not None:
        text += ',"localEndpoint":' + local_json
    if remote_json is not None:
        text += ',"remoteEndpoint":' + remote_json
    if annotations:
        notes = [{"timestamp": t, "value": v} for t, v in annotations]
        text += ',"annotations":' + _dumps(notes)
    if tags:
        text += ',"tags":' + _tags_json(tags)
    if debug:
        text += ',"debug":true'
    if shared:
        text += ',"shared":true'
    return text + "}"


def _tags_json(tags: dict[str, str]) -> str:
    try:
        return "{" + ",".join([_quote(k) + ":" + _quote(v) for k, v in tags.items()]) + "}"
    except TypeError:  # not string to string after all
        return _dumps(tags)


def now_us() -> int:
    return time.time_ns() // 1000


def is_hex(text: str) -> bool:
    return bool(text) and set(text) <= _HEX


def valid_trace_id(value: str) -> bool:
    """16 or 32 lowercase hex digits, not all zero."""
    return len(value) in (16, 32) and is_hex(value) and value.strip("0") != ""


def valid_span_id(value: str) -> bool:
    return len(value) == 16 and is_hex(value) and value.strip("0") != ""


def decode_id(value: object, size: int) -> str | None:
    """An OTLP id given as hex (``2*size`` digits) or base64 (``size`` bytes) → lowercase hex.

    Returns None for an empty/absent id; raises ``ValueError`` when it is malformed or all zero.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        text = value.lower()
        if len(text) == 2 * size and is_hex(text):
            if text.strip("0") == "":
                raise ValueError("all-zero id")
            return text
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"malformed id {value!r}") from exc
    else:
        raise ValueError(f"malformed id {value!r}")
    if not raw:
        return None
    if len(raw) != size:
        raise ValueError(f"id must be {size} bytes, got {len(raw)}")
    if raw.count(0) == size:
        raise ValueError("all-zero id")
    return raw.hex()


def new_span(
    trace_id: str,
    span_id: str,
    name: str,
    *,
    service: str,
    parent_id: str | None = None,
    kind: str | None = None,
    timestamp: int | None = None,
    duration: int | None = None,
    remote_service: str | None = None,
    tags: dict[str, str] | None = None,
) -> Span:
    """A validated span for in-process producers (gateway, function runtime).

    Raises ``ValueError`` for malformed ids or an unknown kind.
    """
    trace_id, span_id = trace_id.lower(), span_id.lower()
    if not valid_trace_id(trace_id):
        raise ValueError(f"invalid trace id {trace_id!r}")
    if not valid_span_id(span_id):
        raise ValueError(f"invalid span id {span_id!r}")
    if parent_id is not None and not valid_span_id(parent_id.lower()):
        raise ValueError(f"invalid parent id {parent_id!r}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"invalid kind {kind!r}")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        parent_id=parent_id.lower() if parent_id else None,
        kind=kind,
        timestamp=timestamp if timestamp is not None else now_us(),
        duration=duration,
        local_endpoint=Endpoint(service_name=service),
        remote_endpoint=Endpoint(service_name=remote_service) if remote_service else None,
        tags=dict(tags or {}),
    )
