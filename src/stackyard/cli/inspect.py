"""``stackyard status`` and ``stackyard logs``: read a running node through its control API."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .client import ControlClient, url_option

_HEALTH_STYLE = {"passing": "green", "warning": "yellow", "critical": "red"}


@click.command()
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw status document.")
def status(url: str, as_json: bool) -> None:
    """Services, instances, health and routes of the running node."""
    doc = ControlClient(url).get_json("/_stackyard/status")
    console = Console()
    if as_json:
        console.print_json(data=doc)
        return
    state = "[green]ready[/]" if doc["ready"] else "[yellow]starting[/]"
    console.print(f"[bold]{doc['stack']}[/] (stage {doc['stage']}) — {state}")
    console.print(f"gateway {doc['urls']['gateway']}   control {doc['urls']['control']}")
    instances = Table("service", "instance", "health", "state", "pid", "port", "restarts", "up")
    now = time.time()
    for service in doc["services"]:
        for item in service["instances"]:
            health = item.get("health", "critical")
            started = item.get("started_at")
            instances.add_row(
                service["name"],
                item["instance_id"],
                Text(health, style=_HEALTH_STYLE.get(health, "")),
                str(item.get("state", "")),
                str(item.get("pid") or "-"),
                str(item.get("port") or "-"),
                str(item.get("restarts", 0)),
                _ago(now - started) if started else "-",
            )
    if doc["services"]:
        console.print(instances)
    if doc.get("functions"):
        functions = Table("function", "workers", "busy", "idle", "queued", "timeout", "memory")
        for fn in doc["functions"]:
            functions.add_row(
                fn["name"],
                f"{fn['workers']}/{fn['concurrency']}",
                str(fn["busy"]),
                str(fn["idle"]),
                str(fn["queued"]),
                f"{fn['timeout']:g}s",
                f"{fn['memory_mb']} MB",
            )
        console.print(functions)
    routes = Table("route", "methods", "target", "endpoints")
    for route in doc["routes"]:
        integration = route.get("integration")
        proxy = integration not in ("function", "bucket", "mock")
        routes.add_row(
            route["path"],
            ",".join(route["methods"]),
            route["service"] if proxy else f"{integration} {route.get('target') or ''}".rstrip(),
            str(route["endpoints"]) if proxy else "-",
        )
    console.print(routes)
    if doc.get("tables"):
        tables = Table("table", "keys", "indexes")
        for item in doc["tables"]:
            keys = item["hash_key"] + (f", {item['range_key']}" if item.get("range_key") else "")
            tables.add_row(item["name"], keys, ", ".join(item["indexes"]) or "-")
        console.print(tables)
    if doc.get("buckets"):
        buckets = Table("bucket", "region")
        for item in doc["buckets"]:
            buckets.add_row(item["name"], item["region"])
        console.print(buckets)
    resources = Table("cache / database", "engine", "state", "url")
    for kind in ("caches", "databases"):
        for item in doc.get(kind, []):
            style = {"running": "green", "external": ""}.get(item["state"], "red")
            shown = Text(item["state"], style=style)
            resources.add_row(item["name"], item["engine"], shown, item["url"])
    if resources.row_count:
        console.print(resources)


@click.command()
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--tail", default=100, show_default=True, help="Lines to show first.")
@click.option("--grep", help="Full-text search (every word must match; word* for a prefix).")
@click.option("--since", help="Only newer lines: 15m, 2h, 1d, or an ISO 8601 time.")
@click.option("--level", help="This level and above (debug, info, warning, error).")
@click.option("--trace", "trace_id", help="Only lines of this trace id.")
@click.option("--correlation", "correlation_id", help="Only lines of this correlation id.")
@url_option
def logs(
    service: str | None,
    follow: bool,
    tail: int,
    grep: str | None,
    since: str | None,
    level: str | None,
    trace_id: str | None,
    correlation_id: str | None,
    url: str,
) -> None:
    """What the services and functions printed (all of them, or SERVICE)."""
    client = ControlClient(url)
    params = {"service": service or "", "tail": str(tail)}
    console = Console(highlight=False)
    if any((grep, since, level, trace_id, correlation_id)):
        if follow:
            raise click.UsageError("-f cannot be combined with search filters")
        found = client.get_json(
            "/_stackyard/logs/search",
            q=grep or "",
            service=service or "",
            since=since or "",
            level=level or "",
            trace_id=trace_id or "",
            correlation_id=correlation_id or "",
            limit=str(max(1, min(tail, 1000))),
        )
        for record in reversed(found):  # newest first from the API
            _print_record(console, record)
        return
    if follow:
        try:
            for record in client.stream_ndjson("/_stackyard/logs", follow="1", **params):
                _print_record(console, record)
        except KeyboardInterrupt:
            pass
        return
    for record in client.get_json("/_stackyard/logs", **params):
        _print_record(console, record)


def _print_record(console: Console, record: dict[str, Any]) -> None:
    line = Text()
    line.append(str(record.get("time", ""))[11:23], style="dim")
    line.append(" ")
    line.append(str(record.get("instance", record.get("service", ""))), style="cyan")
    line.append(" | " if record.get("stream") != "stderr" else " ! ", style="dim")
    line.append(str(record.get("message", "")))
    console.print(line, soft_wrap=True)


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
