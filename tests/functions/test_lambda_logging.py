"""The Python runtime's logging set-up: Lambda's line format with the request id, its JSON
format, its log level; and no ``logging`` import for handlers that do not use it."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from .conftest import Factory, Served, fn


async def invoke(served: Served, name: str, payload: dict[str, Any]) -> tuple[str, Any, str]:
    result = await served.call(
        "invoke", FunctionName=name, Payload=json.dumps(payload).encode(), LogType="Tail"
    )
    log = base64.b64decode(result["LogResult"]).decode()
    request_id = re.search(r"START RequestId: (\S+)", log)
    assert request_id is not None, log
    return log, json.loads(result["Payload"].read()), request_id.group(1)


async def test_text_format_with_request_id_and_warning_level(serve: Factory) -> None:
    served = await serve({"logged": fn("logged.handler")})
    log, answer, request_id = await invoke(served, "logged", {"n": 1})
    assert answer == {"handlers": 1}
    line = next(line for line in log.splitlines() if "warned 1" in line)
    assert re.fullmatch(
        rf"\[WARNING\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{request_id}\twarned 1", line
    ), line
    assert "info line" not in log  # Lambda's default level is WARNING
    log, _, second = await invoke(served, "logged", {"n": 2})
    assert second != request_id and f"\t{second}\twarned 2" in log


async def test_json_format_and_level_from_the_environment(serve: Factory) -> None:
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    served = await serve({"logged": fn("logged.handler", env=env)})
    log, _, request_id = await invoke(served, "logged", {"n": 3})
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [(r["level"], r["message"], r["logger"]) for r in records] == [
        ("INFO", "info line", "orders"),
        ("WARNING", "warned 3", "orders"),
    ]
    assert {r["requestId"] for r in records} == {request_id}
    assert all(r["timestamp"].endswith("Z") for r in records)


async def test_handlers_without_logging_do_not_import_it(serve: Factory) -> None:
    """Importing ``logging`` costs a cold start ≈ 6 ms: only code that uses it pays."""
    served = await serve({"plain": fn("plain.modules")})
    result = await served.call("invoke", FunctionName="plain", Payload=b"{}")
    assert json.loads(result["Payload"].read()) == {"logging_imported": False}
