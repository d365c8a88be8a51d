"""Worker failure modes and limits: timeout, crash, memory, concurrency, provided runtimes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from stackyard.functions.errors import TooManyRequests
from stackyard.functions.worker import ProcStatus

from .conftest import Factory, fn


async def _payload(served, name: str, event: object) -> tuple[dict, dict]:
    result = await served.call("invoke", FunctionName=name, Payload=json.dumps(event).encode())
    return result, json.loads(result["Payload"].read())


async def test_timeout_kills_the_worker_and_replaces_it(serve: Factory) -> None:
    served = await serve({"sleepy": fn("handlers.sleepy", timeout=1)})
    pool = served.runtime.pools["sleepy"]
    (first,) = pool.workers
    began = time.monotonic()
    result, error = await _payload(served, "sleepy", {"seconds": 30})
    elapsed = time.monotonic() - began
    assert 1.0 <= elapsed < 2.0
    assert result["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    with pytest.raises(ProcessLookupError):
        for _ in range(100):  # the killed group disappears
            os.kill(first.pid, 0)
            await asyncio.sleep(0.02)
    result, body = await _payload(served, "sleepy", {"seconds": 0})
    assert "FunctionError" not in result and body == {"slept": 0}
    assert first not in pool.workers


async def test_each_invocation_times_out_at_its_own_deadline(serve: Factory) -> None:
    """A worker arms one deadline timer for many invocations: an invocation that starts after
    an earlier one's deadline would have passed still gets its whole timeout."""
    served = await serve({"sleepy": fn("handlers.sleepy", timeout=1, concurrency=1)})
    _, body = await _payload(served, "sleepy", {"seconds": 0})
    assert body == {"slept": 0}
    await asyncio.sleep(0.6)
    began = time.monotonic()
    result, error = await _payload(served, "sleepy", {"seconds": 30})
    assert 1.0 <= time.monotonic() - began < 2.0
    assert result["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"


async def test_crash_is_reported_and_worker_replaced(serve: Factory) -> None:
    served = await serve({"crash": fn("handlers.crash"), "hello": fn("handlers.hello")})
    result, error = await _payload(served, "crash", {})
    assert result["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 3")
    result, error = await _payload(served, "crash", {})
    assert error["errorType"] == "Runtime.ExitError"  # a new worker took the second one


@pytest.mark.parametrize(
    "handler,event",
    [("handlers.big_alloc", {"mb": 2048}), ("handlers.hog", {"mb": 400, "slow": True})],
)
async def test_memory_limit(serve: Factory, handler: str, event: dict) -> None:
    served = await serve(
        {"hog": fn(handler, memory_mb=128), "ok": fn("handlers.hog", memory_mb=128)}
    )
    result, error = await _payload(served, "hog", event)
    assert result["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: signal: killed")
    result, body = await _payload(served, "ok", {"mb": 20})
    assert body == {"allocated": 20}


async def test_concurrency_limit_queues_then_throttles(serve: Factory) -> None:
    served = await serve(
        {"sleepy": fn("handlers.sleepy", concurrency=1, warm=1)}, queue_timeout=0.3
    )
    slow = asyncio.create_task(_payload(served, "sleepy", {"seconds": 1.5}))
    await asyncio.sleep(0.2)
    with pytest.raises(ClientError) as throttled:
        await served.call("invoke", FunctionName="sleepy", Payload=b'{"seconds": 0}')
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    _, body = await slow
    assert body == {"slept": 1.5}


async def test_queued_callers_time_out_each_at_its_own_deadline(serve: Factory) -> None:
    served = await serve(
        {"sleepy": fn("handlers.sleepy", concurrency=1, warm=1)}, queue_timeout=0.5
    )
    runtime = served.runtime
    slow = asyncio.create_task(runtime.invoke("sleepy", b'{"seconds": 1.5}'))
    await asyncio.sleep(0.1)

    async def queued() -> float:
        began = time.monotonic()
        with pytest.raises(TooManyRequests):
            await runtime.invoke("sleepy", b'{"seconds": 0}')
        return time.monotonic() - began

    first = asyncio.create_task(queued())
    await asyncio.sleep(0.25)
    second = asyncio.create_task(queued())
    waited = await asyncio.gather(first, second)
    assert all(0.45 <= seconds < 1.0 for seconds in waited), waited
    assert runtime.pools["sleepy"].queued == 0
    assert (await slow).function_error is None


async def test_a_caller_gone_from_the_queue_loses_no_worker(serve: Factory) -> None:
    served = await serve({"hello": fn("handlers.hello", concurrency=1, warm=1)})
    pool = served.runtime.pools["hello"]
    worker = await pool._acquire()
    gone = asyncio.create_task(pool._acquire())
    await asyncio.sleep(0.01)
    assert pool.queued == 1
    pool._release(worker)  # handed to the caller in the queue, which goes away before it runs
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert pool.idle == 1 and pool.queued == 0
    worker = await pool._acquire()
    waiting = asyncio.create_task(pool._acquire())
    await asyncio.sleep(0.01)
    waiting.cancel()  # cancelled while still waiting: it leaves the queue
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.queued == 0
    pool._release(worker)
    result, body = await _payload(served, "hello", {"name": "again"})
    assert "FunctionError" not in result and body["hello"] == "again"


async def test_queued_request_waits_for_a_free_worker(serve: Factory) -> None:
    served = await serve({"sleepy": fn("handlers.sleepy", concurrency=1)}, queue_timeout=3)
    first = asyncio.create_task(_payload(served, "sleepy", {"seconds": 0.3}))
    await asyncio.sleep(0.05)
    _, body = await _payload(served, "sleepy", {"seconds": 0})
    assert body == {"slept": 0}
    await first
    assert len(served.runtime.pools["sleepy"].workers) == 1


async def test_provided_runtime_shell_and_node(serve: Factory) -> None:
    served = await serve(
        {
            "shell": fn("shellfn/echo.handler", runtime="provided"),
            "node": fn("nodefn/index.handler", runtime="provided", timeout=4),
        }
    )
    _, body = await _payload(served, "shell", {"x": 1})
    assert body == {"shell": True, "handler": "echo.handler", "event": {"x": 1}}
    for round_ in range(2):
        result, body = await _payload(served, "node", {"round": round_})
        assert body["node"] is True and body["event"] == {"round": round_}
        assert body["arn"].endswith(":function:node")
        assert 0 < body["deadline"] - time.time() * 1000 <= 4000
    result, error = await _payload(served, "node", {"fail": True})
    assert result["FunctionError"] == "Unhandled"
    assert error == {"errorMessage": "node says no", "errorType": "NodeError", "stackTrace": []}
    log = (served.runtime.log_dir / "node.log").read_text()
    assert "node runtime got" in log


async def test_missing_bootstrap_is_an_entrypoint_error(serve: Factory) -> None:
    served = await serve({"none": fn("nowhere/x.handler", runtime="provided", warm=0)})
    result, error = await _payload(served, "none", {})
    assert result["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.InvalidEntrypoint"


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
async def test_workers_run_under_sched_batch(serve: Factory) -> None:
    served = await serve(
        {
            "policy": fn("handlers.policy"),
            "shell": fn("shellfn/echo.handler", runtime="provided"),
        }
    )
    _, body = await _payload(served, "policy", {})
    assert body == {"worker": os.SCHED_BATCH, "child": os.SCHED_BATCH}
    await _payload(served, "shell", {})
    for pool in served.runtime.pools.values():
        for worker in pool.workers:
            assert os.sched_getscheduler(worker.pid) == os.SCHED_BATCH
    assert os.sched_getscheduler(0) != os.SCHED_BATCH  # the node keeps its own policy


def test_proc_status_reads_the_process_anew_each_time() -> None:
    status = ProcStatus(os.getpid())
    rss, peak, missing = status.kb(b"VmRSS:", b"VmHWM:", b"VmNothing:")
    assert rss is not None and peak is not None and peak >= rss > 0 and missing is None
    block = bytearray(64 * 1024 * 1024)  # touched: resident
    [grown] = status.kb(b"VmRSS:")
    assert grown is not None and grown >= rss + 60 * 1024
    del block
    status.close()
    assert status.kb(b"VmRSS:") == [None]
    child = subprocess.Popen(["sleep", "0"])
    gone = ProcStatus(child.pid)
    child.wait()
    assert gone.kb(b"VmRSS:") == [None]  # a process that exited has no memory to report
    gone.close()
