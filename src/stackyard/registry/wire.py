"""Consul's JSON shapes: decoding agent registration bodies into models, and encoding models into
the answers of the catalog, health, agent and KV endpoints.

Decoding follows Consul (Go's JSON): field names match case-insensitively and snake_case is
accepted (``DeregisterCriticalServiceAfter`` = ``deregister_critical_service_after``);
unknown fields are ignored; durations are Go strings (``"10s"``) or integers of nanoseconds.
Errors are ``InvalidRegistration`` naming the field (``Checks[1].Interval``).

Default check IDs: ``service:<service id>``, or ``service:<service id>:<n>`` (n from 1) when the
registration carries several checks; default check name ``Service '<name>' check``.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..config.durations import format_duration, parse_duration
from .checks import MAX_DURATION
from .errors import InvalidRegistration
from .models import (
    CheckKind,
    CheckSpec,
    CheckState,
    Health,
    InstanceHealth,
    KVEntry,
    ServiceRegistration,
)

Json = dict[str, Any]
DEFAULT_CHECK_TIMEOUT = 10.0
_UNSUPPORTED = (
    "args",
    "script",
    "grpc",
    "dockercontainerid",
    "h2ping",
    "udp",
    "osservice",
    "aliasservice",
    "aliasnode",
)


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {_norm(str(k)): v for k, v in obj.items()}


def _str(f: dict[str, Any], key: str, label: str) -> str:
    value = f.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRegistration(f"{label} must be a string", label)
    return value


def _int(f: dict[str, Any], key: str, label: str) -> int:
    value = f.get(key)
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRegistration(f"{label} must be an integer", label)
    return value


def _duration(f: dict[str, Any], key: str, label: str) -> float | None:
    value = f.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRegistration(f'{label} must be a duration like "10s"', label)
    if isinstance(value, int | float):
        if value < 0:
            raise InvalidRegistration(f"{label} must not be negative", label)
        seconds = float(value) / 1e9  # Go: a bare number is nanoseconds
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise InvalidRegistration(f"{label}: {exc}", label) from exc
    else:
        raise InvalidRegistration(f'{label} must be a duration like "10s"', label)
    if not seconds <= MAX_DURATION:  # also catches inf and nan
        raise InvalidRegistration(f"{label} must not exceed {MAX_DURATION:g}s", label)
    return seconds


def _str_list(f: dict[str, Any], key: str, label: str) -> tuple[str, ...]:
    value = f.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRegistration(f"{label} must be a list of strings", label)
    return tuple(value)


def _str_map(f: dict[str, Any], key: str, label: str) -> dict[str, str]:
    value = f.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRegistration(f"{label} must be an object of strings", label)
    return {str(k): v for k, v in value.items()}


def _headers(f: dict[str, Any], label: str) -> tuple[tuple[str, str], ...]:
    value = f.get("header")
    if value is None:
        return ()
    out: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for name, values in value.items():
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidRegistration(f"{label} values must be lists of strings", label)
            out.extend((str(name), v) for v in values)
        return tuple(out)
    raise InvalidRegistration(f"{label} must be an object", label)


def decode_registration(body: object, *, default_address: str = "127.0.0.1") -> ServiceRegistration:
    """A ``PUT /v1/agent/service/register`` body → ``ServiceRegistration``."""
    if not isinstance(body, dict):
        raise InvalidRegistration("request body must be a JSON object", "body")
    f = _fields(body)
    name = _str(f, "name", "Name")
    if not name:
        raise InvalidRegistration("Name is required", "Name")
    service_id = _str(f, "id", "ID") or name
    address = _str(f, "address", "Address") or default_address
    port = _int(f, "port", "Port")
    if not 0 <= port <= 65535:
        raise InvalidRegistration(f"Port out of range: {port}", "Port")
    raw_checks: list[tuple[str, dict[str, Any]]] = []
    check = f.get("check")
    if check is not None:
        if not isinstance(check, dict):
            raise InvalidRegistration("Check must be an object", "Check")
        if check:
            raw_checks.append(("Check", check))
    checks = f.get("checks")
    if checks is not None:
        if not isinstance(checks, list):
            raise InvalidRegistration("Checks must be a list of objects", "Checks")
        for i, item in enumerate(checks):
            if not isinstance(item, dict):
                raise InvalidRegistration(f"Checks[{i}] must be an object", f"Checks[{i}]")
            raw_checks.append((f"Checks[{i}]", item))
    specs = tuple(
        decode_check(raw, label, service_id, name, i + 1, len(raw_checks))
        for i, (label, raw) in enumerate(raw_checks)
    )
    return ServiceRegistration(
        id=service_id,
        name=name,
        address=address,
        port=port,
        tags=_str_list(f, "tags", "Tags"),
        meta=_str_map(f, "meta", "Meta"),
        checks=specs,
    )


def decode_check(
    raw: dict[str, Any], label: str, service_id: str, service_name: str, position: int, total: int
) -> CheckSpec:
    f = _fields(raw)
    for key in _UNSUPPORTED:
        if f.get(key):
            raise InvalidRegistration(f"{label}: {key} checks are not supported", f"{label}.{key}")
    default_id = f"service:{service_id}" + (f":{position}" if total > 1 else "")
    check_id = _str(f, "checkid", f"{label}.CheckID") or _str(f, "id", f"{label}.ID") or default_id
    http = _str(f, "http", f"{label}.HTTP")
    tcp = _str(f, "tcp", f"{label}.TCP")
    ttl = _duration(f, "ttl", f"{label}.TTL")
    candidates: tuple[tuple[CheckKind, str, object], ...] = (
        ("http", http, http),
        ("tcp", tcp, tcp),
        ("ttl", "", ttl),
    )
    kinds = [(k, t) for k, t, v in candidates if v]
    if len(kinds) != 1:
        raise InvalidRegistration(f"{label} needs exactly one of HTTP, TCP or TTL", label)
    kind, target = kinds[0]
    interval = _duration(f, "interval", f"{label}.Interval")
    if kind != "ttl" and not interval:
        raise InvalidRegistration(
            f"{label}.Interval must be > 0 for HTTP and TCP checks", f"{label}.Interval"
        )
    status_text = _str(f, "status", f"{label}.Status") or Health.CRITICAL.value
    try:
        status = Health(status_text)
    except ValueError:
        raise InvalidRegistration(
            f"{label}.Status must be passing, warning or critical", f"{label}.Status"
        ) from None
    counts = {}
    for key, name in (
        ("successbeforepassing", "SuccessBeforePassing"),
        ("failuresbeforecritical", "FailuresBeforeCritical"),
    ):
        counts[key] = _int(f, key, f"{label}.{name}")
        if counts[key] < 0:
            raise InvalidRegistration(f"{label}.{name} must not be negative", f"{label}.{name}")
    method = _str(f, "method", f"{label}.Method").upper() or "GET"
    if not (method.isascii() and method.isalpha()):
        raise InvalidRegistration(f"{label}.Method is not an HTTP method", f"{label}.Method")
    return CheckSpec(
        check_id=check_id,
        kind=kind,
        name=_str(f, "name", f"{label}.Name") or f"Service '{service_name}' check",
        target=target,
        interval=interval or 10.0,
        timeout=_duration(f, "timeout", f"{label}.Timeout") or DEFAULT_CHECK_TIMEOUT,
        ttl=ttl,
        success_before_passing=counts["successbeforepassing"],
        failures_before_critical=counts["failuresbeforecritical"],
        deregister_after=_duration(
            f, "deregistercriticalserviceafter", f"{label}.DeregisterCriticalServiceAfter"
        ),
        initial_status=status,
        notes=_str(f, "notes", f"{label}.Notes"),
        method=method,
        headers=_headers(f, f"{label}.Header"),
    )


# -- encoding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    """The single node every instance lives on, as Consul answers show it."""

    name: str = "stackyard"
    datacenter: str = "dc1"
    address: str = "127.0.0.1"
    id: str = field(default="")

    @property
    def node_id(self) -> str:
        return self.id or str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.stackyard"))


def node_json(node: NodeInfo) -> Json:
    return {
        "ID": node.node_id,
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": {"lan": node.address, "wan": node.address},
        "Meta": {},
        "CreateIndex": 1,
        "ModifyIndex": 1,
    }


def service_json(h: InstanceHealth, node: NodeInfo) -> Json:
    reg = h.registration
    return {
        "ID": reg.id,
        "Service": reg.name,
        "Tags": list(reg.tags),
        "Address": reg.address,
        "Meta": dict(reg.meta),
        "Port": reg.port,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
        "Datacenter": node.datacenter,
        "CreateIndex": h.create_index,
        "ModifyIndex": h.modify_index,
    }


def check_json(state: CheckState, reg: ServiceRegistration, node: NodeInfo) -> Json:
    spec = state.spec
    definition: Json = {}
    if spec.kind == "http":
        definition = {"HTTP": spec.target, "Method": spec.method}
    elif spec.kind == "tcp":
        definition = {"TCP": spec.target}
    if spec.kind != "ttl":
        definition["Interval"] = format_duration(spec.interval)
        definition["Timeout"] = format_duration(spec.timeout)
    if spec.deregister_after is not None:
        definition["DeregisterCriticalServiceAfter"] = format_duration(spec.deregister_after)
    return {
        "Node": node.name,
        "CheckID": spec.check_id,
        "Name": spec.name,
        "Status": state.status.value,
        "Notes": spec.notes,
        "Output": state.output,
        "ServiceID": reg.id,
        "ServiceName": reg.name,
        "ServiceTags": list(reg.tags),
        "Type": spec.kind,
        "Interval": format_duration(spec.interval) if spec.kind != "ttl" else "",
        "Timeout": format_duration(spec.timeout) if spec.kind != "ttl" else "",
        "Definition": definition,
        "CreateIndex": state.modify_index,
        "ModifyIndex": state.modify_index,
    }


def node_check_json(node: NodeInfo) -> Json:
    """Consul's node-level ``serfHealth`` check, always passing on a single node."""
    return {
        "Node": node.name,
        "CheckID": "serfHealth",
        "Name": "Serf Health Status",
        "Status": "passing",
        "Notes": "",
        "Output": "Agent alive and reachable",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Definition": {},
        "CreateIndex": 1,
        "ModifyIndex": 1,
    }


def health_entry(h: InstanceHealth, node: NodeInfo) -> Json:
    checks = [node_check_json(node)]
    checks.extend(check_json(c, h.registration, node) for c in h.checks)
    return {"Node": node_json(node), "Service": service_json(h, node), "Checks": checks}


def catalog_entry(h: InstanceHealth, node: NodeInfo) -> Json:
    reg = h.registration
    return {
        "ID": node.node_id,
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": {"lan": node.address, "wan": node.address},
        "NodeMeta": {},
        "ServiceKind": "",
        "ServiceID": reg.id,
        "ServiceName": reg.name,
        "ServiceTags": list(reg.tags),
        "ServiceAddress": reg.address,
        "ServiceMeta": dict(reg.meta),
        "ServicePort": reg.port,
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceEnableTagOverride": False,
        "CreateIndex": h.create_index,
        "ModifyIndex": h.modify_index,
    }


def kv_json(entry: KVEntry) -> Json:
    out: Json = {
        "LockIndex": entry.lock_index,
        "Key": entry.key,
        "Flags": entry.flags,
        "Value": base64.b64encode(entry.value).decode("ascii") if entry.value else None,
        "CreateIndex": entry.create_index,
        "ModifyIndex": entry.modify_index,
    }
    if entry.session:
        out["Session"] = entry.session
    return out
