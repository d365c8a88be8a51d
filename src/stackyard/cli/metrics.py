"""``stackyard metrics [NAME]`` and ``stackyard alarms [NAME]``: read a running node's metrics
and alarms through its control API (``/_stackyard/metrics``, ``/_stackyard/alarms``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .client import ControlClient, url_option

_STATE_STYLE = {"OK": "green", "ALARM": "bold red", "INSUFFICIENT_DATA": "yellow"}
_COMPARISON = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
_STATS = ("count", "sum", "avg", "min", "max", "p50", "p90", "p99")


@click.command()
@click.argument("name", required=False)
@click.option("--labels", default="", help="Only series with these labels: k=v,k2=v2.")
@click.option("--period", default=60, show_default=True, help="Seconds per datapoint.")
@click.option("--since", default="15m", show_default=True, help="15m, 2h, 1d or ISO 8601.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw API answer.")
@url_option
def metrics(
    name: str | None, labels: str, period: int, since: str, as_json: bool, url: str
) -> None:
    """List metrics, or show NAME's recent datapoints with their statistics."""
    client = ControlClient(url)
    console = Console(highlight=False)
    if name is None:
        found = client.get_json("/_stackyard/metrics")
        if as_json:
            console.print_json(data=found)
            return
        table = Table("metric", "kind", "series", "labels")
        for item in found:
            keys = sorted({k for series in item["series"] for k in series})
            table.add_row(item["name"], item["kind"], str(len(item["series"])), ",".join(keys))
        console.print(table)
        return
    doc = client.get_json(
        "/_stackyard/metrics/query",
        name=name,
        labels=labels,
        stat="all",
        period=str(period),
        since=since,
    )
    if as_json:
        console.print_json(data=doc)
        return
    points: list[dict[str, Any]] = doc["datapoints"]
    stats = [s for s in _STATS if any(s in p for p in points)] or list(_STATS[:5])
    title = f"{name} ({doc.get('kind') or 'no data'}, {period}s periods)"
    table = Table("time", *stats, title=title)
    for point in points:
        when = datetime.fromtimestamp(point["time"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(when, *(_number(point.get(s)) for s in stats))
    console.print(table)
    if not points:
        console.print(f"no datapoints for {name} since {since}")


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the raw API answer.")
@url_option
def alarms(name: str | None, as_json: bool, url: str) -> None:
    """Alarms and their state, or NAME's state history."""
    client = ControlClient(url)
    console = Console(highlight=False)
    if name is not None:
        history = client.get_json(f"/_stackyard/alarms/{name}/history")
        if as_json:
            console.print_json(data=history)
            return
        table = Table("time", "from", "to", "reason", title=f"alarm {name}")
        for item in history:
            when = datetime.fromtimestamp(item["time"], UTC).strftime("%Y-%m-%d %H:%M:%S")
            table.add_row(
                when, _state(item["old_state"]), _state(item["new_state"]), item["reason"]
            )
        console.print(table)
        return
    found = client.get_json("/_stackyard/alarms")
    if as_json:
        console.print_json(data=found)
        return
    if not found:
        console.print("no alarms configured (alarms.<name> in stackyard.yml)")
        return
    table = Table("alarm", "state", "condition", "since", "reason")
    for item in found:
        dims = ",".join(f"{k}={v}" for k, v in sorted(item["dimensions"].items()))
        metric = item["metric"] + (f"{{{dims}}}" if dims else "")
        m, n = item["datapoints_to_alarm"] or item["evaluation_periods"], item["evaluation_periods"]
        condition = (
            f"{item['statistic']}({metric}) {_COMPARISON[item['comparison']]} "
            f"{item['threshold']:g} for {m}/{n} x {item['period']:g}s"
        )
        table.add_row(
            item["name"], _state(item["state"]), condition, item["changed_at"][:19], item["reason"]
        )
    console.print(table)


def _state(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)
