"""The private channel between the node and its Python workers (``channel.py``).

Crashes and timeouts of Python workers (which use the channel) are covered in
``test_workers.py``; here: what a worker sends outside the frame format, an oversized result,
a channel closed early, and the Python bootstrap still speaking HTTP when it has no channel.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackyard.functions import channel
from stackyard.functions.channel_server import ChannelConnection, invoke_frame, parse_result
from stackyard.functions.logs import FunctionLogs
from stackyard.functions.runtime_api import Invocation, Outcome
from stackyard.functions.worker import Worker, WorkerSpec

from .conftest import APP, Factory, fn

ROGUE = APP / "rogue_runtime.py"
BOOTSTRAP = (sys.executable, "-m", "stackyard.functions.bootstrap")


def _spec(argv: tuple[str, ...], *, channel: bool, timeout: float = 5.0) -> WorkerSpec:
    env = dict(os.environ)
    env.update({"_HANDLER": "handlers.hello", "LAMBDA_TASK_ROOT": str(APP)})
    return WorkerSpec(
        function="rogue",
        argv=argv,
        cwd=APP,
        env=env,
        memory_mb=256,
        timeout=timeout,
        arn="arn:aws:lambda:us-east-1:000000000000:function:rogue",
        channel=channel,
    )


async def _worker(tmp_path: Path, spec: WorkerSpec) -> Worker:
    worker = Worker(spec, "rogue-1", FunctionLogs(tmp_path / "logs"), lambda _: None)
    await worker.start()
    assert await worker.wait_ready()
    return worker


async def _invoke(worker: Worker, event: object, request_id: str = "req-1") -> Outcome:
    invocation = Invocation(
        request_id=request_id,
        payload=json.dumps(event).encode(),
        function_arn=worker.spec.arn,
        timeout=worker.spec.timeout,
        outcome=asyncio.get_running_loop().create_future(),
    )
    result = await worker.invoke(invocation)
    return result.outcome


async def _dead(worker: Worker) -> bool:
    for _ in range(200):
        if not worker.alive:
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.parametrize("what", ["kind", "wrong-id", "truncated"])
async def test_malformed_frames_kill_the_worker(tmp_path: Path, what: str) -> None:
    worker = await _worker(tmp_path, _spec((sys.executable, str(ROGUE)), channel=True))
    try:
        outcome = await _invoke(worker, {"do": what})
        assert outcome.error == "Unhandled"
        document = json.loads(outcome.payload)
        assert document["errorType"] == "Runtime.ExitError"
        assert document["errorMessage"] == (
            "RequestId: req-1 Error: Runtime exited with error: signal: killed"
        )
        assert await _dead(worker)
        log = (tmp_path / "logs" / "rogue.log").read_text()
        assert "Runtime channel error" in log
    finally:
        await worker.stop()


async def test_oversized_result_is_an_error_and_the_worker_stays(tmp_path: Path) -> None:
    worker = await _worker(tmp_path, _spec((sys.executable, str(ROGUE)), channel=True))
    try:
        assert json.loads((await _invoke(worker, {"do": "echo", "n": 1})).payload)["n"] == 1
        outcome = await _invoke(worker, {"do": "big"}, "req-2")
        document = json.loads(outcome.payload)
        assert outcome.error == "Unhandled"
        assert document["errorType"] == "Function.ResponseSizeTooLarge"
        assert "exceeded maximum allowed payload size" in document["errorMessage"]
        again = await _invoke(worker, {"do": "echo", "n": 3}, "req-3")
        assert again.error is None and json.loads(again.payload)["n"] == 3
        assert worker.alive and worker.invocations == 3
    finally:
        await worker.stop()


async def test_half_a_frame_then_exit(tmp_path: Path) -> None:
    worker = await _worker(tmp_path, _spec((sys.executable, str(ROGUE)), channel=True))
    try:
        outcome = await _invoke(worker, {"do": "half"})
        document = json.loads(outcome.payload)
        assert document["errorType"] == "Runtime.ExitError"
        assert document["errorMessage"].endswith("Runtime exited with error: exit status 2")
    finally:
        await worker.stop()


async def test_a_closed_channel_ends_the_worker(tmp_path: Path) -> None:
    worker = await _worker(tmp_path, _spec((sys.executable, str(ROGUE)), channel=True))
    try:
        began = time.monotonic()
        outcome = await _invoke(worker, {"do": "close"})
        assert time.monotonic() - began < 4  # not the 5 s timeout
        assert json.loads(outcome.payload)["errorType"] == "Runtime.ExitError"
        assert await _dead(worker)
    finally:
        await worker.stop()


async def test_python_bootstrap_over_http_without_a_channel(tmp_path: Path) -> None:
    worker = await _worker(tmp_path, _spec(BOOTSTRAP, channel=False))
    try:
        for n in range(3):
            outcome = await _invoke(worker, {"name": f"n{n}"}, f"req-{n}")
            assert outcome.error is None and json.loads(outcome.payload)["hello"] == f"n{n}"
        assert worker._api is not None
        assert not any(isinstance(c, ChannelConnection) for c in worker._api._connections)
    finally:
        await worker.stop()


async def test_python_workers_use_the_channel(serve: Factory) -> None:
    served = await serve({"env": fn("handlers.runtime_env"), "boom": fn("handlers.boom")})
    result = await served.call("invoke", FunctionName="env", Payload=b"{}")
    body = json.loads(result["Payload"].read())
    assert body["fd_env"] is None  # taken out of the handler's environment
    assert [fd["inheritable"] for fd in body["unix"]] == [False]  # not passed to its children
    (worker,) = served.runtime.pools["env"].workers
    assert worker._api is not None
    assert [type(c) for c in worker._api._connections] == [ChannelConnection]
    for _ in range(2):  # a function error answers at once and keeps the worker
        failed = await served.call("invoke", FunctionName="boom", Payload=b"{}")
        assert failed["FunctionError"] == "Unhandled"
        assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"
    assert len(served.runtime.pools["boom"].workers) == 1


async def test_oversized_result_of_a_python_handler(serve: Factory) -> None:
    served = await serve({"huge": fn("handlers.huge", memory_mb=256)})
    result = await served.call("invoke", FunctionName="huge", Payload=b'{"mb": 17}')
    assert result["FunctionError"] == "Unhandled"
    assert json.loads(result["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"
    result = await served.call("invoke", FunctionName="huge", Payload=b'{"mb": 1}')
    assert "FunctionError" not in result
    assert len(json.loads(result["Payload"].read())) == 1024 * 1024


_field = st.text(max_size=300)


@given(
    st.tuples(_field, st.integers(0, 2**64 - 1), _field, _field, _field, _field),
    st.binary(max_size=2000),
)
def test_an_invoke_frame_reads_back_as_it_was_made(
    fields: tuple[str, int, str, str, str, str], payload: bytes
) -> None:
    """The node's ``INVOKE`` frames (``channel_server``) and the worker's reading of them
    (``channel``) agree, for any text in the fields (non-ASCII, empty) and any payload."""
    request_id, deadline_ms, arn, trace_id, context, identity = fields
    frame = invoke_frame(request_id, deadline_ms, arn, trace_id, context, identity, payload)
    length, kind = channel.HEADER.unpack_from(frame)
    assert (kind, length) == (channel.INVOKE, len(frame) - channel.HEADER.size)
    assert channel.parse_invoke(frame[channel.HEADER.size :]) == (
        request_id,
        deadline_ms,
        arn,
        trace_id,
        context,
        identity,
        payload,
    )


@given(_field, st.binary(max_size=2000), st.sampled_from([channel.RESULT, channel.ERROR]))
def test_a_result_frame_reads_back_as_it_was_made(
    request_id: str, document: bytes, kind: int
) -> None:
    frame = channel.result_frame(kind, request_id, document)
    assert channel.HEADER.unpack_from(frame) == (len(frame) - channel.HEADER.size, kind)
    assert parse_result(frame[channel.HEADER.size :]) == (request_id, document)
