"""Schedule expressions and firing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackyard.functions.schedule import (
    CronSchedule,
    ScaledClock,
    parse_schedule,
    scheduled_event,
    validate_schedule,
)

from .conftest import Factory, fn
from .test_async import records, wait_for

T0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    "expression,seconds",
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 days)", 172800),
    ],
)
def test_rate(expression: str, seconds: int) -> None:
    schedule = parse_schedule(expression)
    assert schedule.next_after(T0) == datetime.fromtimestamp(T0.timestamp() + seconds, UTC)


@pytest.mark.parametrize(
    "expression,first,second",
    [
        ("cron(15 10 * * ? *)", "2024-01-01 10:15", "2024-01-02 10:15"),
        ("cron(0 18 ? * MON-FRI *)", "2024-01-01 18:00", "2024-01-02 18:00"),
        ("cron(0 8 1 * ? *)", "2024-01-01 08:00", "2024-02-01 08:00"),
        ("cron(0/15 * * * ? *)", "2024-01-01 00:15", "2024-01-01 00:30"),
        ("cron(0 12 ? * 1 *)", "2024-01-07 12:00", "2024-01-14 12:00"),  # 1 = Sunday in AWS
        ("cron(0 12 ? * 2#1 *)", "2024-01-01 12:00", "2024-02-05 12:00"),  # first Monday
        ("cron(0 12 ? * 6L *)", "2024-01-26 12:00", "2024-02-23 12:00"),  # last Friday
        ("cron(0 12 L * ? *)", "2024-01-31 12:00", "2024-02-29 12:00"),
        ("cron(0 0 1 1 ? 2026-2027)", "2026-01-01 00:00", "2027-01-01 00:00"),
        ("cron(0 0 1 1 ? 2030/5)", "2030-01-01 00:00", "2035-01-01 00:00"),
    ],
)
def test_cron(expression: str, first: str, second: str) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, CronSchedule)
    one = schedule.next_after(T0)
    assert one is not None and one.strftime("%Y-%m-%d %H:%M") == first
    two = schedule.next_after(one)
    assert two is not None and two.strftime("%Y-%m-%d %H:%M") == second


def test_cron_ends_with_its_last_year() -> None:
    schedule = parse_schedule("cron(0 0 1 1 ? 2024)")
    assert schedule.next_after(T0) is None
    assert parse_schedule("cron(0 0 30 2 ? *)").next_after(T0) is None


@pytest.mark.parametrize(
    "expression,fragment",
    [
        ("rate(1 minutes)", "singular"),
        ("rate(5 minute)", "plural"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "unit"),
        ("rate(five minutes)", "positive integer"),
        ("cron(0 10 * * ?)", "6 fields"),
        ("cron(0 10 * * * *)", "'?'"),
        ("cron(0 10 ? * ? *)", "'?'"),
        ("cron(0 10 ? * 9 *)", "day-of-week"),
        ("cron(0 10 ? * MON 1969)", "1970-2199"),
        ("cron(61 10 ? * MON *)", "out of range"),
        ("every minute", "expected rate"),
    ],
)
def test_invalid_expressions(expression: str, fragment: str) -> None:
    with pytest.raises(ValueError) as error:
        validate_schedule(expression)
    assert fragment in str(error.value)


def test_scheduled_event_shape() -> None:
    event = scheduled_event(
        rule_arn="arn:aws:events:us-east-1:123456789012:rule/my-schedule",
        account="123456789012",
        region="us-east-1",
        moment=datetime(2015, 10, 8, 16, 53, 6, tzinfo=UTC),
    )
    # the example of the EventBridge / Lambda developer guides, field by field
    expected = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2015-10-08T16:53:06Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-schedule"],
        "detail": {},
    }
    event_id = event.pop("id")
    assert len(event_id) == 36
    assert event == expected


async def test_rate_schedule_fires_on_a_fast_clock(serve: Factory, tmp_path: Path) -> None:
    env = {"RECORD_FILE": str(tmp_path / "records")}
    served = await serve(
        {
            "tick": fn("handlers.record", env=env, events=[{"schedule": "rate(1 minute)"}]),
            "off": fn(
                "handlers.record",
                env=env,
                events=[{"schedule": {"rate": "rate(1 minute)", "enabled": False}}],
            ),
        },
        clock=ScaledClock(600),  # one minute every 0.1 s
    )
    fired = await wait_for(
        lambda: len(records(tmp_path / "records")) >= 2 and records(tmp_path / "records")
    )
    event = fired[0]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/tick-schedule-1"]
    assert event["account"] == "000000000000" and event["region"] == "us-east-1"
    first, second = (datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in fired[:2])
    assert (second - first).total_seconds() == 60
    await served.runtime.scheduler.stop()
    assert {e["id"] for e in fired} and len({e["id"] for e in fired}) == len(fired)


async def test_schedule_input_replaces_the_event(serve: Factory, tmp_path: Path) -> None:
    env = {"RECORD_FILE": str(tmp_path / "records")}
    schedule = {"rate": "rate(1 minute)", "input": {"key": "value"}}
    await serve(
        {"tick": fn("handlers.record", env=env, events=[{"schedule": schedule}])},
        clock=ScaledClock(600),
    )
    fired = await wait_for(lambda: records(tmp_path / "records"))
    assert fired[0] == {"key": "value"}
    await asyncio.sleep(0)
