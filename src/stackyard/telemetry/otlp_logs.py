"""OTLP/HTTP log decoding (protobuf and JSON) into log rows.

Per record: time = ``timeUnixNano`` (else ``observedTimeUnixNano``, else now); level from
``severityNumber`` (else ``severityText``, else info); message = the body (a string body as is,
any other body JSON-encoded); ``fields`` = the record's attributes plus the body when it is a
map; ``traceId``/``spanId`` hex or base64; correlation id from the ``correlation_id``-style
attributes. Service = resource ``service.name``, instance = ``service.instance.id``, stream
``otlp``. A malformed record is rejected alone; a malformed body raises ``InvalidPayload``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from .errors import InvalidPayload
from .logs import CORRELATION_KEYS, LEVELS, LogRow, normalize_level
from .model import decode_id, now_us
from .otlp import (
    Rejections,
    enum_value,
    export_response,
    json_any,
    json_attributes,
    json_list,
    pb_any,
    pb_attributes,
    service_of,
    to_int,
)

_SEVERITY_NAMES = {f"SEVERITY_NUMBER_{n.upper()}": v for n, v in LEVELS.items()}


@dataclass
class LogsResult(Rejections):
    rows: list[LogRow] = field(default_factory=list)


def _row(
    *,
    service: str,
    instance: str,
    time_ns: int,
    observed_ns: int,
    severity: int,
    severity_text: str,
    body: Any,
    attributes: dict[str, Any],
    trace_id: Any,
    span_id: Any,
) -> LogRow:
    if not (0 <= time_ns < 1 << 64 and 0 <= observed_ns < 1 << 64):
        raise ValueError("time out of range")
    ts = (time_ns or observed_ns) // 1000 or now_us()
    level = normalize_level(severity) or normalize_level(severity_text) or "info"
    fields = dict(attributes)
    if isinstance(body, dict):
        fields.update(body)
    message = body if isinstance(body, str) else "" if body is None else _dumps(body)
    correlation = next((fields[k] for k in CORRELATION_KEYS if fields.get(k)), None)
    return LogRow(
        ts,
        service,
        instance,
        "otlp",
        level,
        LEVELS[level],
        message,
        _dumps(fields) if fields else "",
        decode_id(trace_id, 16),
        decode_id(span_id, 8),
        str(correlation)[:128] if correlation is not None else None,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def decode_logs_json(body: bytes) -> LogsResult:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"malformed JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidPayload("expected a JSON object (ExportLogsServiceRequest)")
    result = LogsResult()
    for resource_logs in json_list(doc.get("resourceLogs"), "resourceLogs"):
        if not isinstance(resource_logs, dict):
            raise InvalidPayload("resourceLogs[] must be an object")
        resource = resource_logs.get("resource") or {}
        try:
            attrs = json_attributes(
                resource.get("attributes") if isinstance(resource, dict) else None
            )
        except ValueError as exc:
            raise InvalidPayload(f"resource: {exc}") from exc
        service, instance = service_of(attrs), str(attrs.get("service.instance.id") or "")
        scopes = resource_logs.get("scopeLogs") or resource_logs.get("instrumentationLibraryLogs")
        for scope_logs in json_list(scopes, "scopeLogs"):
            if not isinstance(scope_logs, dict):
                raise InvalidPayload("scopeLogs[] must be an object")
            for index, item in enumerate(json_list(scope_logs.get("logRecords"), "logRecords")):
                try:
                    if not isinstance(item, dict):
                        raise ValueError("a log record must be an object")
                    result.rows.append(
                        _row(
                            service=service,
                            instance=instance,
                            time_ns=to_int(item.get("timeUnixNano", 0), "timeUnixNano"),
                            observed_ns=to_int(
                                item.get("observedTimeUnixNano", 0), "observedTimeUnixNano"
                            ),
                            severity=enum_value(
                                item.get("severityNumber", 0), _SEVERITY_NAMES, "severityNumber"
                            ),
                            severity_text=str(item.get("severityText") or ""),
                            body=json_any(item.get("body")),
                            attributes=json_attributes(item.get("attributes")),
                            trace_id=item.get("traceId"),
                            span_id=item.get("spanId"),
                        )
                    )
                except (ValueError, TypeError, AttributeError) as exc:
                    result.reject(f"log record {index}: {exc}")
    return result


def decode_logs_protobuf(body: bytes) -> LogsResult:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidPayload(f"malformed protobuf: {exc}") from exc
    result = LogsResult()
    for resource_logs in request.resource_logs:
        attrs = pb_attributes(resource_logs.resource.attributes)
        service, instance = service_of(attrs), str(attrs.get("service.instance.id") or "")
        for scope_logs in resource_logs.scope_logs:
            for index, pb in enumerate(scope_logs.log_records):
                try:
                    result.rows.append(
                        _row(
                            service=service,
                            instance=instance,
                            time_ns=pb.time_unix_nano,
                            observed_ns=pb.observed_time_unix_nano,
                            severity=pb.severity_number,
                            severity_text=pb.severity_text,
                            body=pb_any(pb.body) if pb.HasField("body") else None,
                            attributes=pb_attributes(pb.attributes),
                            trace_id=pb.trace_id,
                            span_id=pb.span_id,
                        )
                    )
                except ValueError as exc:
                    result.reject(f"log record {index}: {exc}")
    return result


def logs_response(result: LogsResult, as_json: bool) -> bytes:
    message = "; ".join(result.errors)
    return export_response(
        result, as_json, ExportLogsServiceResponse(), "rejected_log_records", message
    )
