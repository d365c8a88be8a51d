"""Bucket notifications through a real node: boto3 writes, functions that record the S3 event
records they get (stackyard.yml ``s3`` events and the notification configuration API)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stackyard.testing import NodeProcess, wait_until

HANDLER = """\
import json, os, time

def _append(name, event):
    with open(os.environ["OUT_DIR"] + "/" + name, "a") as out:
        for record in event["Records"]:
            out.write(json.dumps(record) + "\\n")

def record(event, context):
    _append("record.jsonl", event)

def slow(event, context):
    time.sleep(2)
    _append("slow.jsonl", event)

def api(event, context):
    _append("api.jsonl", event)

def failing(event, context):
    _append("failing.jsonl", event)
    raise RuntimeError("cannot take this object")
"""

STACK = """\
name: pics
buckets:
  photos: {{}}
functions:
  record:
    handler: handler.record
    env: {{OUT_DIR: "{out}"}}
    events:
      - s3: {{bucket: photos, rules: [{{prefix: uploads/}}, {{suffix: .jpg}}]}}
      - s3: {{bucket: photos, event: "s3:ObjectRemoved:*", rules: [{{prefix: uploads/}}]}}
  slow:
    handler: handler.slow
    env: {{OUT_DIR: "{out}"}}
    events:
      - s3: inbox
      - s3: {{bucket: elsewhere, existing: true}}
  api:
    handler: handler.api
    env: {{OUT_DIR: "{out}"}}
  failing:
    handler: handler.failing
    retries: 0
    env: {{OUT_DIR: "{out}"}}
    events:
      - s3: {{bucket: broken, event: "s3:ObjectCreated:Put"}}
"""

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def make_stack(tmp_path: Path) -> tuple[Path, Path]:
    root, out = tmp_path / "app", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    (root / "stackyard.yml").write_text(STACK.format(out=out))
    (root / "handler.py").write_text(HANDLER)
    return root, out


def s3_client(node: NodeProcess) -> Any:
    return node.aws_client("s3")


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_records(path: Path, count: int) -> list[dict[str, Any]]:
    found = wait_until(
        lambda: (r := lines(path)) and len(r) >= count and r, 30, what=f"{count} in {path.name}"
    )
    assert isinstance(found, list)
    return found


def test_writes_trigger_the_stack_functions_with_s3_records(tmp_path: Path) -> None:
    root, out = make_stack(tmp_path)
    with NodeProcess(root, data_dir=tmp_path / "data") as node:
        node.wait_ready()
        s3 = s3_client(node)
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert {"photos", "inbox", "broken"} <= names  # buckets s3 events name are created
        assert "elsewhere" not in names  # existing: true: not created, a warning says so
        assert "bucket elsewhere of an s3 event does not exist (existing: true)" in node.output()

        put = s3.put_object(Bucket="photos", Key="uploads/red flower.jpg", Body=b"petals")
        s3.put_object(Bucket="photos", Key="uploads/skip.png", Body=b"x")  # suffix differs
        s3.put_object(Bucket="photos", Key="other/skip.jpg", Body=b"x")  # prefix differs
        s3.copy_object(
            Bucket="photos",
            Key="uploads/copy.jpg",
            CopySource={"Bucket": "photos", "Key": "uploads/red flower.jpg"},
        )
        upload = s3.create_multipart_upload(Bucket="photos", Key="uploads/big.jpg")
        part = s3.upload_part(
            Bucket="photos", Key="uploads/big.jpg", UploadId=upload["UploadId"],
            PartNumber=1, Body=b"p" * 1000,
        )  # fmt: skip
        s3.complete_multipart_upload(
            Bucket="photos",
            Key="uploads/big.jpg",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        s3.put_object(Bucket="photos", Key="uploads/copy.jpg", Body=b"second version")
        s3.delete_object(Bucket="photos", Key="uploads/red flower.jpg")
        s3.delete_objects(
            Bucket="photos",
            Delete={"Objects": [{"Key": k} for k in ("uploads/big.jpg", "uploads/none.jpg")]},
        )
        s3.delete_object(Bucket="photos", Key="other/skip.jpg")  # prefix differs

        records = wait_records(out / "record.jsonl", 6)
        time.sleep(0.5)  # nothing more comes
        records = sorted(lines(out / "record.jsonl"), key=lambda r: r["s3"]["object"]["sequencer"])
        assert [(r["eventName"], r["s3"]["object"]["key"]) for r in records] == [
            ("ObjectCreated:Put", "uploads/red+flower.jpg"),
            ("ObjectCreated:Copy", "uploads/copy.jpg"),
            ("ObjectCreated:CompleteMultipartUpload", "uploads/big.jpg"),
            ("ObjectCreated:Put", "uploads/copy.jpg"),
            ("ObjectRemoved:Delete", "uploads/red+flower.jpg"),
            ("ObjectRemoved:Delete", "uploads/big.jpg"),
        ]
        first = records[0]
        assert first["eventVersion"] == "2.1"
        assert first["eventSource"] == "aws:s3"
        assert first["awsRegion"] == "us-east-1"
        assert ISO_MS.match(first["eventTime"])
        assert first["userIdentity"] == {"principalId": "AWS:stackyard"}
        assert first["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
        request_id = put["ResponseMetadata"]["RequestId"]
        assert first["responseElements"]["x-amz-request-id"] == request_id
        assert first["responseElements"]["x-amz-id-2"]
        assert first["s3"]["s3SchemaVersion"] == "1.0"
        assert first["s3"]["configurationId"] == "record-s3-1"
        assert first["s3"]["bucket"] == {
            "name": "photos",
            "ownerIdentity": {"principalId": "stackyard"},
            "arn": "arn:aws:s3:::photos",
        }
        obj = first["s3"]["object"]
        assert obj["size"] == 6 and obj["eTag"] == hashlib.md5(b"petals").hexdigest()
        assert re.fullmatch(r"[0-9A-F]{18}", obj["sequencer"])
        assert records[2]["s3"]["object"]["eTag"].endswith("-1")
        assert records[3]["s3"]["object"]["size"] == len(b"second version")
        removed = records[4]
        assert removed["s3"]["configurationId"] == "record-s3-2"
        assert set(removed["s3"]["object"]) == {"key", "sequencer"}  # no size, no eTag

        # the write's answer does not wait for the function (it sleeps 2 s)
        started = time.monotonic()
        s3.put_object(Bucket="inbox", Key="letter.txt", Body=b"hi")
        assert time.monotonic() - started < 1.5
        assert not (out / "slow.jsonl").exists()
        slow = wait_records(out / "slow.jsonl", 1)
        assert slow[0]["s3"]["bucket"]["name"] == "inbox"
        assert slow[0]["eventName"] == "ObjectCreated:Put"

        # a function that raises: no retries configured, its event is a dead letter
        s3.put_object(Bucket="broken", Key="bad.bin", Body=b"x")
        wait_records(out / "failing.jsonl", 1)

        def dead_letters() -> list[dict[str, Any]]:
            url = node.control_url + "/_stackyard/functions/dead-letters?function=failing"
            return list(node.get_json(url)[1]["dead_letters"])

        dead = wait_until(dead_letters, 30, what="the dead letter")
        assert "cannot take this object" in dead[0]["error"]
        payload = json.loads(dead[0]["payload"])
        assert payload["Records"][0]["s3"]["object"]["key"] == "bad.bin"


def test_notification_configuration_api(tmp_path: Path) -> None:
    root, out = make_stack(tmp_path)
    data = tmp_path / "data"
    arn = "arn:aws:lambda:us-east-1:000000000000:function:api"
    config = {
        "LambdaFunctionConfigurations": [
            {
                "Id": "to-api",
                "LambdaFunctionArn": arn,
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "api/"}]}},
            }
        ]
    }
    with NodeProcess(root, data_dir=data) as node:
        node.wait_ready()
        s3 = s3_client(node)
        s3.create_bucket(Bucket="runtime")
        assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(
            Bucket="runtime"
        )
        s3.put_bucket_notification_configuration(Bucket="runtime", NotificationConfiguration=config)
        got = s3.get_bucket_notification_configuration(Bucket="runtime")
        assert got["LambdaFunctionConfigurations"] == [
            {
                "Id": "to-api",
                "LambdaFunctionArn": arn,
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"],
                "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "api/"}]}},
            }
        ]
        s3.put_object(Bucket="runtime", Key="api/one.txt", Body=b"1")
        s3.put_object(Bucket="runtime", Key="elsewhere/two.txt", Body=b"2")
        s3.delete_object(Bucket="runtime", Key="api/one.txt")
        records = wait_records(out / "api.jsonl", 2)
        records.sort(key=lambda r: r["s3"]["object"]["sequencer"])
        assert [r["eventName"] for r in records] == ["ObjectCreated:Put", "ObjectRemoved:Delete"]
        assert {r["s3"]["configurationId"] for r in records} == {"to-api"}

        # the API's rules and the stack's both apply to a bucket
        s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration=config)
        s3.put_object(Bucket="photos", Key="api/uploads.jpg", Body=b"3")
        s3.put_object(Bucket="photos", Key="uploads/both.jpg", Body=b"4")
        wait_records(out / "api.jsonl", 3)
        assert wait_records(out / "record.jsonl", 1)[0]["s3"]["object"]["key"] == (
            "uploads/both.jpg"
        )

        # refused configurations
        unknown = {
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:nope",
                    "Events": ["s3:ObjectCreated:*"],
                }
            ]
        }
        with pytest.raises(ClientError) as error:
            s3.put_bucket_notification_configuration(
                Bucket="runtime", NotificationConfiguration=unknown
            )
        assert error.value.response["Error"]["Code"] == "InvalidArgument"
        assert "no function named 'nope'" in error.value.response["Error"]["Message"]
        overlapping = {
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]},
                {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:Put"]},
            ]
        }
        with pytest.raises(ClientError) as error:
            s3.put_bucket_notification_configuration(
                Bucket="runtime", NotificationConfiguration=overlapping
            )
        assert "overlapping" in error.value.response["Error"]["Message"]
        sns = "arn:aws:sns:us-east-1:000000000000:t"
        topic = {"TopicConfigurations": [{"TopicArn": sns, "Events": ["s3:ObjectCreated:*"]}]}
        with pytest.raises(ClientError) as error:
            s3.put_bucket_notification_configuration(
                Bucket="runtime", NotificationConfiguration=topic
            )
        assert error.value.response["Error"]["Code"] == "NotImplemented"
        with pytest.raises(ClientError) as error:
            s3.get_bucket_notification_configuration(Bucket="no-such-bucket")
        assert error.value.response["Error"]["Code"] == "NoSuchBucket"
        # a refused configuration changed nothing
        kept = s3.get_bucket_notification_configuration(Bucket="runtime")
        assert kept["LambdaFunctionConfigurations"][0]["Id"] == "to-api"

    # the configuration is kept with the bucket across a restart
    with NodeProcess(root, data_dir=data) as node:
        node.wait_ready()
        s3 = s3_client(node)
        got = s3.get_bucket_notification_configuration(Bucket="runtime")
        assert got["LambdaFunctionConfigurations"][0]["Id"] == "to-api"
        s3.put_object(Bucket="runtime", Key="api/after-restart.txt", Body=b"5")
        wait_until(
            lambda: any(
                r["s3"]["object"]["key"] == "api/after-restart.txt"
                for r in lines(out / "api.jsonl")
            ),
            30,
            what="the record after the restart",
        )
        # an empty configuration removes it; deleting the bucket drops it
        s3.put_bucket_notification_configuration(Bucket="runtime", NotificationConfiguration={})
        assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(
            Bucket="runtime"
        )
        s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration=config)
        keys = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket="photos")["Contents"]]
        s3.delete_objects(Bucket="photos", Delete={"Objects": keys})
        s3.delete_bucket(Bucket="photos")
        s3.create_bucket(Bucket="photos")
        assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(
            Bucket="photos"
        )
