"""``stackyard traces`` (recent traces) and ``stackyard trace ID`` (a waterfall), read through
the node's Zipkin v2 query API."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .client import ControlClient, url_option

BAR_WIDTH = 30


@click.command()
@click.option("--service", help="Only traces with a span of this service.")
@click.option("--min-duration", type=float, help="Only traces at least this long (ms).")
@click.option("--limit", default=20, show_default=True, help="How many traces.")
@click.option("--lookback", default="1h", show_default=True, help="How far back: 15m, 2h, 1d.")
@url_option
def traces(
    service: str | None, min_duration: float | None, limit: int, lookback: str, url: str
) -> None:
    """Recent traces, newest first."""
    params = {
        "serviceName": service or "",
        "minDuration": str(int(min_duration * 1000)) if min_duration else "",
        "limit": str(limit),
        "lookback": str(_lookback_ms(lookback)),
        "endTs": str(int(time.time() * 1000)),
    }
    found = ControlClient(url).get_json("/api/v2/traces", **params)
    console = Console()
    if not found:
        console.print("no traces found")
        return
    table = Table()
    table.add_column("trace id", no_wrap=True)
    for column in ("root", "services", "spans", "duration", "started", "errors"):
        table.add_column(column)
    rows = sorted((_summary(spans) for spans in found if spans), key=lambda s: -s["start"])
    for row in rows:
        table.add_row(
            row["id"],
            row["root"],
            ", ".join(row["services"]),
            str(row["spans"]),
            _ms(row["duration"]),
            time.strftime("%H:%M:%S", time.localtime(row["start"] / 1e6)),
            Text(str(row["errors"]), style="red") if row["errors"] else "0",
        )
    console.print(table)
    console.print("A waterfall: stackyard trace TRACE_ID")


@click.command()
@click.argument("trace_id")
@url_option
def trace(trace_id: str, url: str) -> None:
    """One trace as a waterfall: each span under its parent, with its time bar."""
    spans: list[dict[str, Any]] = ControlClient(url).get_json(f"/api/v2/trace/{trace_id}")
    console = Console()
    summary = _summary(spans)
    start, total = summary["start"], max(summary["duration"], 1)
    console.print(
        f"[bold]{summary['id']}[/]  {summary['spans']} spans, {_ms(total)}, "
        f"services: {', '.join(summary['services'])}"
    )
    table = Table(box=None, pad_edge=False)
    table.add_column("span", no_wrap=True)
    for column in ("service", "kind", "duration"):
        table.add_column(column, no_wrap=True)
    table.add_column("timeline", no_wrap=True, overflow="crop", min_width=BAR_WIDTH)
    for depth, span in _tree(spans):
        offset = (span.get("timestamp", start) - start) / total
        width = (span.get("duration") or 0) / total
        left = min(BAR_WIDTH - 1, int(offset * BAR_WIDTH))
        bar = " " * left + "█" * max(1, min(BAR_WIDTH - left, round(width * BAR_WIDTH)))
        error = "error" in span.get("tags", {})
        name = Text("  " * depth + (span.get("name") or "?"), style="red" if error else "")
        table.add_row(
            name,
            (span.get("localEndpoint") or {}).get("serviceName", "?"),
            (span.get("kind") or "").lower(),
            _ms(span.get("duration") or 0),
            Text(bar, style="red" if error else "cyan"),
        )
    console.print(table)
    console.print(f"Its logs: stackyard logs --trace {summary['id']}")


def _summary(spans: list[dict[str, Any]]) -> dict[str, Any]:
    ids = {s["id"] for s in spans}
    roots = [s for s in spans if not s.get("parentId") or s["parentId"] not in ids]
    root = min(roots or spans, key=lambda s: s.get("timestamp", 0))
    starts = [s["timestamp"] for s in spans if s.get("timestamp")]
    ends = [s["timestamp"] + (s.get("duration") or 0) for s in spans if s.get("timestamp")]
    start = min(starts) if starts else 0
    services = sorted({(s.get("localEndpoint") or {}).get("serviceName", "?") for s in spans})
    return {
        "id": root["traceId"],
        "root": f"{(root.get('localEndpoint') or {}).get('serviceName', '?')}: {root.get('name')}",
        "services": services,
        "spans": len(spans),
        "start": start,
        "duration": (max(ends) - start) if ends else 0,
        "errors": sum(1 for s in spans if "error" in s.get("tags", {})),
    }


def _tree(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Spans depth-first under their parents, children in start order."""
    ids = {s["id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parentId") if span.get("parentId") in ids else None
        children.setdefault(parent, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: s.get("timestamp", 0))
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            if span["id"] in seen:  # a shared CLIENT/SERVER id appears twice; show both once
                out.append((depth, span))
                continue
            seen.add(span["id"])
            out.append((depth, span))
            walk(span["id"], depth + 1)

    walk(None, 0)
    return out


def _ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.2f} ms"


def _lookback_ms(text: str) -> int:
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    try:
        if text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except (ValueError, IndexError) as exc:
        raise click.BadParameter(f"{text!r}: use e.g. 15m, 2h, 1d") from exc
