"""OTLP/HTTP trace decoding (protobuf and JSON) into the span model, and OTLP value helpers.

JSON follows the OTLP/JSON mapping: lowerCamelCase keys, ids as hex (base64 accepted too, as
older senders use it), 64-bit integers as decimal strings or numbers, enums as integers or
their names, unknown fields ignored; ``instrumentationLibrarySpans`` (pre-1.0) is read like
``scopeSpans``. Mapping to Zipkin semantics (as the OpenTelemetry Zipkin exporter does):

- resource ``service.name`` → ``localEndpoint.serviceName`` (``unknown_service`` when absent);
- kind 2/3/4/5 → SERVER/CLIENT/PRODUCER/CONSUMER, 0/1 (unspecified/internal) → no kind;
- times in ns → ``timestamp``/``duration`` in µs;
- attributes → tags (non-strings JSON-encoded); ``peer.service`` (and for CLIENT/PRODUCER
  spans ``server.address``/``net.peer.name``) → ``remoteEndpoint.serviceName``;
- status ERROR → tags ``otel.status_code=ERROR`` and ``error=<message or "true">``;
- events → annotations (value = event name); scope → ``otel.scope.name``/``otel.scope.version``.

A malformed body raises :class:`InvalidPayload`; a malformed span (bad id, bad time) is
rejected alone and counted in the result.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .errors import InvalidPayload
from .model import Endpoint, Span, decode_id

_KINDS: dict[int, str | None] = {
    0: None,
    1: None,
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_REMOTE_KEYS = ("server.address", "net.peer.name")
_MAX_ERRORS = 5
_U64 = 1 << 64


@dataclass
class Rejections:
    """The items of an export request that were rejected (count + the first reasons)."""

    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message)

    @property
    def error_message(self) -> str:
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f" (and {more} more)" if more > 0 else "")


@dataclass
class DecodeResult(Rejections):
    """What a trace export request decoded to: the good spans and the rejected ones."""

    spans: list[Span] = field(default_factory=list)


def export_response(
    result: Rejections,
    as_json: bool,
    response: Any,
    rejected_field: str,
    message: str | None = None,
) -> bytes:
    """An ``Export*ServiceResponse`` body in the request's encoding: empty, or with
    ``partialSuccess`` naming the count in ``rejected_field`` (e.g. ``rejected_spans``)."""
    message = result.error_message if message is None else message
    if as_json:
        if not result.rejected:
            return b"{}"
        head, *rest = rejected_field.split("_")
        name = head + "".join(part.title() for part in rest)
        partial = {name: str(result.rejected), "errorMessage": message}
        return json.dumps({"partialSuccess": partial}).encode()
    if result.rejected:
        setattr(response.partial_success, rejected_field, result.rejected)
        response.partial_success.error_message = message
    return bytes(response.SerializeToString())


# -- value helpers (shared with the log decoder) -----------------------------------------------


def to_int(value: Any, what: str) -> int:
    """An OTLP 64-bit integer (JSON number or decimal string)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{what} must be an integer")


def enum_value(value: Any, names: dict[str, int], what: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return to_int(value, what)


def json_any(value: Any) -> Any:
    """An OTLP/JSON ``AnyValue`` object → a plain Python value."""
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return to_int(value["intValue"], "intValue")
    if "doubleValue" in value:
        raw = value["doubleValue"]
        return float(raw) if isinstance(raw, int | float | str) else None
    if "arrayValue" in value:
        items = (value["arrayValue"] or {}).get("values") or []
        return [json_any(v) for v in items] if isinstance(items, list) else None
    if "kvlistValue" in value:
        return json_attributes((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return str(value["bytesValue"])
    return None


def json_attributes(items: Any) -> dict[str, Any]:
    if not items:
        return {}
    if not isinstance(items, list):
        raise ValueError("attributes must be a list")
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = json_any(item.get("value"))
    return out


def pb_any(value: AnyValue) -> Any:
    """A protobuf ``AnyValue`` → a plain Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [pb_any(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return pb_attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)


def pb_attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {item.key: pb_any(item.value) for item in items}


def tag_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def service_of(resource: dict[str, Any]) -> str:
    name = resource.get("service.name")
    return str(name) if isinstance(name, str) and name else "unknown_service"


# -- spans -------------------------------------------------------------------------------------


def _build(
    *,
    trace_id: Any,
    span_id: Any,
    parent_id: Any,
    name: str,
    kind: int,
    start: int,
    end: int,
    attributes: dict[str, Any],
    events: list[tuple[int, str]],
    status_code: int,
    status_message: str,
    service: str,
    scope: tuple[str, str],
) -> Span:
    trace = decode_id(trace_id, 16)
    span = decode_id(span_id, 8)
    if trace is None or span is None:
        raise ValueError("traceId and spanId are required")
    if kind not in _KINDS:
        raise ValueError(f"invalid kind {kind}")
    zkind = _KINDS[kind]
    tags = {key: tag_text(value) for key, value in attributes.items() if value is not None}
    remote = tags.get("peer.service")
    if remote is None and zkind in ("CLIENT", "PRODUCER"):
        remote = next((tags[k] for k in _REMOTE_KEYS if k in tags), None)
    if scope[0]:
        tags["otel.scope.name"] = scope[0]
        if scope[1]:
            tags["otel.scope.version"] = scope[1]
    if status_code == 2:
        tags["otel.status_code"] = "ERROR"
        tags["error"] = status_message or "true"
    elif status_code == 1:
        tags["otel.status_code"] = "OK"
    if not (0 <= start < _U64 and 0 <= end < _U64) or any(not 0 <= t < _U64 for t, _ in events):
        raise ValueError("time out of range")
    return Span(
        trace_id=trace,
        span_id=span,
        parent_id=decode_id(parent_id, 8),
        name=name,
        kind=zkind,
        timestamp=start // 1000 if start else None,
        duration=max(1, (end - start) // 1000) if start and end >= start else None,
        local_endpoint=Endpoint(service_name=service.lower()),
        remote_endpoint=Endpoint(service_name=remote.lower()) if remote else None,
        tags=tags,
        annotations=[(t // 1000, n) for t, n in events],
    )


def decode_traces_json(body: bytes) -> DecodeResult:
    """An OTLP/JSON ``ExportTraceServiceRequest`` → spans (+ rejected count)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"malformed JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidPayload("expected a JSON object (ExportTraceServiceRequest)")
    result = DecodeResult()
    for resource_spans in json_list(doc.get("resourceSpans"), "resourceSpans"):
        resource = json_object(resource_spans, "resourceSpans[]")
        try:
            attrs = json_attributes(
                json_object(resource.get("resource"), "resource").get("attributes")
            )
        except ValueError as exc:
            raise InvalidPayload(f"resource: {exc}") from exc
        service = service_of(attrs)
        scopes = resource.get("scopeSpans") or resource.get("instrumentationLibrarySpans")
        for scope_spans in json_list(scopes, "scopeSpans"):
            scope_obj = json_object(scope_spans, "scopeSpans[]")
            scope_info = json_object(
                scope_obj.get("scope") or scope_obj.get("instrumentationLibrary"), "scope"
            )
            scope = (str(scope_info.get("name") or ""), str(scope_info.get("version") or ""))
            for index, item in enumerate(json_list(scope_obj.get("spans"), "spans")):
                try:
                    result.spans.append(_json_span(item, service, scope))
                except (ValueError, TypeError, AttributeError) as exc:
                    result.reject(f"span {index}: {exc}")
    return result


def _json_span(item: Any, service: str, scope: tuple[str, str]) -> Span:
    if not isinstance(item, dict):
        raise ValueError("a span must be a JSON object")
    status = item.get("status") or {}
    if not isinstance(status, dict):
        raise ValueError("status must be an object")
    events = []
    for event in item.get("events") or []:
        if not isinstance(event, dict):
            raise ValueError("an event must be an object")
        events.append(
            (to_int(event.get("timeUnixNano", 0), "timeUnixNano"), str(event.get("name", "")))
        )
    name = item.get("name", "")
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    return _build(
        trace_id=item.get("traceId"),
        span_id=item.get("spanId"),
        parent_id=item.get("parentSpanId"),
        name=name,
        kind=enum_value(item.get("kind", 0), _KIND_NAMES, "kind"),
        start=to_int(item.get("startTimeUnixNano", 0), "startTimeUnixNano"),
        end=to_int(item.get("endTimeUnixNano", 0), "endTimeUnixNano"),
        attributes=json_attributes(item.get("attributes")),
        events=events,
        status_code=enum_value(status.get("code", 0), _STATUS_NAMES, "status.code"),
        status_message=str(status.get("message") or ""),
        service=service,
        scope=scope,
    )


def decode_traces_protobuf(body: bytes) -> DecodeResult:
    """An OTLP protobuf ``ExportTraceServiceRequest`` → spans (+ rejected count)."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidPayload(f"malformed protobuf: {exc}") from exc
    result = DecodeResult()
    for resource_spans in request.resource_spans:
        service = service_of(pb_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope = (scope_spans.scope.name, scope_spans.scope.version)
            for index, pb in enumerate(scope_spans.spans):
                try:
                    result.spans.append(
                        _build(
                            trace_id=pb.trace_id,
                            span_id=pb.span_id,
                            parent_id=pb.parent_span_id,
                            name=pb.name,
                            kind=pb.kind,
                            start=pb.start_time_unix_nano,
                            end=pb.end_time_unix_nano,
                            attributes=pb_attributes(pb.attributes),
                            events=[(e.time_unix_nano, e.name) for e in pb.events],
                            status_code=pb.status.code,
                            status_message=pb.status.message,
                            service=service,
                            scope=scope,
                        )
                    )
                except ValueError as exc:
                    result.reject(f"span {index}: {exc}")
    return result


def traces_response(result: DecodeResult, as_json: bool) -> bytes:
    """The ``ExportTraceServiceResponse`` body (empty, or with ``partialSuccess``)."""
    return export_response(result, as_json, ExportTraceServiceResponse(), "rejected_spans")


def json_list(value: Any, what: str) -> list[Any]:
    """An OTLP JSON array member (absent = empty); ``InvalidPayload`` for anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPayload(f"{what} must be a list")
    return value


def json_object(value: Any, what: str) -> dict[str, Any]:
    """An OTLP JSON object member (absent = empty); ``InvalidPayload`` for anything else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidPayload(f"{what} must be an object")
    return value
