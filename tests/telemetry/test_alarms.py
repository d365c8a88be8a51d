"""Alarms: OK → ALARM → OK driven by the evaluation loop with a real webhook server (aiohttp),
M of N, INSUFFICIENT_DATA and missing-data treatments, hooks, history, the API and the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from stackyard.cli.metrics import alarms as alarms_command
from stackyard.cli.metrics import metrics as metrics_command
from stackyard.config.models import AlarmConfig, StackConfig
from stackyard.serving import free_port
from stackyard.telemetry.alarms import ALARM, INSUFFICIENT_DATA, OK, AlarmEvent, decide

from .conftest import FakeClock, TelemetryServer, wait_for

T0 = 1_800_000_000.0


def alarm(**fields: Any) -> AlarmConfig:
    base: dict[str, Any] = {
        "metric": "queue_depth",
        "statistic": "max",
        "comparison": "GreaterThanThreshold",
        "threshold": 10,
        "period": 10,
    }
    return AlarmConfig.model_validate(base | fields)


class Webhook:
    """A real aiohttp server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def serve(tmp_path: Path, clock: FakeClock, alarms: dict[str, AlarmConfig], **options: Any) -> Any:
    defaults = {"metrics_interval": 3600.0, "process_metrics": False, "alarm_interval": None}
    return TelemetryServer(tmp_path / "data", clock=clock, alarms=alarms, **(defaults | options))


def test_schema_in_stack_config() -> None:
    stack = StackConfig.model_validate(
        {
            "name": "shop",
            "alarms": {
                "high-latency": {
                    "metric": "gateway_request_duration_seconds",
                    "dimensions": {"route": "/orders"},
                    "statistic": "p99",
                    "comparison": "GreaterThanOrEqualToThreshold",
                    "threshold": 0.5,
                    "period": "1m",
                    "evaluation_periods": 5,
                    "datapoints_to_alarm": 3,
                    "treat_missing_data": "notBreaching",
                    "actions": [{"webhook": "http://127.0.0.1:9/x"}, {"log": True}],
                }
            },
        }
    )
    config = stack.alarms["high-latency"]
    assert (config.period, config.required) == (60.0, 3)
    assert alarm(statistic="Average").statistic == "avg"
    bad: list[dict[str, Any]] = [
        {"period": 15},
        {"evaluation_periods": 2, "datapoints_to_alarm": 3},
        {"comparison": "Bigger"},
        {"statistic": "p42"},
        {"actions": [{"webhook": "ftp://x"}]},
        {"actions": [{}]},
        {"treat_missing_data": "sometimes"},
    ]
    for fields in bad:
        with pytest.raises(ValueError):
            alarm(**fields)


@pytest.mark.parametrize(
    ("treat", "values", "current", "expected"),
    [
        ("missing", [None, None, None], OK, INSUFFICIENT_DATA),
        ("missing", [20, None, 30], OK, ALARM),
        ("missing", [20, None, 1], ALARM, OK),
        ("notBreaching", [None, None, None], ALARM, OK),
        ("notBreaching", [20, None, 30], OK, ALARM),
        ("breaching", [None, None, 1], OK, ALARM),
        ("breaching", [1, 1, None], OK, OK),
        ("ignore", [None, None, None], ALARM, ALARM),
        ("ignore", [None, None, None], INSUFFICIENT_DATA, INSUFFICIENT_DATA),
        ("ignore", [1, None, None], ALARM, OK),
    ],
)
def test_decide_m_of_n_and_missing_data(
    treat: str, values: list[float | None], current: str, expected: str
) -> None:
    config = alarm(evaluation_periods=3, datapoints_to_alarm=2, treat_missing_data=treat)
    state, reason = decide(config, values, current)
    assert state == expected, reason


def test_ok_alarm_ok_with_webhook_hooks_and_history(tmp_path: Path, clock: FakeClock) -> None:
    webhook = Webhook()
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    config = alarm(
        dimensions={"queue": "orders"},
        actions=[{"webhook": dead}, {"webhook": webhook.url}, {"log": True}],
    )
    sync_events: list[AlarmEvent] = []
    async_events: list[AlarmEvent] = []

    async def async_hook(event: AlarmEvent) -> None:
        await asyncio.sleep(0)
        async_events.append(event)

    def broken_hook(event: AlarmEvent) -> None:
        raise RuntimeError("hooks may fail")

    with serve(tmp_path, clock, {"depth": config}, alarm_interval=0.02) as served:
        served.run(webhook.start())
        served.telemetry.on_alarm(sync_events.append)
        served.telemetry.on_alarm(async_hook)
        served.telemetry.on_alarm(broken_hook)
        metrics = served.telemetry.metrics

        def period(value: float) -> None:
            served.on_loop(lambda: metrics.set("queue_depth", {"queue": "orders"}, value))
            served.on_loop(lambda: metrics.set("queue_depth", {"queue": "other"}, 99))
            clock.advance(10)

        period(5)
        wait_for(lambda: len(webhook.received) == 1)
        period(50)
        wait_for(lambda: len(webhook.received) == 2)
        period(1)
        wait_for(lambda: len(webhook.received) == 3)
        transitions = [(e["previous_state"], e["state"]) for e in webhook.received]
        assert transitions == [(INSUFFICIENT_DATA, OK), (OK, ALARM), (ALARM, OK)]
        raised = webhook.received[1]
        assert raised["alarm"] == "depth" and raised["values"] == [50.0]
        assert raised["dimensions"] == {"queue": "orders"} and raised["threshold"] == 10
        assert "greater than the threshold" in raised["reason"]
        wait_for(lambda: len(async_events) == 3)
        assert [e.state for e in sync_events] == [OK, ALARM, OK]

        listed = served.get("/_stackyard/alarms").json()
        assert [(a["name"], a["state"], a["metric"]) for a in listed] == [
            ("depth", OK, "queue_depth")
        ]
        assert listed[0]["changed_at"].startswith("2027-01-15T08:00:30")
        history = served.get("/_stackyard/alarms/depth/history").json()
        assert [(h["old_state"], h["new_state"]) for h in history] == [
            (ALARM, OK),
            (OK, ALARM),
            (INSUFFICIENT_DATA, OK),
        ]
        assert history[0]["time"] == T0 + 30
        assert served.get("/_stackyard/alarms/nope/history").status_code == 404
        assert served.get("/_stackyard/alarms/depth/history", limit="0").status_code == 400
        served.flush()
        logged = served.get("/_stackyard/logs/search", service="stackyard-alarms").json()
        assert [r["level"] for r in logged] == ["info", "warn", "info"]

        runner = CliRunner()
        table = runner.invoke(alarms_command, ["--url", served.url])
        assert table.exit_code == 0, table.output
        assert "depth" in table.output and "OK" in table.output
        shown = runner.invoke(alarms_command, ["depth", "--url", served.url])
        assert shown.exit_code == 0 and "ALARM" in shown.output
        listed_cli = runner.invoke(metrics_command, ["--url", served.url])
        assert listed_cli.exit_code == 0 and "queue_depth" in listed_cli.output
        one = runner.invoke(
            metrics_command, ["queue_depth", "--period", "10", "--since", "1h", "--url", served.url]
        )
        assert one.exit_code == 0, one.output
        assert "2027-01-15 08:00:10" in one.output
        served.run(webhook.stop())


def test_m_of_n_and_insufficient_data(tmp_path: Path, clock: FakeClock) -> None:
    configs = {
        "errors": alarm(
            metric="function_errors_total",
            dimensions={"function": "pay"},
            statistic="sum",
            evaluation_periods=3,
            datapoints_to_alarm=2,
        ),
        "never-reported": alarm(metric="nothing_here"),
        "latency-p90": alarm(metric="function_duration_seconds", statistic="p90", threshold=1.0),
    }
    with serve(tmp_path, clock, configs) as served:
        metrics = served.telemetry.metrics

        def period(errors: float | None, durations: tuple[float, ...] = ()) -> dict[str, str]:
            if errors is not None:
                served.on_loop(
                    lambda: metrics.count("function_errors_total", {"function": "pay"}, errors)
                )
            for value in durations:
                served.on_loop(
                    lambda v=value: metrics.observe(  # type: ignore[misc]
                        "function_duration_seconds", {"function": "pay"}, v
                    )
                )
            clock.advance(10)
            served.run(served.telemetry.alarms.evaluate())
            return {a["name"]: a["state"] for a in served.get("/_stackyard/alarms").json()}

        assert period(20, (0.1,) * 10)["errors"] == OK  # [20] only: 1 of 2 needed
        states = period(1, (0.1,) * 5 + (3.0,) * 5)
        assert states["errors"] == OK and states["latency-p90"] == ALARM
        assert states["never-reported"] == INSUFFICIENT_DATA
        assert period(None)["errors"] == OK  # [20, 1, -]
        assert period(15)["errors"] == OK  # [1, -, 15]
        states = period(30)  # [-, 15, 30]
        assert states["errors"] == ALARM
        assert states["latency-p90"] == INSUFFICIENT_DATA  # no duration data any more
        assert period(None)["errors"] == ALARM  # [15, 30, -]
        assert period(None)["errors"] == OK  # [30, -, -]
        assert period(None)["errors"] == INSUFFICIENT_DATA  # [-, -, -]
        history = served.get("/_stackyard/alarms/errors/history").json()
        assert [h["new_state"] for h in reversed(history)] == [OK, ALARM, OK, INSUFFICIENT_DATA]
        assert served.get("/_stackyard/alarms/never-reported/history").json() == []


def test_state_survives_restart(tmp_path: Path, clock: FakeClock) -> None:
    configs = {"depth": alarm()}
    with serve(tmp_path, clock, configs) as served:
        served.on_loop(lambda: served.telemetry.metrics.set("queue_depth", {}, 50))
        clock.advance(10)
        assert [e.state for e in served.run(served.telemetry.alarms.evaluate())] == [ALARM]
    with serve(tmp_path, clock, configs) as served:
        listed = served.get("/_stackyard/alarms").json()
        assert listed[0]["state"] == ALARM
        assert len(served.get("/_stackyard/alarms/depth/history").json()) == 1


@pytest.fixture
def no_alarms(tmp_path: Path, clock: FakeClock) -> Iterator[TelemetryServer]:
    with serve(tmp_path, clock, {}) as served:
        yield served


def test_no_alarms_configured(no_alarms: TelemetryServer) -> None:
    assert no_alarms.get("/_stackyard/alarms").json() == []
    result = CliRunner().invoke(alarms_command, ["--url", no_alarms.url])
    assert result.exit_code == 0 and "no alarms configured" in result.output
    bad = CliRunner().invoke(metrics_command, ["x", "--period", "15", "--url", no_alarms.url])
    assert bad.exit_code != 0 and "multiple of 10" in bad.output
