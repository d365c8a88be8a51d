"""``stackyard invoke`` and ``stackyard functions`` against a served runtime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from stackyard.cli.functions import functions, invoke

from .conftest import Factory, fn


async def test_invoke_and_functions_commands(serve: Factory, tmp_path: Path) -> None:
    served = await serve({"hello": fn("handlers.hello"), "boom": fn("handlers.boom", warm=0)})
    runner = CliRunner()

    def run(command, args):  # type: ignore[no-untyped-def]
        return runner.invoke(command, [*args, "--url", served.url], env={"COLUMNS": "200"})

    result = await asyncio.to_thread(run, invoke, ["hello", "--data", '{"name": "cli"}'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hello"] == "cli"

    event = tmp_path / "event.json"
    event.write_text('{"name": "file"}')
    result = await asyncio.to_thread(run, invoke, ["hello", "--data", f"@{event}", "--tail"])
    assert json.loads(result.stdout.strip().splitlines()[-1])["hello"] == "file"
    assert "START RequestId:" in result.stderr

    result = await asyncio.to_thread(run, invoke, ["hello", "--async"])
    assert result.exit_code == 0 and result.stdout.startswith("accepted: request ")

    result = await asyncio.to_thread(run, invoke, ["boom"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errorType"] == "ValueError"

    result = await asyncio.to_thread(run, invoke, ["missing"])
    assert result.exit_code == 1 and "ResourceNotFoundException" in result.output

    result = await asyncio.to_thread(run, functions, ["--json"])
    names = [item["name"] for item in json.loads(result.stdout)["functions"]]
    assert names == ["boom", "hello"]
    result = await asyncio.to_thread(run, functions, [])
    assert "hello" in result.stdout and "handlers.hello" in result.stdout
