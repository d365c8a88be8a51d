"""Bucket notifications with the buckets and the function runtime in this process (short retry
delays): a failing function's event is retried and ends in the dead letters, a write never
fails because its notification cannot be handed over, many deleted keys each get a record,
and a deploy takes the new rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from starlette.applications import Starlette

from stackyard.config.models import BucketConfig, FunctionConfig
from stackyard.functions.runtime import FunctionRuntime
from stackyard.serving import AsgiServer, free_port
from stackyard.storage.buckets import Buckets
from stackyard.storage.buckets.notifications import stack_rules
from stackyard.storage.dispatch import AwsDispatch

HANDLER = """\
import json, os

def record(event, context):
    with open(os.environ["OUT"], "a") as out:
        for record in event["Records"]:
            out.write(json.dumps(record) + "\\n")
    if os.path.exists(os.environ["OUT"] + ".fail"):
        raise ValueError("refusing " + event["Records"][0]["s3"]["object"]["key"])
"""


@dataclass
class Served:
    runtime: FunctionRuntime
    buckets: Buckets
    out: Path
    s3: Any

    async def call(self, method: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.s3, method), **kwargs)

    def fail(self) -> None:
        """From now on the function raises (after recording what it got)."""
        Path(str(self.out) + ".fail").touch()

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]


def functions(out: Path, events: list[dict[str, Any]], retries: int = 2) -> dict[str, Any]:
    config = FunctionConfig.model_validate(
        {
            "handler": "handler.record",
            "retries": retries,
            "env": {"OUT": str(out)},
            "events": events,
        }
    )
    return {"rec": config}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    root = tmp_path / "app"
    root.mkdir()
    (root / "handler.py").write_text(HANDLER)
    out = tmp_path / "records.jsonl"
    stack = functions(out, [{"s3": {"bucket": "photos", "rules": [{"suffix": ".jpg"}]}}])
    runtime = FunctionRuntime(
        stack,
        stack_root=root,
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        base_env={"AWS_REGION": "us-east-1"},
        retry_delays=(0.1, 0.2),
    )
    buckets = Buckets(
        tmp_path / "data",
        declared={},
        notifications=stack_rules(stack),
        functions=runtime,
    )
    await buckets.start()
    await runtime.start()
    port = free_port()
    server = AsgiServer(
        AwsDispatch(Starlette(routes=runtime.routes()), {"s3": buckets.app}), "127.0.0.1", port
    )
    await server.start()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="someone",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, read_timeout=30),
    )
    await asyncio.to_thread(s3.create_bucket, Bucket="photos")
    try:
        yield Served(runtime, buckets, out, s3)
    finally:
        await server.stop()
        await runtime.stop()
        await buckets.stop()


async def wait_for(predicate: Any, limit: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + limit
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)
    return value


async def test_failing_function_is_retried_then_a_dead_letter(served: Served) -> None:
    served.fail()
    await served.call("put_object", Bucket="photos", Key="cat.jpg", Body=b"meow")
    await wait_for(lambda: len(served.records()) == 3)  # the attempt and 2 retries
    letters = await wait_for_dead_letters(served)
    assert len(letters) == 1 and letters[0].attempts == 3
    assert "refusing cat.jpg" in letters[0].error
    record = json.loads(letters[0].payload)["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["userIdentity"] == {"principalId": "AWS:someone"}
    await asyncio.sleep(0.4)
    assert len(served.records()) == 3  # no more attempts
    sequencers = {r["s3"]["object"]["sequencer"] for r in served.records()}
    assert len(sequencers) == 1  # the same event each time


async def wait_for_dead_letters(served: Served) -> Any:
    for _ in range(200):
        letters = await served.runtime.dead_letters("rec")
        if letters:
            return letters
        await asyncio.sleep(0.05)
    raise TimeoutError("no dead letter")


async def test_a_write_never_fails_for_its_notification(served: Served) -> None:
    await served.runtime.stop()  # events cannot be handed over now
    answer = await served.call("put_object", Bucket="photos", Key="dog.jpg", Body=b"woof")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = await served.call("get_object", Bucket="photos", Key="dog.jpg")
    assert got["Body"].read() == b"woof"
    await served.call("delete_object", Bucket="photos", Key="dog.jpg")


async def test_each_deleted_key_gets_a_record_in_order(served: Served) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:rec"
    removals = {"LambdaFunctionArn": arn, "Events": ["s3:ObjectRemoved:*"]}
    await served.call(
        "put_bucket_notification_configuration",
        Bucket="photos",
        NotificationConfiguration={"LambdaFunctionConfigurations": [removals]},
    )
    keys = [f"k{i:03d}.jpg" for i in range(40)]
    for key in keys[:20]:
        await served.call("put_object", Bucket="photos", Key=key, Body=b"x")
    await served.call(
        "delete_objects",
        Bucket="photos",
        Delete={"Objects": [{"Key": key} for key in keys]},  # half of them do not exist
    )
    records = await wait_for(lambda: len(r := served.records()) >= 40 and r)
    await asyncio.sleep(0.2)
    assert len(served.records()) == 40
    records = sorted(records, key=lambda r: r["s3"]["object"]["sequencer"])
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in records] == [
        *(("ObjectCreated:Put", key) for key in keys[:20]),
        *(("ObjectRemoved:Delete", key) for key in keys[:20]),
    ]


async def test_a_deploy_takes_the_new_rules(served: Served) -> None:
    stack = functions(served.out, [{"s3": {"bucket": "fresh", "event": "s3:ObjectRemoved:*"}}])
    await served.runtime.apply(stack)
    await served.buckets.apply({"fresh": BucketConfig()}, stack_rules(stack))
    await served.call("put_object", Bucket="photos", Key="old-rule.jpg", Body=b"x")
    await served.call("put_object", Bucket="fresh", Key="a.txt", Body=b"x")
    await served.call("delete_object", Bucket="fresh", Key="a.txt")
    records = await wait_for(served.records)
    await asyncio.sleep(0.3)
    assert [(r["eventName"], r["s3"]["bucket"]["name"]) for r in served.records()] == [
        ("ObjectRemoved:Delete", "fresh")
    ]
    assert records[0]["s3"]["configurationId"] == "rec-s3-1"
