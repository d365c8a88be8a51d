"""The overview map's layout from a loaded stack: declared edges, traced calls, states."""

from __future__ import annotations

from pathlib import Path

from stackyard.config import load_stack
from stackyard.console.stackmap import build_map, declared_edges

STACK = """\
name: mapped
services:
  api:
    command: python3 -m http.server $PORT
    uses: [sessions, main]
caches:
  sessions: {url: "redis://127.0.0.1:6379/0"}
databases:
  main: {url: "postgresql://127.0.0.1:5432/test"}
tables:
  orders: {hash_key: id, stream: new_image}
buckets:
  photos: {}
functions:
  audit:
    handler: audit.handle
    events:
      - stream: {table: orders}
  thumbs:
    handler: thumbs.handle
    events:
      - s3: photos
"""


def status_of(passing: int) -> dict[str, object]:
    return {
        "routes": [{"target": "api"}],
        "services": [{"name": "api", "replicas": 2, "passing": passing}],
        "functions": [{"name": "audit"}, {"name": "thumbs"}],
        "tables": [{"name": "orders"}],
        "buckets": [{"name": "photos"}],
        "caches": [{"name": "sessions", "engine": "redis"}],
        "databases": [{"name": "main", "engine": "postgres"}],
    }


def test_declared_edges_follow_uses_streams_and_bucket_events(tmp_path: Path) -> None:
    (tmp_path / "stackyard.yml").write_text(STACK)
    config = load_stack(tmp_path, {}, {}).config
    assert sorted(declared_edges(config)) == [
        ("api", "cache:sessions"),
        ("api", "database:main"),
        ("bucket:photos", "thumbs"),
        ("table:orders", "audit"),
    ]


def test_the_map_places_boxes_in_columns_and_labels_traced_calls(tmp_path: Path) -> None:
    (tmp_path / "stackyard.yml").write_text(STACK)
    declared = declared_edges(load_stack(tmp_path, {}, {}).config)
    links = [{"parent": "gateway", "child": "api", "callCount": 600, "errorCount": 6}]
    alarms = [{"state": "ALARM", "dimensions": {"function": "audit"}}]
    stack_map = build_map(status_of(1), links, alarms, 300, "gateway", declared)
    boxes = {box.id: box for box in stack_map.boxes}
    assert boxes["gateway"].x < boxes["api"].x < boxes["table:orders"].x
    assert boxes["api"].state == "warning"  # 1 of 2 passing
    assert boxes["audit"].state == "alarm"
    edges = {(edge.source, edge.target): edge for edge in stack_map.edges}
    assert edges["gateway", "api"].label == "2.00 req/s · 1.0% err"
    assert ("table:orders", "audit") in edges and ("api", "database:main") in edges
    assert stack_map.width >= boxes["table:orders"].x + 200


def test_a_caller_outside_the_stack_gets_a_box_of_its_own() -> None:
    links = [{"parent": "cron-job", "child": "api", "callCount": 3, "errorCount": 3}]
    stack_map = build_map(status_of(0), links, [], 60)
    boxes = {box.id: box for box in stack_map.boxes}
    assert boxes["cron-job"].kind == "external" and boxes["api"].state == "critical"
    (edge,) = [e for e in stack_map.edges if e.source == "cron-job"]
    assert edge.errors == 3 and edge.label.endswith("100.0% err")
