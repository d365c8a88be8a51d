"""The alarms page: every alarm with its state, reason, metric and threshold, last change,
history and a chart of its metric; alarms in ALARM first.

``GET /alarms`` renders the page; ``GET /fragments/alarms`` is the summary table and
``GET /fragments/alarms/{name}`` one alarm's state and history, both polled. States come from
``node.telemetry.alarms.states()`` and the history from the metrics store's
``alarm_history`` — what ``GET /_stackyard/alarms`` and ``/_stackyard/alarms/{name}/history``
answer. The chart is a ``chart`` div of ``console.js`` over the alarm's metric and dimensions.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..app import Console

HISTORY_SHOWN = 20
STATE_ORDER = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}
COMPARISON_SIGNS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": "≥",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "≤",
}


def routes(console: Console) -> list[BaseRoute]:
    async def page(request: Request) -> Response:
        alarms = _alarms(console)
        histories = {a["name"]: await _history(console, a["name"]) for a in alarms}
        return console.render(
            request, "alarms.html", title="Alarms", alarms=alarms, histories=histories
        )

    async def summary(request: Request) -> Response:
        return console.render(request, "_alarms_summary.html", alarms=_alarms(console))

    async def one(request: Request) -> Response:
        name = str(request.path_params["name"])
        found = [a for a in _alarms(console) if a["name"] == name]
        if not found:
            return Response(f"no alarm named {name!r}", status_code=404, media_type="text/plain")
        return console.render(
            request, "_alarms_state.html", alarm=found[0], history=await _history(console, name)
        )

    return [
        Route("/alarms", page, methods=["GET"]),
        Route("/fragments/alarms", summary, methods=["GET"]),
        Route("/fragments/alarms/{name}", one, methods=["GET"]),
    ]


def _alarms(console: Console) -> list[dict[str, Any]]:
    """The alarms' states, ALARM first, each with how its condition reads and chart settings."""
    alarms = console.node.telemetry.alarms.states()
    for alarm in alarms:
        alarm["condition"] = condition_text(alarm)
        alarm["chart_period"] = max(10, int(alarm["period"]) // 10 * 10)
        alarm["chart_since"] = f"{max(15, alarm['chart_period'] * 30 // 60)}m"
    return sorted(alarms, key=lambda a: (STATE_ORDER.get(a["state"], 3), a["name"]))


def condition_text(alarm: dict[str, Any]) -> str:
    """``sum of gateway_requests_total{route=/x,status=503} > 0 in 1 of 1 period(s) of 10 s``."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(alarm["dimensions"].items()))
    metric = alarm["metric"] + (f"{{{labels}}}" if labels else "")
    sign = COMPARISON_SIGNS.get(alarm["comparison"], alarm["comparison"])
    needed = alarm.get("datapoints_to_alarm") or alarm["evaluation_periods"]
    return (
        f"{alarm['statistic']} of {metric} {sign} {alarm['threshold']:g} in {needed} of "
        f"{alarm['evaluation_periods']} period(s) of {alarm['period']:g} s"
    )


async def _history(console: Console, name: str) -> list[dict[str, Any]]:
    return await console.node.telemetry.alarms.store.alarm_history(name, HISTORY_SHOWN)
