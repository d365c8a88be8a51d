"""DynamoDB Streams through a real node: boto3 writes, functions that record what they get."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stackyard.testing import NodeProcess, wait_until

from ..tables.conftest import make_client

HANDLER = """\
import json, os

def _append(name, event):
    with open(os.environ["OUT_DIR"] + "/" + name, "a") as out:
        for record in event["Records"]:
            out.write(json.dumps(record) + "\\n")

def record(event, context):
    _append("notes.jsonl", event)

def flaky(event, context):
    marker = os.environ["OUT_DIR"] + "/flaky-failed"
    with open(os.environ["OUT_DIR"] + "/flaky-attempts", "a") as out:
        out.write(str(len(event["Records"])) + "\\n")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    _append("jobs.jsonl", event)

def gated(event, context):
    if os.path.exists(os.environ["OUT_DIR"] + "/gate"):
        raise RuntimeError("gate closed")
    _append("queue.jsonl", event)
"""

STACK = """\
name: streams
tables:
  notes:
    hash_key: id
    range_key: n
    attributes: {{n: N}}
    stream: new_and_old_images
  jobs: {{hash_key: id, stream: keys_only}}
  queue: {{hash_key: id, stream: new_image}}
functions:
  record:
    handler: handler.record
    env: {{OUT_DIR: "{out}"}}
    events:
      - stream: {{table: notes, batch_size: 10, starting_position: TRIM_HORIZON}}
  flaky:
    handler: handler.flaky
    env: {{OUT_DIR: "{out}"}}
    events:
      - stream: {{table: jobs}}
  gated:
    handler: handler.gated
    env: {{OUT_DIR: "{out}"}}
    events:
      - stream: {{table: queue, starting_position: TRIM_HORIZON}}
"""


def make_stack(tmp_path: Path) -> tuple[Path, Path]:
    root, out = tmp_path / "app", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    (root / "stackyard.yml").write_text(STACK.format(out=out))
    (root / "handler.py").write_text(HANDLER)
    return root, out


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key(id_: str, n: int) -> dict[str, Any]:
    return {"id": {"S": id_}, "n": {"N": str(n)}}


def test_writes_reach_the_function_in_order_with_their_images(tmp_path: Path) -> None:
    root, out = make_stack(tmp_path)
    with NodeProcess(root, data_dir=tmp_path / "data") as node:
        node.wait_ready()
        ddb = make_client(node.control_url)
        assert ddb.describe_table(TableName="notes")["Table"]["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        ddb.put_item(TableName="notes", Item={**key("a", 1), "v": {"S": "one"}})
        ddb.put_item(TableName="notes", Item={**key("b", 1), "v": {"S": "bee"}})
        ddb.update_item(
            TableName="notes",
            Key=key("a", 1),
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "two"}},
        )
        # a write that changes nothing makes no record
        ddb.put_item(TableName="notes", Item={**key("b", 1), "v": {"S": "bee"}})
        ddb.delete_item(TableName="notes", Key=key("a", 1))
        ddb.delete_item(TableName="notes", Key=key("zz", 9))  # nothing to delete: no record
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "notes", "Item": {**key("c", 2)}}}]
        )
        records = wait_until(
            lambda: (r := lines(out / "notes.jsonl")) and len(r) >= 5 and r, 30, what="records"
        )
        assert len(records) == 5
        names = [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in records]
        assert names == [
            ("INSERT", "a"),
            ("INSERT", "b"),
            ("MODIFY", "a"),
            ("REMOVE", "a"),
            ("INSERT", "c"),
        ]
        first, _, modify, remove, _ = records
        assert first["eventVersion"] == "1.1"
        assert first["eventSource"] == "aws:dynamodb"
        assert first["awsRegion"] == "us-east-1"
        assert re.fullmatch(
            r"arn:aws:dynamodb:us-east-1:\d{12}:table/notes/stream/\d{4}-\d\d-\d\dT[\d:.]+",
            first["eventSourceARN"],
        )
        assert first["dynamodb"]["Keys"] == key("a", 1)
        assert first["dynamodb"]["NewImage"] == {**key("a", 1), "v": {"S": "one"}}
        assert "OldImage" not in first["dynamodb"]
        assert first["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], float)
        assert first["dynamodb"]["SizeBytes"] > 0
        assert modify["dynamodb"]["OldImage"]["v"] == {"S": "one"}
        assert modify["dynamodb"]["NewImage"]["v"] == {"S": "two"}
        assert remove["dynamodb"]["OldImage"]["v"] == {"S": "two"}
        assert "NewImage" not in remove["dynamodb"]
        sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
        assert sequence == sorted(sequence) and len(set(sequence)) == 5
        assert len({r["eventID"] for r in records}) == 5

        # keys_only, and a function failing once gets the same batch again
        ddb.put_item(TableName="jobs", Item={"id": {"S": "j1"}, "big": {"S": "x" * 100}})
        jobs = wait_until(lambda: lines(out / "jobs.jsonl"), 30, what="the retried batch")
        assert (out / "flaky-failed").exists()
        attempts = (out / "flaky-attempts").read_text().split()
        assert attempts == ["1", "1"]
        assert len(jobs) == 1
        assert jobs[0]["dynamodb"]["Keys"] == {"id": {"S": "j1"}}
        assert "NewImage" not in jobs[0]["dynamodb"]
        assert jobs[0]["dynamodb"]["StreamViewType"] == "KEYS_ONLY"


def test_undelivered_records_survive_a_restart(tmp_path: Path) -> None:
    root, out = make_stack(tmp_path)
    (out / "gate").touch()
    data = tmp_path / "data"
    with NodeProcess(root, data_dir=data) as node:
        node.wait_ready()
        ddb = make_client(node.control_url)
        for i in range(5):
            ddb.put_item(TableName="queue", Item={"id": {"S": f"k{i % 2}"}, "i": {"N": str(i)}})
        # the gated function keeps failing; nothing is delivered
        wait_until(lambda: "gate closed" in node.output(), 30, what="a failed delivery")
        assert lines(out / "queue.jsonl") == []
    (out / "gate").unlink()
    with NodeProcess(root, data_dir=data) as node:
        node.wait_ready()
        records = wait_until(
            lambda: (r := lines(out / "queue.jsonl")) and len(r) >= 5 and r, 30, what="records"
        )
        assert [int(r["dynamodb"]["NewImage"]["i"]["N"]) for r in records] == [0, 1, 2, 3, 4]
        assert [r["eventName"] for r in records] == ["INSERT", "INSERT"] + ["MODIFY"] * 3
    # delivered records are not delivered again after another restart
    with NodeProcess(root, data_dir=data) as node:
        node.wait_ready()
        ddb = make_client(node.control_url)
        ddb.put_item(TableName="queue", Item={"id": {"S": "k9"}, "i": {"N": "9"}})
        wait_until(lambda: len(lines(out / "queue.jsonl")) >= 6, 30, what="the new record")
        records = lines(out / "queue.jsonl")
        assert [int(r["dynamodb"]["NewImage"]["i"]["N"]) for r in records] == [0, 1, 2, 3, 4, 9]
