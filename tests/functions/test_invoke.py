"""Invoke through boto3: sync, async, DryRun, tail, function errors, list/get."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from stackyard.telemetry.exposition import render
from stackyard.telemetry.metrics import MetricsAggregator

from .conftest import Factory, fn


async def test_sync_invoke_and_warm_worker_reuse(serve: Factory) -> None:
    served = await serve({"hello": fn("handlers.hello")})
    first = await served.call("invoke", FunctionName="hello", Payload=b'{"name": "ada"}')
    assert first["StatusCode"] == 200
    assert first["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in first
    body = json.loads(first["Payload"].read())
    assert body["hello"] == "ada" and body["inits"] == 1
    for _ in range(3):
        again = json.loads((await served.call("invoke", FunctionName="hello"))["Payload"].read())
        assert again["pid"] == body["pid"]  # the warm worker, module code ran once
        assert again["inits"] == 1
    log = (Path(served.runtime.log_dir) / "hello.log").read_text()
    assert log.count("module initialised") == 1


async def test_function_name_as_arn(serve: Factory) -> None:
    served = await serve({"hello": fn("handlers.hello")})
    arn = "arn:aws:lambda:us-east-1:000000000000:function:hello"
    for name in (arn, f"{arn}:$LATEST", "000000000000:function:hello"):
        result = await served.call("invoke", FunctionName=name, Payload=b"{}")
        assert result["StatusCode"] == 200


async def test_errors_in_aws_shape(serve: Factory) -> None:
    served = await serve({"hello": fn("handlers.hello")})
    with pytest.raises(ClientError) as missing:
        await served.call("invoke", FunctionName="nope", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as bad:
        await served.call("invoke", FunctionName="hello", Payload=b"{not json")
    assert bad.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as unknown:
        await served.call("get_function", FunctionName="nope")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_dry_run_and_tail(serve: Factory) -> None:
    served = await serve({"hello": fn("handlers.hello")})
    dry = await served.call("invoke", FunctionName="hello", InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    result = await served.call(
        "invoke", FunctionName="hello", Payload=b'{"name": "tail"}', LogType="Tail"
    )
    log = base64.b64decode(result["LogResult"]).decode()
    lines = log.strip().splitlines()
    assert lines[0].startswith("START RequestId: ") and lines[0].endswith("Version: $LATEST")
    assert 'hello handler {"name": "tail"}' in log
    assert any(line.startswith("END RequestId: ") for line in lines)
    report = lines[-1]
    assert report.startswith("REPORT RequestId: ")
    assert "\tDuration: " in report and "\tBilled Duration: " in report
    assert "\tMemory Size: 128 MB\tMax Memory Used: " in report


async def test_raising_handler_answers_at_once(serve: Factory) -> None:
    served = await serve({"boom": fn("handlers.boom", timeout=5)})
    began = time.monotonic()
    result = await served.call("invoke", FunctionName="boom", Payload=b"{}")
    assert time.monotonic() - began < 1.0
    assert result["StatusCode"] == 200
    assert result["FunctionError"] == "Unhandled"
    error = json.loads(result["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "something bad happened"
    assert any("raise ValueError" in frame for frame in error["stackTrace"])
    assert not any("bootstrap.py" in frame for frame in error["stackTrace"])


async def test_init_error_is_reported(serve: Factory) -> None:
    served = await serve({"broken": fn("broken.handler", warm=0), "gone": fn("nothere.fn", warm=0)})
    result = await served.call("invoke", FunctionName="broken", Payload=b"{}")
    assert result["FunctionError"] == "Unhandled"
    error = json.loads(result["Payload"].read())
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'broken'" in error["errorMessage"]
    gone = json.loads((await served.call("invoke", FunctionName="gone"))["Payload"].read())
    assert gone["errorType"] == "Runtime.ImportModuleError"


async def test_context_and_environment(serve: Factory) -> None:
    served = await serve(
        {"info": fn("handlers.info", timeout=7, memory_mb=256, env={"MY_SETTING": "on"})}
    )
    custom = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    result = await served.call("invoke", FunctionName="info", ClientContext=custom)
    info = json.loads(result["Payload"].read())
    assert result["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == info["aws_request_id"]
    assert info["function_name"] == "info"
    assert info["function_version"] == "$LATEST"
    assert info["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:info"
    assert info["memory_limit_in_mb"] == "256"
    assert info["log_group_name"] == "/aws/lambda/info"
    assert "[$LATEST]" in info["log_stream_name"]
    assert 6000 < info["remaining"] <= 7000
    assert info["identity"] == [None, None]
    assert info["client_custom"] == {"k": "v"}
    env = info["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "info"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/info"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == info["log_stream_name"]
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "handlers.info"
    assert env["STACKYARD_URL"] == "http://127.0.0.1:4566"
    assert env["MY_SETTING"] == "on"
    second = json.loads((await served.call("invoke", FunctionName="info"))["Payload"].read())
    assert second["aws_request_id"] != info["aws_request_id"]


async def test_list_and_get_functions(serve: Factory) -> None:
    served = await serve(
        {"hello": fn("handlers.hello", timeout=2.5), "info": fn("handlers.info", warm=0)}
    )
    listed = await served.call("list_functions")
    assert [f["FunctionName"] for f in listed["Functions"]] == ["hello", "info"]
    page = await served.call("list_functions", MaxItems=1)
    assert len(page["Functions"]) == 1 and page["NextMarker"]
    got = await served.call("get_function", FunctionName="hello")
    config = got["Configuration"]
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:hello"
    assert config["Handler"] == "handlers.hello"
    assert config["Timeout"] == 3 and config["MemorySize"] == 128
    assert config["Runtime"] == "python3.11"


async def test_invocations_errors_and_durations_are_counted(serve: Factory) -> None:
    metrics = MetricsAggregator()
    functions = {"hello": fn("handlers.hello"), "boom": fn("handlers.boom")}
    served = await serve(functions, metrics=metrics)
    for _ in range(3):
        await served.call("invoke", FunctionName="hello", Payload=b"{}")
    await served.call("invoke", FunctionName="boom", Payload=b"{}")
    values = {
        (family.name, sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(render(metrics))
        for sample in family.samples
    }
    hello, boom = (("function", "hello"),), (("function", "boom"),)
    invocations = "function_invocations"
    assert values[(invocations, "function_invocations_total", hello)] == 3
    assert values[(invocations, "function_invocations_total", boom)] == 1
    assert values[("function_errors", "function_errors_total", boom)] == 1
    assert ("function_errors", "function_errors_total", hello) not in values
    duration = "function_duration_seconds"
    assert values[(duration, "function_duration_seconds_count", hello)] == 3
    assert values[(duration, "function_duration_seconds_count", boom)] == 1
