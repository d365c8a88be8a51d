"""The overview's map of the stack: boxes in columns and the calls between them.

Columns, left to right: callers (the gateway and anything else that calls in), services and
functions, then the stack's data (tables, buckets, caches, databases). Edges are the dependency
links of the traces (calls and errors over the last minutes), plus what the stack declares
(a route's target, a service's ``uses``, a function's stream). :func:`build_map` is pure: it
takes the node's status document, the dependency links and the alarm states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import StackConfig

BOX_W, BOX_H, GAP_Y, COL_GAP, PAD = 200, 54, 18, 130, 20


@dataclass
class Box:
    id: str
    name: str
    kind: str  # gateway, service, function, table, bucket, cache, database, external
    state: str = ""  # passing, warning, critical, alarm or ""
    detail: str = ""
    href: str = ""
    x: int = 0
    y: int = 0


@dataclass
class Edge:
    source: str
    target: str
    calls: int = 0
    errors: int = 0
    label: str = ""
    path: str = ""
    label_x: int = 0
    label_y: int = 0


@dataclass
class StackMap:
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0


def declared_edges(config: StackConfig) -> list[tuple[str, str]]:
    """(source, target) box ids of what the stack declares besides routes: a service's or
    function's ``uses`` (a cache or database), a table's stream and a bucket's notifications
    feeding a function."""
    edges: list[tuple[str, str]] = []
    uses = [(name, svc.uses) for name, svc in config.services.items()]
    uses += [(name, fn.uses) for name, fn in config.functions.items()]
    for name, used in uses:
        for resource in used:
            kind = "cache" if resource in config.caches else "database"
            edges.append((name, f"{kind}:{resource}"))
    for name, function in config.functions.items():
        for event in function.events:
            if event.stream is not None:
                edges.append((f"table:{event.stream.table}", name))
            if event.s3 is not None:
                edges.append((f"bucket:{event.s3.bucket}", name))
    return edges


def build_map(
    status: Mapping[str, Any],
    links: Sequence[Mapping[str, Any]],
    alarms: Sequence[Mapping[str, Any]],
    window_s: float,
    gateway_name: str = "gateway",
    declared: Sequence[tuple[str, str]] = (),
) -> StackMap:
    alarmed = _alarmed_names(alarms)
    boxes: dict[str, Box] = {}

    def add(box: Box) -> None:
        boxes.setdefault(box.id, box)

    add(
        Box(
            gateway_name,
            gateway_name,
            "gateway",
            detail=f"{len(status['routes'])} routes",
            href="/api",
        )
    )
    for svc in status["services"]:
        state = (
            "passing"
            if svc["passing"] >= svc["replicas"]
            else ("warning" if svc["passing"] else "critical")
        )
        add(
            Box(
                svc["name"],
                svc["name"],
                "service",
                state,
                f"{svc['passing']}/{svc['replicas']} passing",
                f"/services/{svc['name']}",
            )
        )
    for fn in status["functions"]:
        add(
            Box(
                fn["name"],
                fn["name"],
                "function",
                "",
                f"{fn.get('busy', 0)} busy · {fn.get('idle', 0)} warm",
                f"/functions/{fn['name']}",
            )
        )
    for kind, key in (("table", "tables"), ("bucket", "buckets")):
        for item in status.get(key, ()):
            name = item["name"]
            add(Box(f"{kind}:{name}", name, kind, href=f"/data#{kind}-{name}"))
    for kind, key in (("cache", "caches"), ("database", "databases")):
        for item in status.get(key, ()):
            add(Box(f"{kind}:{item['name']}", item["name"], kind, detail=item.get("engine", "")))
    for box in boxes.values():
        if box.name in alarmed:
            box.state = "alarm"

    edges: dict[tuple[str, str], Edge] = {}
    for route in status["routes"]:
        target = route.get("target")
        if target in boxes:
            edges.setdefault((gateway_name, target), Edge(gateway_name, target))
    for source, target in declared:
        if source in boxes and target in boxes:
            edges.setdefault((source, target), Edge(source, target))
    for link in links:
        parent, child = str(link["parent"]), str(link["child"])
        for name in (parent, child):
            add(Box(name, name, "external"))
        edge = edges.setdefault((parent, child), Edge(parent, child))
        edge.calls += int(link.get("callCount", 0))
        edge.errors += int(link.get("errorCount", 0))
    for edge in edges.values():
        if edge.calls:
            rate = edge.calls / window_s if window_s > 0 else 0.0
            share = 100.0 * edge.errors / edge.calls
            edge.label = f"{_rate(rate)} req/s · {share:.1f}% err"
    _layout(list(boxes.values()), list(edges.values()))
    result = StackMap(list(boxes.values()), list(edges.values()))
    result.width = max((b.x + BOX_W for b in result.boxes), default=0) + PAD
    result.height = max((b.y + BOX_H for b in result.boxes), default=0) + PAD
    return result


def _alarmed_names(alarms: Sequence[Mapping[str, Any]]) -> set[str]:
    names: set[str] = set()
    for alarm in alarms:
        if alarm.get("state") == "ALARM":
            names.update(str(v) for v in (alarm.get("dimensions") or {}).values())
    return names


def _rate(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


_COLUMN = {
    "gateway": 0,
    "external": 0,
    "service": 1,
    "function": 1,
    "table": 2,
    "bucket": 2,
    "cache": 2,
    "database": 2,
}


def _layout(boxes: list[Box], edges: list[Edge]) -> None:
    callees = {edge.target for edge in edges}
    columns: dict[int, list[Box]] = {}
    for box in boxes:
        column = _COLUMN[box.kind]
        if box.kind == "external" and box.id in callees:
            column = 2  # something the stack calls out to
        columns.setdefault(column, []).append(box)
    for column, members in columns.items():
        for row, box in enumerate(members):
            box.x = PAD + column * (BOX_W + COL_GAP)
            box.y = PAD + row * (BOX_H + GAP_Y)
    where = {box.id: box for box in boxes}
    for edge in edges:
        a, b = where[edge.source], where[edge.target]
        x1, y1 = a.x + BOX_W, a.y + BOX_H // 2
        x2, y2 = b.x, b.y + BOX_H // 2
        if b.x <= a.x:  # same column or backwards: leave from the bottom, loop round
            x1, y1, x2 = a.x + BOX_W // 2, a.y + BOX_H, b.x + BOX_W // 2
            y2 = b.y if b.y > a.y else b.y + BOX_H
        bend = max(40, abs(x2 - x1) // 2)
        edge.path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
        edge.label_x, edge.label_y = x2 - 10, y2 - 6  # beside the arrow head
